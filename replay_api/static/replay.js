/* The replay page: transcript synced to the audio, seeking, search, keyboard.
 *
 * Plain JavaScript on the server-rendered page, no build step. Everything
 * it needs is in the DOM: words are <span class="w" data-s data-e> inside
 * <div class="turn" data-speaker data-s data-e>, times in seconds on the
 * space's clock (the same clock as the audio).
 */
(() => {
  "use strict";

  const root = document.getElementById("replay");
  if (!root) return;

  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const transcriptEl = $("transcript");
  const player = document.querySelector(".player");

  /* A pause longer than this after a word ends its highlight. */
  const HOLD_SECONDS = 1.5;
  /* After the reader scrolls by hand, the transcript stops following. */
  const MANUAL_SCROLL_KEYS = new Set(["PageUp", "PageDown", "Home", "End", "ArrowUp", "ArrowDown"]);

  const spaceId = root.dataset.spaceId;
  const token = root.dataset.token || "";
  const duration = parseFloat(root.dataset.duration) || 0;

  /* --- the transcript, indexed once --------------------------------------- */

  const turns = Array.from(transcriptEl.querySelectorAll(".turn")).map((el) => ({
    el,
    speaker: el.dataset.speaker,
    s: parseFloat(el.dataset.s),
    e: parseFloat(el.dataset.e),
  }));
  const words = [];
  const turnOf = [];
  turns.forEach((turn, ti) => {
    turn.el.querySelectorAll(".w").forEach((el) => {
      words.push({ el, s: parseFloat(el.dataset.s), e: parseFloat(el.dataset.e) });
      turnOf.push(ti);
    });
  });
  words.forEach((w, i) => { w.el.dataset.i = String(i); });
  /* Turns of different speakers can overlap, so DOM order is not time order. */
  const byStart = words.map((_, i) => i).sort((a, b) => words[a].s - words[b].s || a - b);
  const sortedStarts = Float64Array.from(byStart, (i) => words[i].s);

  function wordAt(t) {
    /* At 0:00 nothing has been said yet, even by a word that starts at 0. */
    if (!(t > 0)) return -1;
    let lo = 0;
    let hi = sortedStarts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sortedStarts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    if (found < 0) return -1;
    const i = byStart[found];
    return t <= words[i].e + HOLD_SECONDS ? i : -1;
  }

  /* --- formatting ------------------------------------------------------------ */

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function withToken(url) {
    return token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
  }

  /* --- following playback ------------------------------------------------------ */

  let current = -1;
  let activeTurns = new Set();
  let follow = true;
  const followButton = $("follow");
  const speakerItems = new Map(
    Array.from(document.querySelectorAll(".speaker[data-speaker]"), (li) => [li.dataset.speaker, li]),
  );

  function setCurrent(i) {
    if (i === current) return;
    if (current >= 0) {
      words[current].el.classList.remove("is-current");
      words[current].el.removeAttribute("aria-current");
    }
    current = i;
    if (i < 0) return;
    const el = words[i].el;
    el.classList.add("is-current");
    el.setAttribute("aria-current", "true");
    if (follow) scrollToWord(el);
  }

  function setActiveTurns(t) {
    const now = new Set();
    turns.forEach((turn, ti) => { if (t > 0 && turn.s <= t && t < turn.e + 0.25) now.add(ti); });
    if (current >= 0) now.add(turnOf[current]);
    activeTurns.forEach((ti) => { if (!now.has(ti)) turns[ti].el.classList.remove("is-active"); });
    now.forEach((ti) => { if (!activeTurns.has(ti)) turns[ti].el.classList.add("is-active"); });
    activeTurns = now;
    const speaking = new Set(Array.from(now, (ti) => turns[ti].speaker));
    speakerItems.forEach((li, name) => {
      const on = speaking.has(name);
      if (li.classList.contains("is-speaking") !== on) {
        li.classList.toggle("is-speaking", on);
        li.querySelector(".speaker__status").textContent = on ? "speaking now" : "";
      }
    });
  }

  function scrollToWord(el) {
    const rect = el.getBoundingClientRect();
    const top = player.getBoundingClientRect().bottom + 24;
    const bottom = window.innerHeight - 48;
    if (rect.top >= top && rect.bottom <= bottom) return;
    const target = window.scrollY + rect.top - top - (bottom - top) * 0.3;
    window.scrollTo({ top: Math.max(0, target), behavior: "smooth" });
  }

  function setFollow(on) {
    follow = on;
    followButton.hidden = on;
    if (on && current >= 0) scrollToWord(words[current].el);
  }

  /* --- our controls replace the native ones (kept for no-JavaScript) -------- */

  const seekBar = $("seek");
  const clockNow = $("clock-now");
  let dragging = false;
  let shownSecond = -1;
  audio.controls = false;
  $("controls").hidden = false;
  $("tools").hidden = false;

  function total() {
    return audio.duration && isFinite(audio.duration) ? audio.duration : duration;
  }

  function showPosition(t) {
    const end = total() || 1;
    seekBar.style.setProperty("--progress", `${Math.min(100, (t / end) * 100)}%`);
    const second = Math.floor(t);
    if (second !== shownSecond) {
      shownSecond = second;
      clockNow.textContent = clock(t);
      seekBar.setAttribute("aria-valuetext", `${clock(t)} of ${clock(end)}`);
    }
  }

  function sync() {
    const t = audio.currentTime;
    setCurrent(wordAt(t));
    setActiveTurns(t);
    if (!dragging) {
      seekBar.value = String(t);
      showPosition(t);
    }
  }

  audio.addEventListener("loadedmetadata", () => { seekBar.max = String(total()); sync(); });
  seekBar.addEventListener("input", () => {
    dragging = true;
    showPosition(parseFloat(seekBar.value));
  });
  seekBar.addEventListener("change", () => {
    dragging = false;
    seek(parseFloat(seekBar.value), { play: false });
  });

  const muteButton = $("mute");
  muteButton.addEventListener("click", () => { audio.muted = !audio.muted; });
  audio.addEventListener("volumechange", () => {
    root.classList.toggle("is-muted", audio.muted);
    muteButton.setAttribute("aria-pressed", String(audio.muted));
    muteButton.setAttribute("aria-label", audio.muted ? tr("Unmute") : tr("Mute"));
  });

  /* timeupdate fires only about four times a second; while playing, a frame
     loop keeps the highlighted word on the word being said. */
  let frame = 0;
  function tick() {
    sync();
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  }

  function playState() {
    const playing = !audio.paused;
    root.classList.toggle("is-playing", playing);
    root.classList.toggle("is-paused", !playing);
    $("toggle").setAttribute("aria-label", playing ? tr("Pause") : tr("Play"));
    if (playing && !frame) frame = requestAnimationFrame(tick);
  }

  ["play", "playing", "pause", "ended"].forEach((type) => audio.addEventListener(type, playState));
  ["timeupdate", "seeked", "seeking"].forEach((type) => audio.addEventListener(type, sync));
  playState();

  /* --- seeking ----------------------------------------------------------------- */

  function seek(t, { play = true } = {}) {
    const end = audio.duration && isFinite(audio.duration) ? audio.duration : duration || t;
    audio.currentTime = Math.max(0, Math.min(t, end));
    setFollow(true);
    sync();
    if (play && audio.paused) audio.play().catch(() => {});
  }

  function skip(delta) { seek(audio.currentTime + delta, { play: false }); }

  function toggle() {
    if (audio.paused) audio.play().catch(() => {}); else audio.pause();
  }

  transcriptEl.addEventListener("click", (event) => {
    const stamp = event.target.closest(".turn__time");
    if (stamp) { seek(parseFloat(stamp.dataset.t)); return; }
    const word = event.target.closest(".w");
    /* A click that ends a text selection is for making a clip, not for seeking. */
    const selection = window.getSelection();
    if (word && (!selection || selection.isCollapsed)) seek(words[Number(word.dataset.i)].s);
  });

  $("toggle").addEventListener("click", toggle);
  document.querySelectorAll("[data-skip]").forEach((b) =>
    b.addEventListener("click", () => skip(parseFloat(b.dataset.skip))),
  );
  followButton.addEventListener("click", () => setFollow(true));

  ["wheel", "touchmove"].forEach((type) =>
    window.addEventListener(type, () => { if (!audio.paused) setFollow(false); }, { passive: true }),
  );

  /* --- speed ------------------------------------------------------------------ */

  const speed = $("speed");
  try {
    const saved = localStorage.getItem("replay.rate");
    if (saved && Array.from(speed.options).some((o) => o.value === saved)) speed.value = saved;
  } catch (_) { /* storage may be blocked; 1x it is */ }
  audio.playbackRate = parseFloat(speed.value);
  speed.addEventListener("change", () => {
    audio.playbackRate = parseFloat(speed.value);
    try { localStorage.setItem("replay.rate", speed.value); } catch (_) { /* ignore */ }
  });
  /* Some browsers reset the rate when the source loads. */
  audio.addEventListener("loadedmetadata", () => { audio.playbackRate = parseFloat(speed.value); });

  /* --- keyboard ----------------------------------------------------------------- */

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const typing = target.closest && target.closest("input:not([type=range]), textarea, select, [contenteditable]");
    const control = target.closest && target.closest("button, a, audio, summary");
    if (MANUAL_SCROLL_KEYS.has(event.key) && !typing && !audio.paused) setFollow(false);
    if (typing) return;
    if (event.key === " " || event.key === "Spacebar") {
      if (control && !control.matches("audio")) return; /* a focused button does its own thing */
      event.preventDefault();
      toggle();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      /* On the position slider too: its own step (0.1 s) is too small to be useful. */
      event.preventDefault();
      skip((event.key === "ArrowLeft" ? -1 : 1) * (event.shiftKey ? 15 : 5));
    } else if (event.key === "/") {
      event.preventDefault();
      $("find").focus();
    }
  });

  /* --- captions: the <track>'s active cue, shown under the player ------------- */

  const captionEl = $("caption");
  const track = audio.textTracks && audio.textTracks[0];
  if (track) {
    track.mode = "hidden";
    const showCue = () => {
      const cue = track.activeCues && track.activeCues[track.activeCues.length - 1];
      const raw = cue ? cue.text : "";
      const voice = /^<v(?:\.[^ >]*)? ([^>]*)>/.exec(raw);
      $("caption-who").textContent = voice ? voice[1] : "";
      $("caption-text").textContent = raw.replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
      captionEl.classList.toggle("is-empty", !raw);
    };
    track.addEventListener("cuechange", showCue);
    captionEl.classList.add("is-empty");
  }

  /* --- deep links: ?t= ------------------------------------------------------------ */

  const startAt = parseFloat(root.dataset.startAt);
  if (isFinite(startAt)) {
    const target = wordAt(startAt) >= 0 ? turns[turnOf[wordAt(startAt)]] : null;
    const begin = () => {
      audio.currentTime = startAt;
      sync();
      if (target) target.el.classList.add("is-target");
      audio.play().catch(() => {
        /* Autoplay was refused: one click starts at the moment. */
        $("prompt-time").textContent = clock(startAt);
        $("prompt").hidden = false;
      });
    };
    $("prompt-play").addEventListener("click", () => {
      $("prompt").hidden = true;
      seek(startAt);
    });
    if (audio.readyState >= 1) begin(); else audio.addEventListener("loadedmetadata", begin, { once: true });
    sync();
    if (target) target.el.scrollIntoView({ block: "center" });
  }

  /* --- search in this space ----------------------------------------------------- */

  const normalize = (text) =>
    text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").replace(/[^\p{L}\p{N}']+/gu, "");
  const normalized = words.map((w) => normalize(w.el.textContent));
  const findInput = $("find");
  const findStatus = $("find-status");
  const findResults = $("find-results");
  let hits = [];
  let hitIndex = -1;
  let marked = [];

  function findAll(query) {
    const terms = query.split(/\s+/).map(normalize).filter(Boolean);
    if (!terms.length) return [];
    const found = [];
    for (let i = 0; i + terms.length <= words.length; i++) {
      let ok = turnOf[i] === turnOf[i + terms.length - 1];
      for (let k = 0; ok && k < terms.length; k++) {
        const w = normalized[i + k];
        /* The last word may be half typed. */
        ok = k === terms.length - 1 ? w.startsWith(terms[k]) : w === terms[k];
      }
      if (ok) found.push({ first: i, last: i + terms.length - 1 });
    }
    return found;
  }

  function renderHits(query) {
    marked.forEach((el) => el.classList.remove("is-hit"));
    marked = [];
    findResults.replaceChildren();
    hits = query.trim() ? findAll(query) : [];
    hitIndex = -1;
    if (!query.trim()) { findStatus.textContent = ""; return; }
    findStatus.textContent = hits.length === 1 ? tr("1 match") : hits.length ? tr("{count} matches", { count: hits.length }) : tr("No matches");
    hits.forEach((hit, n) => {
      for (let i = hit.first; i <= hit.last; i++) { words[i].el.classList.add("is-hit"); marked.push(words[i].el); }
      if (n >= 50) return;
      findResults.append(resultItem(hit, n));
    });
  }

  function resultItem(hit, n) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "find__result";
    button.dataset.n = String(n);
    const time = document.createElement("span");
    time.className = "find__result-time";
    time.textContent = clock(words[hit.first].s);
    const who = document.createElement("span");
    who.className = "find__result-who";
    who.textContent = turns[turnOf[hit.first]].speaker;
    const text = document.createElement("span");
    text.className = "find__result-text";
    const from = Math.max(0, hit.first - 4);
    const to = Math.min(words.length - 1, hit.last + 6);
    for (let i = from; i <= to; i++) {
      if (turnOf[i] !== turnOf[hit.first]) continue;
      const part = i >= hit.first && i <= hit.last ? document.createElement("mark") : document.createElement("span");
      part.textContent = words[i].el.textContent;
      text.append(part, " ");
    }
    button.append(time, who, text);
    button.addEventListener("click", () => goToHit(n));
    li.append(button);
    return li;
  }

  function goToHit(n) {
    if (!hits.length) return;
    hitIndex = (n + hits.length) % hits.length;
    findResults.querySelectorAll(".find__result").forEach((b) =>
      b.classList.toggle("is-selected", Number(b.dataset.n) === hitIndex),
    );
    seek(words[hits[hitIndex].first].s);
  }

  findInput.addEventListener("input", () => renderHits(findInput.value));
  $("find-form").addEventListener("submit", (event) => {
    event.preventDefault();
    goToHit(hitIndex + 1);
  });

  /* --- sharing: a link to the moment, clips from a selection ---------------------- */

  /* Link fields wrap and grow to their text, so the whole link shows (?t= included). */
  function fit(field) {
    field.style.height = "auto";
    field.style.height = `${field.scrollHeight + 2}px`;
  }

  const shareLink = $("share-link");
  function updateShareLink() {
    const t = audio.currentTime || (isFinite(startAt) ? startAt : 0);
    /* No token in shared links: a private space's link works only for people with access. */
    shareLink.value = `${location.origin}/spaces/${spaceId}/replay?t=${t.toFixed(1)}`;
    $("share-time").textContent = clock(t);
    fit(shareLink);
  }
  ["pause", "seeked", "loadedmetadata"].forEach((type) => audio.addEventListener(type, updateShareLink));
  updateShareLink();

  async function copy(field, button, label) {
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (_) {
      field.select();
      document.execCommand && document.execCommand("copy");
    }
    button.textContent = tr("Copied");
    setTimeout(() => { button.textContent = label; }, 1500);
  }
  $("share-copy").addEventListener("click", () => { updateShareLink(); copy(shareLink, $("share-copy"), tr("Copy")); });

  /* Clips: select words with the mouse or the keyboard; the clip appears
     beside the selection, with a preview player and a link to share. */
  const MAX_CLIP = 300;
  /* The clip runs on a little after its last word, but never into the next one. */
  const CLIP_TAIL = 0.3;
  const clipPop = $("clip-pop");
  const clipPreview = $("clip-preview");
  let clipKey = "";

  /* Words whose text the range really covers: a drag that ends at the very
     start of the next word (or starts at the end of the previous) only
     touches it, and intersectsNode would count it. */
  function selectedWords(range) {
    const chosen = [];
    const wordRange = document.createRange();
    for (let i = 0; i < words.length; i++) {
      const el = words[i].el;
      const text = el.firstChild;
      if (!text || !range.intersectsNode(el)) continue;
      /* Boundaries in the word's text node itself, so that a selection ending at
         (text, 0) compares equal to the word's start rather than after it. */
      wordRange.setStart(text, 0);
      wordRange.setEnd(text, text.length);
      /* START_TO_END: the selection's end against the word's start;
         END_TO_START: the selection's start against the word's end. */
      if (range.compareBoundaryPoints(Range.START_TO_END, wordRange) > 0 &&
          range.compareBoundaryPoints(Range.END_TO_START, wordRange) < 0) chosen.push(i);
    }
    return chosen;
  }

  function nextStartAfter(t, first, last) {
    let lo = 0;
    let hi = sortedStarts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sortedStarts[mid] < t) lo = mid + 1; else hi = mid;
    }
    for (let k = lo; k < sortedStarts.length; k++) {
      const i = byStart[k];
      if (i < first || i > last) return sortedStarts[k];
    }
    return Infinity;
  }

  function showClip(first, last) {
    const chosen = words.slice(first, last + 1);
    const start = Math.min(...chosen.map((w) => w.s));
    const lastEnd = Math.max(...chosen.map((w) => w.e));
    const end = Math.min(lastEnd + CLIP_TAIL, Math.max(lastEnd, nextStartAfter(lastEnd, first, last)), start + MAX_CLIP);
    const query = `start=${start.toFixed(3)}&end=${end.toFixed(3)}`;
    const base = root.dataset.clipBase;
    $("clip-range").textContent = `${clock(start)}–${clock(end)} · ${(end - start).toFixed(1)} s`;
    $("clip-text").textContent = chosen.map((w) => w.el.textContent).join(" ");
    $("clip-audio").href = withToken(`${base}/audio?${query}`);
    $("clip-captions").href = withToken(`${base}/captions.vtt?${query}`);
    $("clip-link").value = `${location.origin}/spaces/${spaceId}/replay?t=${start.toFixed(2)}`;
    if (clipKey !== query) {
      /* A new clip: the preview loads (and the server cuts it) only when played. */
      clipKey = query;
      clipPreview.pause();
      clipPreview.src = withToken(`${base}/audio?${query}&format=m4a`);
    }
    clipPop.hidden = false;
    $("clip-hint").hidden = true;
    fit($("clip-link"));
    placeClip(words[last].el);
  }

  function placeClip(lastWord) {
    const box = transcriptEl.getBoundingClientRect();
    const rect = lastWord.getBoundingClientRect();
    const left = Math.min(rect.left - box.left - 24, box.width - clipPop.offsetWidth - 8);
    clipPop.style.top = `${rect.bottom - box.top + 8}px`;
    clipPop.style.left = `${Math.max(8, left)}px`;
  }

  function hideClip() {
    if (clipPop.hidden) return;
    clipPop.hidden = true;
    clipPreview.pause();
    $("clip-hint").hidden = false;
  }

  document.addEventListener("selectionchange", () => {
    const selection = window.getSelection();
    const inPop = clipPop.contains(document.activeElement) || (selection && clipPop.contains(selection.anchorNode));
    if (!selection || selection.isCollapsed || !selection.rangeCount || !transcriptEl.contains(selection.anchorNode)) {
      if (!inPop) hideClip();
      return;
    }
    if (inPop) return;
    const chosen = selectedWords(selection.getRangeAt(0));
    if (chosen.length) showClip(chosen[0], chosen[chosen.length - 1]); else hideClip();
  });
  $("clip-close").addEventListener("click", () => {
    hideClip();
    window.getSelection().removeAllRanges();
  });
  $("clip-copy").addEventListener("click", () => copy($("clip-link"), $("clip-copy"), tr("Copy link")));
  clipPop.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { hideClip(); if (focused >= 0) words[focused].el.focus(); }
  });

  /* --- the keyboard in the transcript: words are focusable ------------------------ */

  /* One word is in the tab order (roving tabindex); arrows move between them. */
  let focused = -1;
  let anchor = -1;
  words.forEach((w) => { w.el.tabIndex = -1; });
  function rove(i) {
    if (i < 0 || i >= words.length) return;
    if (focused >= 0) words[focused].el.tabIndex = -1;
    focused = i;
    words[i].el.tabIndex = 0;
  }
  rove(0);
  transcriptEl.addEventListener("focusin", (event) => {
    const word = event.target.closest && event.target.closest(".w");
    if (word) rove(Number(word.dataset.i));
  });

  function selectWords(a, b) {
    const [first, last] = a <= b ? [a, b] : [b, a];
    const from = words[first].el.firstChild;
    const to = words[last].el.firstChild;
    if (!from || !to) return;
    window.getSelection().setBaseAndExtent(from, 0, to, to.length);
  }

  transcriptEl.addEventListener("keydown", (event) => {
    const word = event.target.closest && event.target.closest(".w");
    if (!word || event.altKey || event.ctrlKey || event.metaKey) return;
    const i = Number(word.dataset.i);
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const next = Math.max(0, Math.min(words.length - 1, i + (event.key === "ArrowLeft" ? -1 : 1)));
      if (event.shiftKey) {
        const selection = window.getSelection();
        if (anchor < 0 || !selection || selection.isCollapsed) anchor = i;
        selectWords(anchor, next);
      } else {
        anchor = -1;
        window.getSelection().removeAllRanges();
      }
      rove(next);
      words[next].el.focus();
    } else if (event.key === "Enter") {
      event.preventDefault();
      seek(words[i].s);
    } else if (event.key === "Escape") {
      anchor = -1;
      window.getSelection().removeAllRanges();
      hideClip();
    }
  });
})();
