// The book's interactive heavy-ball figure (rnnopt.figures.heavy_ball_explorer).
// Every path was computed by rnnopt when the chapter was executed and sits in the page as JSON;
// this script only draws the one the sliders select: no kernel, no network, no library.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function setUp(figure) {
    var data = JSON.parse(figure.querySelector('script[type="application/json"]').textContent);
    var width = 640, height = 260, pad = 28;
    var sx = (width - 2 * pad) / (data.xlim[1] - data.xlim[0]);
    var sy = (height - 2 * pad) / (data.ylim[1] - data.ylim[0]);
    function X(x) { return pad + (x - data.xlim[0]) * sx; }
    function Y(y) { return height - pad - (y - data.ylim[0]) * sy; }

    var svg = el("svg", {viewBox: "0 0 " + width + " " + height, role: "img",
                         "aria-label": "heavy-ball path on a quadratic valley"});
    svg.style.width = "100%";
    svg.style.maxWidth = width + "px";
    figure.querySelector(".rnnopt-interactive-plot").appendChild(svg);
    var clip = el("clipPath", {id: figure.id + "-clip"}, el("defs", {}, svg));
    el("rect", {x: pad, y: pad, width: width - 2 * pad, height: height - 2 * pad}, clip);
    el("rect", {x: pad, y: pad, width: width - 2 * pad, height: height - 2 * pad,
                fill: "none", stroke: "#999"}, svg);
    var contours = el("g", {"clip-path": "url(#" + figure.id + "-clip)"}, svg);
    [0.02, 0.08, 0.3, 1, 3, 10].forEach(function (level) {  // f = ½(x² + κy²) = level
      var r = Math.sqrt(2 * level);
      el("ellipse", {cx: X(0), cy: Y(0), rx: r * sx, ry: r / Math.sqrt(data.kappa) * sy,
                     fill: "none", stroke: "#bbb"}, contours);
    });
    var line = el("polyline", {fill: "none", stroke: "#1f77b4", "stroke-width": 2,
                               "clip-path": "url(#" + figure.id + "-clip)",
                               "class": "rnnopt-path"}, svg);
    el("circle", {cx: X(data.start[0]), cy: Y(data.start[1]), r: 5, fill: "black"}, svg);
    el("text", {x: X(0), y: Y(0) + 5, "text-anchor": "middle", "font-size": 16}, svg)
      .textContent = "★";
    var axisLabel = el("text", {x: width / 2, y: height - 6, "text-anchor": "middle",
                                "font-size": 13}, svg);
    axisLabel.textContent = "x (parameter 1), from " + data.xlim[0] + " to " + data.xlim[1];

    var alpha = figure.querySelector('input[name="alpha"]');
    var beta = figure.querySelector('input[name="beta"]');
    var readout = figure.querySelector(".rnnopt-interactive-readout");

    function distance(d) {  // the paths are stored to 2 decimals
      return d < 0.01 ? "below 0.01" : d.toPrecision(2);
    }

    function draw() {
      var i = Number(alpha.value), j = Number(beta.value);
      var a = data.alpha_lambda[i], b = data.beta[j], path = data.paths[i][j];
      line.setAttribute("points", path.map(function (p) {
        return X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1);
      }).join(" "));
      figure.querySelector('output[name="alpha"]').textContent = a.toFixed(1);
      figure.querySelector('output[name="beta"]').textContent = b.toFixed(1);
      var bound = 2 + 2 * b, rate = data.rate[i][j];
      var last = path[path.length - 1];
      var verdict = rate < 1
        ? "converges: the error shrinks by a factor " + rate.toFixed(3) + " per step"
        : "diverges: the error grows by a factor " + rate.toFixed(3) + " per step";
      readout.textContent = "αλmax = " + a.toFixed(1) + (a < bound ? " < " : " ≥ ") +
        "2 + 2β = " + bound.toFixed(1) + ", so the method " + verdict +
        (path.length > data.steps ? "; distance to the minimum after " + data.steps +
         " steps: " + distance(Math.hypot(last[0], last[1])) : "; the path left the window") +
        ".";
      figure.setAttribute("data-drawn", i + "," + j);
    }
    alpha.addEventListener("input", draw);
    beta.addEventListener("input", draw);
    draw();
  }

  function init() {
    document.querySelectorAll("figure.rnnopt-interactive").forEach(setUp);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
