// The proposal form, enhanced: a live line "Milestones add up to X of Y" as amounts are typed, marked
// when they do not match. Amounts are read as the server reads them (milepost.money.parse_amount: digits,
// optional thousands commas, a decimal point, no more decimals than the currency has). The server's check
// is the authority; this only helps. Without JavaScript the form works the same, minus the live line.
(function () {
  "use strict";
  var form = document.getElementById("propose-form");
  var line = document.getElementById("proposal-sum");
  if (!form || !line || typeof BigInt !== "function") return;
  var exponent = parseInt(form.getAttribute("data-exponent"), 10);
  var currency = form.getAttribute("data-currency");
  var total = form.querySelector("[name=amount]");
  var PLAIN = /^[0-9]{1,16}(\.[0-9]{1,16})?$/;
  var scale = BigInt(10) ** BigInt(exponent);

  // Minor units as a BigInt, or null when the server would refuse the text.
  function minorUnits(text) {
    var cleaned = text.trim().replace(/,/g, "");
    if (!PLAIN.test(cleaned)) return null;
    var parts = cleaned.split(".");
    var fraction = (parts[1] || "").replace(/0+$/, ""); // "1.50" is 1.5: trailing zeros are no decimals
    if (fraction.length > exponent) return null;
    while (fraction.length < exponent) fraction += "0";
    return BigInt(parts[0]) * scale + BigInt(fraction || "0");
  }

  function format(minor) {
    var digits = minor.toString();
    while (digits.length <= exponent) digits = "0" + digits;
    var whole = digits.slice(0, digits.length - exponent);
    var decimal = exponent ? whole + "." + digits.slice(digits.length - exponent) : whole;
    try {
      return new Intl.NumberFormat("en-US", {
        style: "currency",
        currency: currency,
        minimumFractionDigits: exponent,
        maximumFractionDigits: exponent,
      }).format(decimal);
    } catch (error) {
      return decimal + " " + currency;
    }
  }

  function show(text, state) {
    line.hidden = false;
    line.textContent = text;
    line.classList.toggle("match", state === "match");
    line.classList.toggle("mismatch", state === "mismatch");
  }

  function update() {
    var sum = BigInt(0);
    var unreadable = 0;
    form.querySelectorAll("[name=milestone_amount]").forEach(function (input) {
      if (!input.value.trim()) return;
      var amount = minorUnits(input.value);
      if (amount === null) unreadable += 1;
      else sum += amount;
    });
    var target = total.value.trim() ? minorUnits(total.value) : null;
    var example = exponent ? "150." + "0".repeat(exponent) : "150";
    if (unreadable) {
      show("A milestone amount is not an amount such as " + example + ".", "mismatch");
    } else if (target === null) {
      show("Milestones add up to " + format(sum) + "; enter the total amount to compare.", "");
    } else if (sum === target) {
      show("Milestones add up to " + format(sum) + " of " + format(target) + ": they match.", "match");
    } else {
      var gap = sum < target ? format(target - sum) + " short" : format(sum - target) + " too much";
      show("Milestones add up to " + format(sum) + " of " + format(target) + ": " + gap + ".", "mismatch");
    }
  }

  form.addEventListener("input", update);
  update();
})();
