// The live page's HLS tier: for a listener the SFU sent here (its WebRTC
// seats are taken: a {"type": "hls"} message) or who chose it.
//
// The space's hls_url comes from GET /spaces/{id}; hlsplayer.js plays it
// natively and reads its captions. Speakers come from the same GET,
// refreshed; who is talking is whoever the captions playing now belong to
// (the HLS runs seconds behind the room, so the SFU's live levels would be
// early). The page says the tier and how far behind the room it is.
"use strict";

(function () {
  const root = document.getElementById("live");
  if (!root || root.dataset.live !== "true") return;
  const spaceId = root.dataset.spaceId;
  const $ = (id) => document.getElementById(id);
  const RETRY_MS = 2000;
  const SPEAKERS_MS = 5000;
  const REASONS = {
    full: tr("Listening over HLS: the room's live seats are taken"),
    chosen: tr("Listening over HLS"),
  };
  const tier = { player: null, reason: null, speakers: [], talking: new Set(), stopped: false };

  function status(text) { $("status").textContent = text; }

  async function space(token) {
    const r = await fetch(`/spaces/${encodeURIComponent(spaceId)}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store",
    });
    if (!r.ok) throw new Error(`the space answered ${r.status}`);
    return r.json();
  }

  function renderSpeakers() {
    const list = $("speakers");
    list.replaceChildren();
    for (const name of tier.speakers) {
      const item = document.createElement("li");
      item.className = "speaker" + (tier.talking.has(name) ? " speaker--talking" : "");
      item.dataset.identity = name;
      const level = document.createElement("span");
      level.className = "speaker__level";
      const label = document.createElement("span");
      label.className = "speaker__name";
      label.textContent = name;
      item.append(level, label);
      item.style.setProperty("--level", tier.talking.has(name) ? "1" : "0");
      list.append(item);
    }
    $("listeners").textContent = "";
  }

  // The same markup as the WebRTC tier's captions (live.js), so one reader serves both.
  function renderCues(cues, talking) {
    $("captions").replaceChildren(...cues.map(window.HlsPlayer.captionLine));
    const changed = talking.size !== tier.talking.size || [...talking].some((s) => !tier.talking.has(s));
    tier.talking = talking;
    if (changed) renderSpeakers();
  }

  function showDelay(seconds) {
    const text = REASONS[tier.reason] || REASONS.chosen;
    if (seconds !== null && $("status").textContent === tr("Joining the live audio…")) status(tr("Listening."));
    $("tier").textContent = seconds === null ? text : tr("{tier} · about {seconds} s behind the room", { tier: text, seconds: Math.round(seconds) });
  }

  async function refreshSpeakers(token) {
    if (tier.stopped) return;
    try {
      const body = await space(token);
      tier.speakers = body.speakers.map((s) => s.name);
      renderSpeakers();
    } catch (e) { /* the next refresh */ }
    setTimeout(() => refreshSpeakers(token), SPEAKERS_MS);
  }

  async function start(options) {
    if (tier.player || tier.reason) return;
    const token = (options && options.token) || root.dataset.token || "";
    tier.reason = (options && options.reason) || "chosen";
    $("join-panel").hidden = true;
    $("room").hidden = false;
    for (const id of ["mute", "hand", "hand-name-field", "host-panel", "captions-hint"]) $(id).hidden = true;
    $("tier").hidden = false;
    showDelay(null);
    let url = null;
    while (!url && !tier.stopped) {
      try { url = (await space(token)).hls_url; } catch (e) { /* retried below */ }
      if (!url) {
        status(tr("Waiting for the room's HLS to start…"));
        await new Promise((done) => setTimeout(done, RETRY_MS));
      }
    }
    if (tier.stopped) return;
    const audio = document.createElement("audio");
    audio.id = "hls-audio";
    audio.controls = true;
    if (!audio.canPlayType("application/vnd.apple.mpegurl")) {
      status(tr("This browser cannot play HLS by itself (Safari and Chromium can): come back when a live seat is free."));
      return;
    }
    $("tier").after(audio);
    // The player starts muted and moves towards the room's live edge first (hlsplayer.js): say so.
    audio.addEventListener("playing", () => {
      status(tier.player && tier.player.catchingUp ? tr("Joining the live audio…") : tr("Listening."));
      $("hls-play").hidden = true;
    });
    const resume = document.createElement("button");
    resume.className = "button button--primary";
    resume.id = "hls-play";
    resume.type = "button";
    resume.textContent = tr("Start listening");
    resume.hidden = true;
    resume.addEventListener("click", () => tier.player.play());
    audio.after(resume);
    tier.player = window.HlsPlayer({
      url, token, audio, autoplay: true,
      onCues: renderCues,
      onDelay: showDelay,
      onEnded: () => { status(tr("The space has ended.")); $("badge").textContent = tr("Ended"); },
      // Too long since the click for the browser to let it play by itself.
      onBlocked: () => { status(tr("Press Start listening.")); resume.hidden = false; },
    });
    refreshSpeakers(token);
  }

  function stop() {
    tier.stopped = true;
    if (tier.player) tier.player.stop();
  }

  window.liveHls = {
    start,
    stop,
    get player() { return tier.player; },
    get active() { return Boolean(tier.reason); },
  };
  $("listen-hls").addEventListener("click", () => start({ reason: "chosen" }));
  $("leave").addEventListener("click", stop);
})();
