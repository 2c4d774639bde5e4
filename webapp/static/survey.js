// Progressive enhancement for the survey page: autosave and a confirm on submit.
// Without JavaScript the page works the same, saving on "Save and continue".
(function () {
  "use strict";
  var form = document.getElementById("survey");
  if (!form || !window.fetch) return;
  var status = form.querySelector(".save-status");
  var timer = null;
  var pending = false;

  function say(text) { if (status) status.textContent = text; }

  function save() {
    timer = null;
    if (pending) { timer = setTimeout(save, 500); return; }
    pending = true;
    say("Saving…");
    fetch(form.dataset.autosave, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) { say(res.data.error || "Not saved yet."); return; }
      var n = Object.keys(res.data.errors || {}).length;
      say(n ? "Saved, except " + n + " answer(s) that need a look." : "All changes saved.");
    }).catch(function () {
      say("Offline? Your answers will be saved when you continue.");
    }).then(function () { pending = false; });
  }

  function schedule(delay) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, delay);
  }

  form.addEventListener("change", function () { schedule(400); });
  form.addEventListener("input", function (e) {
    if (e.target.tagName === "TEXTAREA") schedule(1500);
  });
  form.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    if (timer) clearTimeout(timer);
    if (button && button.value === "submit") {
      // Avoid a double submit; the server would refuse it anyway.
      setTimeout(function () { button.disabled = true; }, 0);
    }
  });
})();
