// Draws the page's charts once all of its markup is in place, each at the width of its card,
// and fits a chart again whenever its card changes width. A chart drawn while the page is
// still being parsed measures a grid that has one full-width column (its neighbour does not
// exist yet) and keeps that width, wider than the card it ends up in; plotly's own
// `responsive` only follows the window, not a card that narrows or widens inside it (a second
// column appearing, a scrollbar, a day chart shown again).
(function () {
  "use strict";
  if (typeof Plotly === "undefined") { return; }

  function fit(div) {
    var drawn = div._fullLayout;
    if (!drawn || div.offsetParent === null) { return; }
    if (Math.abs(drawn.width - div.clientWidth) >= 1) { Plotly.Plots.resize(div); }
  }

  document.querySelectorAll("script.gexbot-figure").forEach(function (source) {
    var div = document.getElementById(source.getAttribute("data-chart"));
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(div, figure.data, figure.layout, figure.config);
  });
  if (typeof ResizeObserver === "function") {
    var watcher = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) { fit(entry.target); });
    });
    document.querySelectorAll(".plotly-graph-div").forEach(function (div) {
      watcher.observe(div);
    });
  }
}());
