(function () {
  "use strict";
  var base = document.body.getAttribute("data-base");
  var es = null, poller = null, fails = 0, offset = 0, redirectTimer = null, busy = false;
  function main() { return document.getElementById("checkout"); }
  function isFinal() { var s = main().getAttribute("data-screen"); return s === "paid" || s === "expired" || s === "closed"; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var el = document.getElementById("countdown");
    if (!el) return;
    var left = Math.max(0, Math.floor((parseInt(el.getAttribute("data-expires"), 10) * 1000 - (Date.now() + offset)) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    if (left === 0 && !el.hasAttribute("data-done")) { el.setAttribute("data-done", "1"); refresh(); }
  }
  function setup() {
    var m = main();
    var now = parseInt(m.getAttribute("data-server-now") || "0", 10);
    if (now) offset = now * 1000 - Date.now();
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
    tick();
    var url = m.getAttribute("data-redirect");
    if (url && !redirectTimer) {
      redirectTimer = setTimeout(function () { location.assign(url); }, parseInt(m.getAttribute("data-redirect-delay") || "4000", 10));
    }
    if (isFinal()) stop();
  }
  function stop() {
    if (es) { es.close(); es = null; }
    if (poller) { clearInterval(poller); poller = null; }
  }
  function refresh() {
    if (busy) return;
    busy = true;
    var q = location.search.replace(/([?&])choose=1(&|$)/, "$1").replace(/^\?/, "");
    var url = location.pathname + "?part=main" + (q ? "&" + q : "");
    fetch(url, { cache: "no-store", credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      var next = doc.getElementById("checkout");
      if (next) { main().replaceWith(document.importNode(next, true)); setup(); }
    }).catch(function () {}).then(function () { busy = false; });
  }
  function onStatus(s) {
    if (s && s.fingerprint && s.fingerprint !== main().getAttribute("data-fp")) refresh();
  }
  function poll() {
    if (poller || isFinal()) return;
    poller = setInterval(function () {
      fetch(base + "/status", { cache: "no-store" }).then(function (r) { return r.json(); }).then(onStatus).catch(function () {});
    }, 4000);
  }
  function listen() {
    if (isFinal()) return;
    if (!window.EventSource) { poll(); return; }
    es = new EventSource(base + "/events");
    es.addEventListener("status", function (e) {
      fails = 0;
      try { onStatus(JSON.parse(e.data)); } catch (x) { /* ignore a bad frame */ }
    });
    es.onerror = function () {
      fails++;
      // A refused stream (429 over a cap) closes for good: poll /status instead.
      if (es && (fails >= 3 || es.readyState === 2)) { es.close(); es = null; poll(); }
    };
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!b) return;
    var value = b.getAttribute("data-copy"), label = b.textContent;
    function done() { b.textContent = b.getAttribute("data-copied"); setTimeout(function () { b.textContent = label; }, 1500); }
    function select() {
      var target = b.parentNode.querySelector(".mono");
      if (!target) return;
      var r = document.createRange(); r.selectNodeContents(target);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(value).then(done, select);
    else select();
  });
  setup();
  listen();
  setInterval(tick, 1000);
})();
