// The consent form's "if yes" choices (licence, which posts) are shown only once Yes is chosen.
// Without JavaScript they all stay visible and the form works the same: the server ignores them
// when the answer is No.
(function () {
  "use strict";
  var form = document.getElementById("consent-form");
  if (!form) return;
  var yes = form.querySelector('input[name="train_ai"][value="allow"]');
  var choices = form.querySelectorAll(".if-yes");
  function update() {
    for (var i = 0; i < choices.length; i++) choices[i].hidden = !yes.checked;
  }
  var answers = form.querySelectorAll('input[name="train_ai"]');
  for (var i = 0; i < answers.length; i++) answers[i].addEventListener("change", update);
  update();
})();
