// Draws the session day chosen in the selector from the packed columns (see days.py).
// Every text from the data goes into the page through textContent, never as markup.
(function () {
  "use strict";
  var source = document.getElementById("gexbot-days");
  if (!source) { return; }
  var book = JSON.parse(source.textContent);
  var select = document.getElementById("day-select");

  function unpack(text, Kind) {
    var raw = atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return new Kind(bytes.buffer);
  }

  function shapes(day, x, template) {
    var out = (template.layout.shapes || []).slice();
    var half = 30000;
    day.gex.forEach(function (run) {
      out.push({type: "rect", xref: "x", yref: "y domain", x0: x[run[0]] - half,
                x1: x[run[1]] + half, y0: 0, y1: 1, fillcolor: book.shades.tint[run[2]],
                line: {width: 0}, layer: "below"});
      out.push({type: "rect", xref: "x", yref: "y2", x0: x[run[0]] - half,
                x1: x[run[1]] + half, y0: 1.05, y1: 1.95, fillcolor: book.shades.gex[run[2]],
                line: {width: 0}});
    });
    day.hmm.forEach(function (run) {
      out.push({type: "rect", xref: "x", yref: "y2", x0: x[run[0]] - half,
                x1: x[run[1]] + half, y0: 0.05, y1: 0.95, fillcolor: book.shades.hmm[run[2]],
                line: {width: 0}});
    });
    return out;
  }

  function tradeTrace(trace, day, slot) {
    var xs = [], ys = [], symbols = [], texts = [];
    day.trades.forEach(function (t) {
      if (t[0] !== slot) { return; }
      if (t[1] !== null) {
        xs.push(t[1]); ys.push(t[2]); texts.push(t[6]);
        symbols.push(t[5] > 0 ? "triangle-up" : "triangle-down");
      }
      if (t[3] !== null) {
        xs.push(t[3]); ys.push(t[4]); texts.push(t[7]); symbols.push("circle");
      }
      xs.push(null); ys.push(null); texts.push(""); symbols.push("circle");
    });
    trace.x = xs; trace.y = ys; trace.hovertext = texts;
    trace.marker = Object.assign({}, trace.marker, {symbol: symbols});
  }

  function draw(chart, iso) {
    var div = document.getElementById(chart.div);
    var head = document.getElementById(chart.div + "-head");
    var note = document.getElementById(chart.div + "-note");
    var day = chart.days[iso];
    if (!day || day.note) {
      head.textContent = day ? day.head : chart.label + ": no minutes on " + iso;
      note.textContent = day ? day.note : "This variant has no decision on this day.";
      note.hidden = false;
      div.hidden = true;
      if (div.data) { Plotly.purge(div); }
      return;
    }
    head.textContent = chart.label + " " + day.head;
    note.hidden = true;
    div.hidden = false;
    var spot = unpack(day.spot, Float32Array);
    var off = day.off === null ? null : unpack(day.off, Uint16Array);
    var x = new Float64Array(spot.length);
    for (var i = 0; i < x.length; i++) { x[i] = day.t0 + (off ? off[i] : i) * 60000; }
    var columns = {spot: day.spot, upper: day.upper, mid: day.mid, lower: day.lower,
                   hurst: day.hurst, ofi: day.ofi};
    var data = chart.figure.data.map(function (template) {
      var trace = Object.assign({}, template);
      if (trace.meta in columns) {
        trace.x = x;
        trace.y = unpack(columns[trace.meta], Float32Array);
      } else if (String(trace.meta).indexOf("trades:") === 0) {
        tradeTrace(trace, day, book.slots.indexOf(trace.meta.slice(7)));
      }
      return trace;
    });
    var layout = Object.assign({}, chart.figure.layout, {shapes: shapes(day, x, chart.figure)});
    Plotly.react(div, data, layout, {responsive: true, displaylogo: false});
  }

  function show(iso) {
    book.charts.forEach(function (chart) { draw(chart, iso); });
  }

  function step(by) {
    var next = select.selectedIndex + by;
    if (next >= 0 && next < select.options.length) {
      select.selectedIndex = next;
      show(select.value);
    }
  }

  book.days.forEach(function (iso) {
    var option = document.createElement("option");
    option.value = iso;
    option.textContent = iso;
    select.appendChild(option);
  });
  select.selectedIndex = book.days.length - 1;
  select.addEventListener("change", function () { show(select.value); });
  document.getElementById("day-prev").addEventListener("click", function () { step(-1); });
  document.getElementById("day-next").addEventListener("click", function () { step(1); });
  if (book.days.length) { show(select.value); }
}());
