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
  // hand the last edits to the browser to deliver.
  function flush() {
    if (submitting || !dirty() || !navigator.sendBeacon) return;
    if (timer) { clearTimeout(timer); timer = null; }
    if (navigator.sendBeacon(url, new FormData(form))) savedEdits = edits;
  }
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
