// obole: small progressive enhancements. Every page works without this file; the server
// stays the judge of every amount. No text is written here: each comes from the page, in
// its language, through data attributes.
"use strict";

// What a person typed in an amount field, read by the server's rules (Money::parse_input):
// "12,50", "12.50", "1 250 €"; at most two decimals and twelve integer digits, above zero.
// Gives { cents } or { error } (the name of the data attribute holding the message), or
// null for an empty field.
function readAmount(input) {
  let text = input.trim();
  while (text.endsWith("€")) text = text.slice(0, -1);
  text = text.replace(/[ \u00a0\u202f]/g, "");
  if (text === "") return null;
  let negative = false;
  if (text.startsWith("-")) {
    negative = true;
    text = text.slice(1);
  } else if (text.startsWith("+")) {
    text = text.slice(1);
  }
  if (!/^[0-9]+([.,][0-9]*)?$/.test(text)) return { error: "notANumber" };
  const [units, decimals = ""] = text.split(/[.,]/);
  if (units.replace(/^0+/, "").length > 12) return { error: "tooLarge" };
  if (decimals.length > 2) return { error: "tooManyDecimals" };
  const cents = Number(units) * 100 + Number(decimals.padEnd(2, "0"));
  if (cents === 0) return { error: "zero" };
  if (negative) return { error: "negative" };
  return { cents };
}

// Under an amount field (`data-amount-hint` names the hint's element): what will be charged,
// in the page's language, or why it is not an amount. The hint is a polite live region.
function amountHint(field) {
  const hint = document.getElementById(field.dataset.amountHint);
  if (!hint) return;
  const money = new Intl.NumberFormat(document.documentElement.lang || "fr", {
    style: "currency",
    currency: hint.dataset.currency || "EUR",
  });
  const show = () => {
    const amount = readAmount(field.value);
    hint.classList.toggle("bad", Boolean(amount && amount.error));
    if (amount === null) {
      hint.textContent = "";
    } else if (amount.error) {
      hint.textContent = hint.dataset[amount.error] || "";
    } else {
      const said = money.format(amount.cents / 100);
      hint.textContent = (hint.dataset.willPay || "{amount}").replace("{amount}", said);
    }
  };
  field.addEventListener("input", show);
  field.addEventListener("change", show);
}

document.querySelectorAll("input[data-amount-hint]").forEach(amountHint);
