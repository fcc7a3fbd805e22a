// Sign-up: preselect this device's time zone (without JavaScript the list stays on UTC).
(function () {
  "use strict";
  var select = document.getElementById("time_zone");
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!select || !zone || select.getAttribute("data-chosen") === "true") {
    return;
  }
  var known = Array.prototype.some.call(select.options, function (option) {
    return option.value === zone;
  });
  if (known) {
    select.value = zone;
  }
})();
