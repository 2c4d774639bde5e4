// Set-up wizard, participants step: filter the people list as you type and keep the
// ticked count current. Without JavaScript the "Filter" button does the same on the server.
(function () {
  "use strict";
  var box = document.querySelector("[data-filter-people]");
  if (!box) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("li[data-person]"));
  var count = document.querySelector("[data-picked-count]");
  box.addEventListener("input", function () {
    var needle = box.value.trim().toLowerCase();
    rows.forEach(function (row) {
      row.hidden = needle !== "" && row.getAttribute("data-person").indexOf(needle) === -1;
    });
  });
  if (count) {
    box.form.addEventListener("change", function () {
      count.textContent = box.form.querySelectorAll('input[name="employees"]:checked').length +
        box.form.querySelectorAll('input[type="hidden"][name="employees"]').length;
    });
  }
})();
