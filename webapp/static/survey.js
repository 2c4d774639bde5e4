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
  var offline = false;  // the last autosave could not reach the server

  function say(text) { if (status && status.textContent !== text) status.textContent = text; }
  function dirty() { return edits !== savedEdits; }

  function save() {
    timer = null;
    if (inflight) { schedule(500); return inflight; }
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
      offline = false;
      if (!res.ok) { say(res.data.error || "Not saved yet."); return; }
      savedEdits = Math.max(savedEdits, version);
      if (dirty()) return;  // newer edits are waiting for their own save
      forget();
      var n = showErrors(res.data.errors || {});
      say(n === 0 ? "All changes saved." : n === 1
        ? "Saved, except one answer: see the message next to it."
        : "Saved, except " + n + " answers: see the messages next to them.");
    }).catch(function () {
      // No answer at all (offline, or the server restarting): keep trying; the answers
      // stay on this page meanwhile.
      offline = true;
      say("Not saved: no connection. Keep this page open; it will try again.");
      if (!timer) timer = setTimeout(save, 5000);
    }).then(function () { inflight = null; });
    return inflight;
  }

  // The autosave's refusals, next to their answers (the server's page shows them the
  // same way): a comment too long is not saved until it is shortened, so say so there.
  function showErrors(errors) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error[data-autosave]"), function (p) {
      p.parentNode.removeChild(p);
    });
    var keys = Object.keys(errors);
    keys.forEach(function (key) {
      var box = document.getElementById("q-" + key.replace(/\./g, "-"));
      // A comment over its limit: the count under it says so already (a second message
      // above the box would push the buttons down once more, later).
      if (!box || box.querySelector(".char-count.over")) return;
      var p = document.createElement("p");
      p.className = "field-error";
      p.dataset.autosave = "";
      p.textContent = "\u26a0 Not saved: " + errors[key];
      var label = box.querySelector("label, legend");
      if (label && label.nextSibling) box.insertBefore(p, label.nextSibling); else box.appendChild(p);
    });
    return keys.length;
  }

  // A live count under each comment box once it nears its limit: the server refuses a
  // longer comment, so say so while it is being typed or pasted.
  Array.prototype.forEach.call(form.querySelectorAll("textarea[data-maxlength]"), function (box) {
    var max = parseInt(box.dataset.maxlength, 10);
    if (!max) return;
    var count = document.createElement("p");
    count.className = "hint char-count";
    count.id = box.id + "-count";
    count.setAttribute("aria-live", "polite");
    box.parentNode.insertBefore(count, box.nextSibling);
    box.setAttribute("aria-describedby", (box.getAttribute("aria-describedby") || "") + " " + count.id);
    function update() {
      var n = Array.from(box.value.trim()).length;  // characters as the server counts them
      var over = n > max;
      count.hidden = n < max * 0.9;
      count.classList.toggle("over", over);
      count.textContent = n.toLocaleString("en") + " of " + max.toLocaleString("en") + " characters" +
        (over ? ": please shorten it by " + (n - max).toLocaleString("en") + " to save it." : "");
      if (over) box.setAttribute("aria-invalid", "true");
      else if (!box.closest(".has-error")) box.removeAttribute("aria-invalid");
    }
    box.addEventListener("input", update);
    update();
  });

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
    if (submitting) { guard(button); return; }  // the submit let through by go()
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    if (timer) { clearTimeout(timer); timer = null; }
    // Unsaved typing (or a connection lost before): save it first, which also tells
    // whether the server can be reached. A running autosave finishes first too, so it
    // cannot land after the submit.
    var pending = inflight || (dirty() || offline ? save() : null);
    if (pending) {
      e.preventDefault();
      pending.then(function () {
        if (offline) {
          // Sent now it would end on the browser's error page, and the typing with it.
          keep();
          say("No connection: nothing was sent, and your answers are still here. Try again in a moment.");
          return;  // the autosave keeps trying meanwhile
        }
        go(button);
      });
      return;
    }
    submitting = true;
    forget();
    guard(button);
  });

  function guard(button) {
    if (button && button.value === "submit") {
      // Avoid a double submit; the server would refuse it anyway.
      setTimeout(function () { button.disabled = true; }, 0);
    }
  }

  function go(button) {
    submitting = true;
    forget();
    if (form.requestSubmit) form.requestSubmit(button); else form.submit();
  }

  // Coming back with the browser's Back button restores this page from memory as it
  // was left: undo the double-submit guard.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    submitting = false;
    Array.prototype.forEach.call(form.querySelectorAll("button[disabled]"), function (b) {
      b.disabled = false;
    });
    // What the page shows may not be what the server has (a submit that never arrived):
    // save it again.
    edited(0);
  });
})();
