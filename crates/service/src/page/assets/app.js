// driftwatch status page: live updates, the filter box and the actions. Plain JavaScript with
// no dependencies, served by driftwatch itself (the Content-Security-Policy allows no other
// script and no inline code). Without it the page still works: reload to refresh, and the
// filter box submits a GET form.
(function () {
  "use strict";

  var live = document.getElementById("live");
  var filter = document.getElementById("filter");

  function setLive(text, cls) {
    if (live) {
      live.textContent = text;
      live.className = "live " + (cls || "");
    }
  }

  // Hides the overview's rows whose name does not contain the filter's text.
  function applyFilter() {
    if (!filter) return;
    var q = filter.value.trim().toLowerCase();
    // A row's name is its first cell's link text (rows carry no extra attribute for it).
    document.querySelectorAll("#rows tr").forEach(function (tr) {
      var a = tr.querySelector("td a");
      if (a) tr.hidden = q !== "" && a.textContent.toLowerCase().indexOf(q) < 0;
    });
  }

  // Re-renders every [data-live] element from its URL (server-rendered, escaped HTML).
  // At most one round at a time; events that arrive meanwhile ask for one more.
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    var parts = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    Promise.all(parts.map(function (el) {
      return fetch(el.getAttribute("data-live"), { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; });
    })).then(function () {
      applyFilter();
      document.body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () {
      setLive("stale", "bad");
    }).then(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  if (filter) {
    filter.addEventListener("input", function () {
      var rows = document.getElementById("rows");
      var q = filter.value.trim();
      if (rows) rows.setAttribute("data-live", q ? "/ui/rows?q=" + encodeURIComponent(q) : "/ui/rows");
      applyFilter();
    });
  }

  if (window.EventSource && document.querySelector("[data-live]")) {
    var source = new EventSource("/events/stream");
    source.addEventListener("open", function () { setLive("live", "ok"); });
    source.addEventListener("error", function () { setLive("reconnecting", "warn"); });
    source.addEventListener("service", refresh);
    source.addEventListener("status", refresh);
  }

  // Actions: the token is typed on the page and sent as a bearer header, never stored. The
  // buttons are the form's (sync, refresh) and those next to what waits (approve, reject,
  // release), which live updates re-render: clicks are caught on the document.
  var actions = document.getElementById("actions");
  if (actions) {
    var out = document.getElementById("action-result");
    document.addEventListener("click", function (ev) {
      var what = ev.target.getAttribute && ev.target.getAttribute("data-action");
      if (!what) return;
      var headers = { "Authorization": "Bearer " + document.getElementById("token").value };
      var user = document.getElementById("user");
      if (user && user.value.trim() !== "") headers["X-Driftwatch-User"] = user.value.trim();
      fetch(actions.getAttribute("data-base") + "/" + what, {
        method: "POST",
        headers: headers,
      }).then(function (r) {
        return r.text().then(function (t) {
          out.textContent = r.status + " " + t;
          // A decision shows in the timeline at once; what it causes follows live.
          if (r.ok) refresh();
        });
      }).catch(function (e) {
        out.textContent = String(e);
      });
    });
    actions.addEventListener("submit", function (ev) { ev.preventDefault(); });
  }
})();
