// The maintainers' inbox: selecting part of a message with the mouse (or the keyboard) fills
// the start/end of that message's annotation form. Offsets count characters as the api does
// (code points, so an emoji is one, not two UTF-16 units).
(function () {
  function chars(text) {
    return Array.from(text).length;
  }

  function offsetIn(box, node, offset) {
    var range = document.createRange();
    range.selectNodeContents(box);
    range.setEnd(node, offset);
    return chars(range.toString());
  }

  function picked() {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    var range = selection.getRangeAt(0);
    var node = range.commonAncestorContainer;
    var element = node.nodeType === 1 ? node : node.parentNode;
    var box = element && element.closest ? element.closest(".nlu-text") : null;
    if (!box) return;
    var form = document.querySelector('form.annotate[data-item="' + box.dataset.item + '"]');
    if (!form) return;
    var start = offsetIn(box, range.startContainer, range.startOffset);
    var end = offsetIn(box, range.endContainer, range.endOffset);
    var text = range.toString();
    // A selection that starts or ends on a space marks the word only.
    var lead = chars(text) - chars(text.replace(/^\s+/, ""));
    var tail = chars(text) - chars(text.replace(/\s+$/, ""));
    start += lead;
    end -= tail;
    if (end <= start) return;
    form.querySelector("input[name=start]").value = start;
    form.querySelector("input[name=end]").value = end;
    var shown = form.querySelector(".picked");
    if (shown) shown.textContent = "已选：“" + text.trim() + "”（" + start + "–" + end + "）";
    var entity = form.querySelector("select[name=entity]");
    if (entity && !entity.value) entity.focus();
  }

  document.addEventListener("mouseup", picked);
  document.addEventListener("keyup", function (event) {
    if (event.shiftKey) picked();
  });
})();
