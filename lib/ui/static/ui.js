// pypi-lite web UI: optional enhancements only (the pages work without JavaScript).
// Copy buttons: every <button class="copy" data-copy="..."> is shown and copies its text.
'use strict';
document.addEventListener('DOMContentLoaded', function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll('button.copy[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(button.getAttribute('data-copy') || '').then(
        function () {
          var label = button.textContent;
          button.textContent = 'Copied';
          button.classList.add('copied');
          setTimeout(function () {
            button.textContent = label;
            button.classList.remove('copied');
          }, 1500);
        },
        function () {
          button.textContent = 'Press Ctrl+C';
        }
      );
    });
  });
});
