// A Plotly parcoords whose brushed ranges reach the script (see parcoords_chart.py).
// plotly() and pageTheme() come from plotly_component.js, put before this file.

// Every axis's constraintrange, by label: plotly.js keeps a brush's ranges on the trace
// (gd.data) before it emits plotly_restyle.
function ranges(trace) {
  const out = {};
  for (const d of trace.dimensions || []) {
    if (d.constraintrange && d.constraintrange.length) out[d.label] = d.constraintrange;
  }
  return out;
}

export default function ({parentElement, data, setTriggerValue}) {
  let chart = parentElement.querySelector(".rs-parcoords-chart");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "rs-parcoords-chart";
    parentElement.appendChild(chart);
  }
  let gone = false;
  plotly(data.plotly_url).then((Plotly) => {
    if (gone || chart.rsDrawn === data.figure) return;
    chart.rsDrawn = data.figure;
    const figure = JSON.parse(data.figure), theme = pageTheme(parentElement);
    const {template, ...layout} = figure.layout || {};
    const themed = {paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", ...layout,
                    font: {family: theme.font, color: theme.text, ...(layout.font || {})}};
    return Plotly.react(chart, figure.data, themed, data.config).then(() => {
      if (chart.rsBound) return;
      chart.rsBound = true;
      chart.on("plotly_restyle", (event) => {
        const keys = Object.keys((event && event[0]) || {});
        if (keys.some((k) => k.endsWith(".constraintrange"))) setTriggerValue("ranges", ranges(chart.data[0]));
      });
    });
  }).catch((error) => {
    chart.textContent = `The chart cannot be drawn: ${error.message}`;
  });
  return () => {
    gone = true;
    if (!chart.isConnected && window.Plotly) window.Plotly.purge(chart);
  };
}
