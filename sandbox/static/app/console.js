// The console's one piece of glue: a live fragment (an element polling itself) is not swapped while one of its
// action menus is open, so a poll never closes the menu under the user's pointer. The next poll catches up.
document.addEventListener("htmx:beforeSwap", function (event) {
  var target = event.detail.target;
  var polling = (target.getAttribute("hx-trigger") || "").indexOf("every ") === 0;
  if (polling && target.querySelector("details.menu[open]")) {
    event.detail.shouldSwap = false;
  }
});
