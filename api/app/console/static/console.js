// Tiny helpers for the console (no build step): stop double submits of ordinary forms.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
  var button = form.querySelector("button[type=submit], button:not([type])");
  if (button) {
    setTimeout(function () { button.disabled = true; }, 0);
  }
});
