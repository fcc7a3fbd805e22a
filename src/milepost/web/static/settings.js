// Settings: a button that picks this device's time zone in the list (the form works without it).
(function () {
  "use strict";
  var select = document.getElementById("time_zone");
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!select || !zone) {
    return;
  }
  var known = Array.prototype.some.call(select.options, function (option) {
    return option.value === zone;
  });
  if (!known) {
    return;
  }
  var button = document.createElement("button");
  button.type = "button";
  button.id = "use-device-zone";
  button.className = "secondary";
  button.textContent = "Use this device's time zone";
  var note = document.createElement("p");
  note.className = "hint";
  note.id = "device-zone-note";
  note.setAttribute("role", "status");
  button.addEventListener("click", function () {
    select.value = zone;
    note.textContent = zone + " selected. Save to keep it.";
    select.focus();
  });
  select.insertAdjacentElement("afterend", button);
  button.insertAdjacentElement("afterend", note);
})();
