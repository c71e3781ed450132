"use strict";
// Hover read-out (the value of every run at the step under the pointer) and click-to-enlarge for charts.
// The charts are complete without this script; it only adds the read-out.
(function () {
  function nearest(steps, x) {
    var lo = 0, hi = steps.length - 1;
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (steps[mid] < x) lo = mid; else hi = mid;
    }
    return Math.abs(steps[lo] - x) <= Math.abs(steps[hi] - x) ? lo : hi;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "—";
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }
  function setup(fig) {
    var svg = fig.querySelector("svg.plot"), dataEl = fig.querySelector("script.chart-data");
    if (!svg || !dataEl) return;
    var data = JSON.parse(dataEl.textContent), vb = svg.viewBox.baseVal, box = data.box, xlim = data.xlim;
    var tip = document.createElement("div"), guide = document.createElement("div");
    tip.className = "tip"; guide.className = "guide"; tip.hidden = guide.hidden = true;
    fig.appendChild(guide); fig.appendChild(tip);
    fig.title = "Click to enlarge";
    svg.addEventListener("mousemove", function (e) {
      var r = svg.getBoundingClientRect(), f = fig.getBoundingClientRect(), k = r.width / vb.width;
      var ux = (e.clientX - r.left) / k;
      if (ux < box[0] || ux > box[2] || !data.series.length) { tip.hidden = guide.hidden = true; return; }
      var x = xlim[0] + (ux - box[0]) / (box[2] - box[0]) * (xlim[1] - xlim[0]);
      tip.textContent = "";
      var head = document.createElement("div");
      head.className = "step"; tip.appendChild(head);
      var steps = [];
      data.series.forEach(function (s) {
        var i = nearest(s.steps, x), row = document.createElement("div"), sw = document.createElement("span");
        var value = document.createElement("b");
        sw.className = "swatch"; sw.style.background = s.color;
        value.textContent = fmt(s.values[i]);
        row.appendChild(sw); row.appendChild(document.createTextNode(s.run + "  ")); row.appendChild(value);
        if (data.series.length > 1) row.appendChild(document.createTextNode("  @ " + s.steps[i]));
        tip.appendChild(row); steps.push(s.steps[i]);
      });
      head.textContent = "step " + (data.series.length > 1 ? Math.round(x) : steps[0]);
      guide.style.left = (r.left - f.left + ux * k) + "px";
      guide.style.top = (r.top - f.top + box[1] * k) + "px";
      guide.style.height = ((box[3] - box[1]) * k) + "px";
      tip.hidden = guide.hidden = false;
      var left = e.clientX - f.left + 14;
      if (left + tip.offsetWidth > f.width) left = e.clientX - f.left - tip.offsetWidth - 14;
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = (e.clientY - f.top + 12) + "px";
    });
    svg.addEventListener("mouseleave", function () { tip.hidden = guide.hidden = true; });
    fig.addEventListener("click", function () {
      fig.classList.toggle("wide");
      tip.hidden = guide.hidden = true;
    });
  }
  document.querySelectorAll("figure.chart").forEach(setup);
})();
