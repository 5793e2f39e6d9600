// What the components drawing a figure with plotly.js share; the Python side of each puts
// this file before its own script (one module per component).

function plotly(url) {  // plotly.js, loaded once a page from the server's route
  if (!window.__rsPlotly) {
    window.__rsPlotly = window.Plotly ? Promise.resolve(window.Plotly) : new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__rsPlotly = null; reject(new Error(`plotly.js did not load from ${url}`)); };
      document.head.appendChild(script);
    });
  }
  return window.__rsPlotly;
}

function pageTheme(host) {  // Streamlit's --st-* variables on the component's element
  const css = getComputedStyle(host);
  const value = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {text: value("--st-text-color", "#1F2933"), grid: value("--st-border-color-light", "rgba(128,128,128,0.2)"),
          accent: value("--st-primary-color", "#4C78A8"), font: value("--st-font", "sans-serif")};
}

