// Coffer console: copy buttons for values shown once (keys, secrets, links). Everything else
// works without JavaScript.
(function () {
  'use strict';
  document.querySelectorAll('button.copy[data-copy]').forEach(function (b) {
    b.hidden = false;
    b.addEventListener('click', function () {
      var done = function () {
        var label = b.textContent;
        b.textContent = b.getAttribute('data-copied') || label;
        setTimeout(function () { b.textContent = label; }, 1500);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(b.getAttribute('data-copy')).then(done, function () {});
      }
    });
  });
})();
