// Draws a BPMN diagram with bpmn-js and puts accord's numbers on it.
// <div data-bpmn="URL" data-mode="process|case" data-source="ID" [data-poll="URL"]>:
// "process": live counts per step and a heat colour for the mean waiting time;
// "case": where the case stands (current, done and failed steps, who holds each task).
(function () {
  "use strict";

  function heat(h) {
    var hue = 120 - 120 * Math.min(1, Math.max(0, h || 0));
    return "hsl(" + hue.toFixed(0) + ", 75%, 85%)";
  }

  function human(s) {
    if (s === null || s === undefined) return "-";
    if (s < 120) return s.toFixed(0) + "s";
    if (s < 7200) return (s / 60).toFixed(1) + "m";
    if (s < 172800) return (s / 3600).toFixed(1) + "h";
    return (s / 86400).toFixed(1) + "d";
  }

  function badge(text, cls) {
    var div = document.createElement("div");
    div.className = "ov" + (cls ? " " + cls : "");
    div.textContent = text;
    return div;
  }

  function paintProcess(viewer, data) {
    var overlays = viewer.get("overlays");
    var registry = viewer.get("elementRegistry");
    overlays.remove({ type: "accord" });
    Object.keys(data.steps).forEach(function (step) {
      var s = data.steps[step];
      if (!s.element || !registry.get(s.element)) return;
      var gfx = registry.getGraphics(s.element);
      var shape = gfx && gfx.querySelector(".djs-visual > :first-child");
      if (shape && s.wait_mean_s !== null) shape.style.fill = heat(s.heat);
      var open = s.ready + s.claimed + s.waiting + s.failed;
      var parts = [];
      if (s.ready) parts.push(s.ready + " ready");
      if (s.claimed) parts.push(s.claimed + " in progress");
      if (s.waiting) parts.push(s.waiting + " waiting");
      if (s.failed) parts.push(s.failed + " failed");
      if (open) {
        overlays.add(s.element, "accord", {
          position: { top: -14, left: 0 },
          html: badge(parts.join(" · "), s.failed ? "hot" : ""),
        });
      }
      if (s.wait_mean_s !== null) {
        overlays.add(s.element, "accord", {
          position: { bottom: 2, left: 0 },
          html: badge("wait " + human(s.wait_mean_s), s.heat > 0.66 ? "hot" : ""),
        });
      }
    });
  }

  function paintCase(viewer, data) {
    var canvas = viewer.get("canvas");
    var overlays = viewer.get("overlays");
    var registry = viewer.get("elementRegistry");
    var mark = function (ids, cls) {
      ids.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, cls); });
    };
    mark(data.done, "accord-done");
    mark(data.current, "accord-current");
    mark(data.failed, "accord-failed");
    Object.keys(data.holders).forEach(function (id) {
      if (!registry.get(id)) return;
      overlays.add(id, "accord", {
        position: { top: -14, left: 0 },
        html: badge(data.holders[id], "holder"),
      });
    });
  }

  async function draw(el) {
    if (typeof window.BpmnJS === "undefined") {
      el.textContent = "The diagram needs bpmn-js: run `make install` (npm ci) on the server.";
      el.dataset.state = "missing";
      return;
    }
    var viewer = new window.BpmnJS({ container: el });
    try {
      var res = await fetch(el.dataset.bpmn, { credentials: "same-origin" });
      await viewer.importXML(await res.text());
    } catch (err) {
      el.dataset.state = "error";
      el.appendChild(document.createTextNode("The diagram could not be drawn: " + err.message));
      return;
    }
    viewer.get("canvas").zoom("fit-viewport");
    var source = document.getElementById(el.dataset.source);
    var data = JSON.parse(source.textContent);
    var paint = el.dataset.mode === "case" ? paintCase : paintProcess;
    paint(viewer, data);
    el.dataset.state = "ready";
    if (el.dataset.poll) {
      setInterval(async function () {
        try {
          var r = await fetch(el.dataset.poll, { credentials: "same-origin" });
          if (r.ok) paint(viewer, await r.json());
        } catch (e) { /* the next poll tries again */ }
      }, 10000);
    }
  }

  document.querySelectorAll("[data-bpmn]").forEach(draw);
})();
