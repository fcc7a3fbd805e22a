// The proposal form, enhanced: a live line "Milestones add up to X of Y" as amounts are typed, marked
// when they do not match, with what the freelancer would receive after the platform fee, in all and by
// each milestone (the fee rounded half up per milestone, as milepost.money.fee_on does). Amounts are read as the server reads them (milepost.money.parse_amount: an
// optional leading symbol or code of the currency, digits with commas only between whole thousands, a
// decimal point, no more decimals than the currency has; "12,50" is unreadable, never 1,250). The server's
// check is the authority; this only helps. Without JavaScript the form works the same, minus the live line.
(function () {
  "use strict";
  var form = document.getElementById("propose-form");
  var line = document.getElementById("proposal-sum");
  if (!form || !line || typeof BigInt !== "function") return;
  var exponent = parseInt(form.getAttribute("data-exponent"), 10);
  var currency = form.getAttribute("data-currency");
  var total = form.querySelector("[name=amount]");
  var marks = [currency, form.getAttribute("data-symbol") || currency].sort(function (a, b) {
    return b.length - a.length;
  });
  var AMOUNT = /^([0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.([0-9]+))?$/;
  var scale = BigInt(10) ** BigInt(exponent);
  var feeBps = BigInt(parseInt(form.getAttribute("data-fee-bps") || "0", 10));

  // What the freelancer receives of a milestone: the amount less the fee, rounded half up.
  function net(amount) {
    var fee = (BigInt(2) * amount * feeBps + BigInt(10000)) / BigInt(20000);
    return amount - fee;
  }

  // Minor units as a BigInt, or null when the server would refuse the text.
  function minorUnits(text) {
    var cleaned = text.trim();
    for (var i = 0; i < marks.length; i += 1) {
      if (cleaned.indexOf(marks[i]) === 0) {
        cleaned = cleaned.slice(marks[i].length).trim();
        break;
      }
    }
    var match = cleaned.length <= 40 ? AMOUNT.exec(cleaned) : null;
    if (!match) return null;
    var fraction = match[2] || "";
    if (fraction.length > exponent) return null;
    while (fraction.length < exponent) fraction += "0";
    return BigInt(match[1].replace(/,/g, "")) * scale + BigInt(fraction || "0");
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
    var received = BigInt(0);
    var unreadable = 0;
    form.querySelectorAll("[name=milestone_amount]").forEach(function (input) {
      var note = document.getElementById(input.id.replace("-amount", "-net"));
      if (note) note.textContent = "";
      if (!input.value.trim()) return;
      var amount = minorUnits(input.value);
      if (amount === null) {
        unreadable += 1;
        return;
      }
      sum += amount;
      received += net(amount);
      if (note) note.textContent = "You would receive " + format(net(amount)) + ".";
    });
    var after = sum ? " You would receive " + format(received) + " after the platform fee." : "";
    var target = total.value.trim() ? minorUnits(total.value) : null;
    var example = exponent ? "1,234." + "5".padEnd(exponent, "0") : "1,234";
    if (unreadable) {
      show("A milestone amount cannot be read: write amounts like " + example + ".", "mismatch");
    } else if (target === null) {
      show("Milestones add up to " + format(sum) + "; enter the total amount to compare." + after, "");
    } else if (sum === target) {
      show("Milestones add up to " + format(sum) + " of " + format(target) + ": they match." + after, "match");
    } else {
      var gap = sum < target ? format(target - sum) + " short" : format(sum - target) + " too much";
      show("Milestones add up to " + format(sum) + " of " + format(target) + ": " + gap + "." + after, "mismatch");
    }
  }

  form.addEventListener("input", update);
  update();
})();
