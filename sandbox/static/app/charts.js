// The console's charts: each element with data-series="<url>" becomes uPlot charts of that JSON
// ({t, synced, failed, lag}), refreshed every data-refresh seconds while the element is on the page.
(function () {
  "use strict";
  var KINDS = {
    throughput: { title: "Records per second", series: [
      { label: "synced", stroke: "#1a7f37", fill: "rgba(26,127,55,.12)", key: "synced" },
      { label: "failed", stroke: "#cf222e", key: "failed" }] },
    lag: { title: "Lag / latency (s)", series: [
      { label: "lag", stroke: "#0b5cad", key: "lag", spanGaps: true, points: { show: true, size: 3 } }] }
  };

  function draw(el) {
    if (el.dataset.ready) return;
    el.dataset.ready = "1";
    var kind = KINDS[el.dataset.kind || "throughput"];
    var plot = null;
    function refresh() {
      if (!document.body.contains(el)) { clearInterval(timer); if (plot) plot.destroy(); return; }
      fetch(el.dataset.series, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          var data = [d.t].concat(kind.series.map(function (s) { return d[s.key]; }));
          var width = Math.max(el.clientWidth, 200);
          if (!plot) {
            plot = new uPlot({
              title: kind.title, width: width, height: Number(el.dataset.height || 150),
              legend: { show: true },
              series: [{}].concat(kind.series.map(function (s) {
                return { label: s.label, stroke: s.stroke, fill: s.fill, spanGaps: s.spanGaps, points: s.points };
              })),
              axes: [{}, { size: 40 }], scales: { y: { range: function (u, min, max) { return [0, Math.max(max || 0, 1)]; } } }
            }, data, el);
          } else {
            if (Math.abs(plot.width - width) > 4) plot.setSize({ width: width, height: plot.height });
            plot.setData(data);
          }
        })
        .catch(function () { /* the next refresh tries again */ });
    }
    var timer = setInterval(refresh, 1000 * Number(el.dataset.refresh || 5));
    refresh();
  }

  function init(root) { (root || document).querySelectorAll("[data-series]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
