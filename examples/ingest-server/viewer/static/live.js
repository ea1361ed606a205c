// The viewer's only script: reload the page when the index has grown
// (new cycles arrived), and pick a range by dragging on the time axis.
(function () {
  var gen = document.body.getAttribute("data-gen");
  var live = document.getElementById("live");
  function poll() {
    fetch("/api/version", {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (g) {
      if (g !== gen && !document.hidden) { location.reload(); }
      live.className = "live";
    }).catch(function () { live.className = "live stale"; });
  }
  setInterval(poll, 5000);

  var axis = document.getElementById("axis");
  if (!axis) { return; }
  var x0 = Number(axis.getAttribute("data-x0")), x1 = Number(axis.getAttribute("data-x1"));
  var padl = Number(axis.getAttribute("data-padl")), plotw = Number(axis.getAttribute("data-plotw"));
  function timeAt(ev) {
    var box = axis.getBoundingClientRect();
    var x = (ev.clientX - box.left) * (axis.viewBox.baseVal.width / box.width);
    var f = Math.min(1, Math.max(0, (x - padl) / plotw));
    return Math.round(x0 + f * (x1 - x0));
  }
  var start = null;
  axis.addEventListener("mousedown", function (ev) { start = timeAt(ev); ev.preventDefault(); });
  axis.addEventListener("mouseup", function (ev) {
    if (start === null) { return; }
    var end = timeAt(ev), a = Math.min(start, end), b = Math.max(start, end);
    start = null;
    if (b - a < 1e6) { return; }
    var q = new URLSearchParams(location.search);
    q.set("from", String(a)); q.set("to", String(b));
    location.search = q.toString();
  });
})();
