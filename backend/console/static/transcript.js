// Speech drafts under the audio players: a click on a word (a button with data-start, in a
// .draft-words paragraph whose data-audio names the player) plays the recording from that word;
// while it plays, the word being spoken is marked.
(function () {
  "use strict";
  function playerOf(words) { return words && document.getElementById(words.dataset.audio); }

  document.addEventListener("click", function (e) {
    var word = e.target.closest && e.target.closest(".draft-words .word[data-start]");
    if (!word) return;
    var audio = playerOf(word.closest(".draft-words"));
    if (!audio) return;
    var start = parseFloat(word.dataset.start);
    if (!isFinite(start)) return;
    audio.currentTime = start;
    var playing = audio.play();
    if (playing && playing.catch) playing.catch(function () { /* the browser refused to play: the seek stands */ });
  });

  // The word under the playhead, marked with class "now" (and aria-current for screen readers).
  document.addEventListener("timeupdate", function (e) {
    var audio = e.target;
    if (!audio.id || audio.tagName !== "AUDIO") return;
    var words = document.querySelector('.draft-words[data-audio="' + audio.id + '"]');
    if (!words) return;
    var t = audio.currentTime;
    words.querySelectorAll(".word").forEach(function (w) {
      var on = t >= parseFloat(w.dataset.start) && t < parseFloat(w.dataset.end);
      w.classList.toggle("now", on);
      if (on) w.setAttribute("aria-current", "true"); else w.removeAttribute("aria-current");
    });
  }, true);  // timeupdate does not bubble: listened for on the way down
})();
