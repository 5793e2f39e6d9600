// A Plotly chart on which the user draws a box or a freeform area; the areas reach the
// script as a few numbers (see area_select_chart.py for why). Streamlit calls the default
// export with the data the script passed, and again whenever that data changes. plotly() and
// pageTheme() come from plotly_component.js, put before this file.

// Kept areas are not editable: a drag that starts inside one draws a new area (which
// replaces it) instead of moving it.
const AREA = {name: "rs-area", xref: "x", yref: "y", editable: false};

function corners(path) {  // "M0.1,0.2L0.3,0.4Z" -> {x: [0.1, 0.3], y: [0.2, 0.4]}
  const x = [], y = [];
  for (const corner of path.replace(/Z/g, "").split(/[ML]/).filter(Boolean)) {
    const [cx, cy] = corner.split(",").map(Number);
    x.push(cx);
    y.push(cy);
  }
  return {x, y};
}

// Drawn shapes -> {box: [{x: [x0, x1], y: [y0, y1]}], lasso: [{x: [...], y: [...]}]}: the
// selection.box / selection.lasso of st.plotly_chart's event, which
// resnet_core.dashboard.data_map_selection.selection_areas reads.
function selection(shapes) {
  const box = [], lasso = [];
  for (const s of shapes) {
    if (s.type === "rect") box.push({x: [s.x0, s.x1], y: [s.y0, s.y1]});
    else if (s.type === "path" && s.path) lasso.push(corners(s.path));
  }
  return {box, lasso};
}

function shape(area) {  // the script's kept area, drawn again
  if (area.kind === "box") return {...AREA, type: "rect", x0: area.x[0], x1: area.x[1], y0: area.y[0], y1: area.y[1]};
  return {...AREA, type: "path", path: "M" + area.x.map((x, i) => `${x},${area.y[i]}`).join("L") + "Z"};
}

function translucent(colour, alpha) {  // "#3A6591" -> "rgba(58,101,145,alpha)"
  const hex = /^#([0-9a-f]{6})$/i.exec(colour);
  if (!hex) return `rgba(128,128,128,${alpha})`;
  const n = parseInt(hex[1], 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
}

// The figure's layout in the page's theme, as st.plotly_chart's "streamlit" theme draws the
// other charts, in place of plotly's own template.
function layoutFor(figure, areas, theme) {
  const look = {line: {color: theme.accent, width: 2, dash: "dot"}, fillcolor: translucent(theme.accent, 0.1)};
  const axis = (a) => ({gridcolor: theme.grid, zerolinecolor: theme.grid, linecolor: theme.grid, ...(a || {})});
  const {template, ...layout} = figure.layout || {};
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    ...layout,
    font: {family: theme.font, color: theme.text, ...(layout.font || {})},
    xaxis: axis(layout.xaxis), yaxis: axis(layout.yaxis), newshape: look,
    shapes: [...(layout.shapes || []), ...areas.map((area) => ({...shape(area), ...look}))],
  };
}

export default function ({parentElement, data, setTriggerValue}) {
  let chart = parentElement.querySelector(".rs-area-select-chart");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "rs-area-select-chart";
    parentElement.appendChild(chart);
  }
  if (chart.rsFigureJson !== data.figure) {  // the same arrays again: Plotly.react redraws only what changed
    chart.rsFigureJson = data.figure;
    chart.rsFigure = JSON.parse(data.figure);
  }
  const figure = chart.rsFigure, own = (figure.layout.shapes || []).length;
  // A shape drawn replaces the one before (as a new box selection does). The script answers
  // with the areas it keeps, drawn again.
  chart.rsKept = data.areas.length;
  chart.rsSend = (shapes) => {
    const drawn = shapes.slice(own);
    setTriggerValue("selection", selection(drawn.length > chart.rsKept ? drawn.slice(-1) : drawn));
  };
  let gone = false;
  plotly(data.plotly_url).then((Plotly) => {
    if (gone) return;
    const theme = pageTheme(parentElement), themeKey = JSON.stringify(theme);
    const layout = layoutFor(figure, data.areas, theme);
    if (chart.rsBound && chart.rsDrawn === data.figure && chart.rsTheme === themeKey) {  // the areas alone changed
      chart.rsRedrawing = true;
      return Plotly.relayout(chart, {shapes: layout.shapes}).finally(() => { chart.rsRedrawing = false; });
    }
    chart.rsDrawn = data.figure;
    chart.rsTheme = themeKey;
    return Plotly.react(chart, figure.data, layout, data.config).then(() => {
      if (chart.rsBound) return;
      chart.rsBound = true;
      chart.on("plotly_relayout", (event) => {
        if (!chart.rsRedrawing && Object.keys(event || {}).some((k) => k.startsWith("shapes"))) {
          chart.rsSend(chart.layout.shapes || []);
        }
      });
    });
  }).catch((error) => {
    chart.textContent = `The chart cannot be drawn: ${error.message}`;
  });
  // Streamlit calls the last cleanup when the element leaves the page (detached by then), and
  // plotly's WebGL context goes with it; a call superseded before it drew calls its own at
  // once, while the chart stays.
  return () => {
    gone = true;
    if (!chart.isConnected && window.Plotly) window.Plotly.purge(chart);
  };
}
