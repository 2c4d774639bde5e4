// Progressive enhancement for the survey page: autosave and a confirm on submit.
// Without JavaScript the page works the same, saving on "Save and continue".
(function () {
  "use strict";
  var form = document.getElementById("survey");
  if (!form || !window.fetch || !window.FormData) return;
  var url = form.dataset.autosave;
  var status = form.querySelector(".save-status");
  var timer = null;
  var inflight = null;  // the running autosave request, if any
  var edits = 0;        // bumped on every change, so a save knows if it is still current
  var savedEdits = 0;
  var submitting = false;

  function say(text) { if (status && status.textContent !== text) status.textContent = text; }
  function dirty() { return edits !== savedEdits; }

  function save() {
    timer = null;
    if (inflight) { schedule(500); return; }
    var version = edits;
    say("Saving…");
    inflight = fetch(url, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) { say(res.data.error || "Not saved yet."); return; }
      savedEdits = Math.max(savedEdits, version);
      if (dirty()) return;  // newer edits are waiting for their own save
      forget();
      var n = Object.keys(res.data.errors || {}).length;
      say(n ? "Saved, except " + n + " answer(s) that need a look." : "All changes saved.");
    }).catch(function () {
      say("Offline? Your answers will be saved when you continue.");
    }).then(function () { inflight = null; });
  }

  function schedule(delay) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, delay);
  }

  function edited(delay) {
    edits += 1;
    // Never leave "All changes saved" on screen while something is unsaved.
    if (!inflight) say("Unsaved changes…");
    schedule(delay);
  }

  form.addEventListener("change", function () { edited(400); });
  form.addEventListener("input", function (e) {
    if (e.target.tagName === "TEXTAREA") edited(1500);
  });

  // Leaving the page (closing the tab, following a link) before the autosave fired:
  // hand the last edits to the browser to deliver. A reload can be answered before that
  // delivery arrives, so the edits are also kept in this tab for a minute (below).
  function flush() {
    if (submitting || !dirty() || !navigator.sendBeacon) return;
    if (timer) { clearTimeout(timer); timer = null; }
    keep();
    if (navigator.sendBeacon(url, new FormData(form))) savedEdits = edits;
  }

  var KEY = "feedback360:unsaved:" + url;
  var KEEP_MS = 60000;
  function keep() {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token" && name !== "section" && typeof value === "string") {
        fields.push([name, value]);
      }
    });
    try { sessionStorage.setItem(KEY, JSON.stringify({ at: Date.now(), fields: fields })); }
    catch (err) { /* storage full or disabled: the beacon alone has to do */ }
  }
  function forget() {
    try { sessionStorage.removeItem(KEY); } catch (err) { /* nothing kept */ }
  }
  // The page was reloaded right after edits whose delivery may have come too late for
  // it: put them back and save them again.
  function restore() {
    var kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (err) { kept = null; }
    forget();
    if (!kept || !kept.fields || Date.now() - kept.at > KEEP_MS) return;
    var changed = false;
    kept.fields.forEach(function (pair) {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name !== pair[0]) return;
        if (el.type === "radio") {
          if (el.value === pair[1] && !el.checked) { el.checked = true; changed = true; }
        } else if (el.tagName === "TEXTAREA" && el.value !== pair[1]) {
          el.value = pair[1];
          changed = true;
        }
      });
    });
    if (changed) edited(0);
  }
  restore();
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });

  form.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (!submitting && button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    submitting = true;
    forget();
    if (timer) { clearTimeout(timer); timer = null; }
    if (inflight) {
      // Let a running autosave finish first, so it cannot land after the submit.
      e.preventDefault();
      inflight.then(function () {
        if (form.requestSubmit) form.requestSubmit(button); else form.submit();
      });
      return;
    }
    if (button && button.value === "submit") {
      // Avoid a double submit; the server would refuse it anyway.
      setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  // Coming back with the browser's Back button restores this page from memory as it
  // was left: undo the double-submit guard.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    submitting = false;
    Array.prototype.forEach.call(form.querySelectorAll("button[disabled]"), function (b) {
      b.disabled = false;
    });
  });
})();
