// A space's live HLS, played by the browser itself (no third-party script).
//
// Used by the live page (listeners past the WebRTC tier, or who chose HLS)
// and by the page of an ended space still being processed (the instant
// replay). The <audio> element plays the master playlist natively where the
// browser can (Safari; Chromium answers canPlayType for HLS). Browsers that
// play HLS natively do not all expose its subtitle rendition as a text
// track, so this script reads the playlists itself: the subtitle segments
// give the captions (cue times on the room clock), and each audio segment's
// EXT-X-ROOM-TIME and PROGRAM-DATE-TIME say which room time is playing and
// how far behind the room the listener is.
"use strict";

(function () {
  const POLL_MS = 2000;
  // Chromium's native player fails a live playlist that lists fewer than three
  // segments, for good ("Segment queue never had any data", reported as
  // DEMUXER_ERROR_COULD_NOT_PARSE), and starts three segments from its end
  // (it ignores EXT-X-START, and a live source can be neither sought nor
  // played faster): a listener is as far behind the room as those three
  // segments are long, plus the age of the newest. So a live source is set
  // once the playlist lists three segments, just after it gained one: while
  // waiting to start, the playlist is read every START_POLL_MS.
  const LIVE_START_SEGMENTS = 3;
  const START_POLL_MS = 250;

  function resolve(uri, base) { return new URL(uri, base).href; }

  // Segments with their sequence number, room time and program date-time.
  function parseMedia(text, base) {
    const entries = [];
    let room = null, wall = null, seq = 0;
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) seq = parseInt(line.slice(22), 10);
      else if (line.startsWith("#EXT-X-ROOM-TIME:")) room = parseFloat(line.slice(17));
      else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) wall = Date.parse(line.slice(25));
      else if (line.startsWith("#EXTINF:")) entries.push({ duration: parseFloat(line.slice(8)), room, wall });
      else if (line && !line.startsWith("#") && entries.length && !entries[entries.length - 1].uri) {
        const e = entries[entries.length - 1];
        e.uri = resolve(line, base);
        e.seq = seq;
        seq += 1;
      }
    }
    return { entries, ended: text.includes("#EXT-X-ENDLIST") };
  }

  function vttTime(s) {
    const [h, m, rest] = s.split(":");
    return (+h) * 3600 + (+m) * 60 + parseFloat(rest);
  }

  // Cues of one WebVTT segment: {start, end, speaker, text} on the room clock.
  function parseVtt(text) {
    const cues = [];
    for (const block of text.split(/\n\n+/)) {
      const lines = block.trim().split("\n");
      const at = lines.findIndex((l) => l.includes("-->"));
      if (at < 0) continue;
      const [start, end] = lines[at].split("-->").map((s) => vttTime(s.trim().split(" ")[0]));
      const body = lines.slice(at + 1).join("\n");
      const voice = /^<v ([^>]*)>/.exec(body);
      const words = body.replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
      cues.push({ start, end, speaker: voice ? voice[1] : "", text: words });
    }
    return cues;
  }

  // Absolute, so the playlists' relative URIs resolve against it.
  function withToken(url, token) {
    const u = new URL(url, location.href);
    if (token) u.searchParams.set("token", token);
    return u.href;
  }

  // options: {url, token, audio, autoplay, onCues(cues, speaking), onDelay(seconds|null), onEnded(), onBlocked()}
  function HlsPlayer(options) {
    const audio = options.audio;
    const master = withToken(options.url, options.token);
    const state = { audio: null, subs: null, playlist: { entries: [], ended: false }, cues: new Map(),
      seen: new Set(), timer: null, stopped: false, timeline: new Map() };
    const player = {
      get supported() { return Boolean(audio.canPlayType("application/vnd.apple.mpegurl")); },
      get ended() { return state.playlist.ended; },
      get room() { return roomTime(audio.currentTime); },
      get delay() { return delay(); },
      get cues() { return Array.from(state.cues.values()); },
      stop() { state.stopped = true; clearTimeout(state.timer); audio.pause(); audio.removeAttribute("src"); audio.load(); },
    };

    // The player's time 0 is the segment it started at (the first of a closed
    // playlist, the third from the end of a live one, see load): segments are
    // placed on that timeline by sequence number as later playlists bring them.
    function place(playlist) {
      for (const e of playlist.entries) {
        if (state.timeline.has(e.seq)) continue;
        const before = state.timeline.get(e.seq - 1);
        e.media = before ? before.media + before.duration : (state.timeline.size ? null : 0);
        if (e.media !== null) state.timeline.set(e.seq, e);
      }
    }

    function at(t) {
      let e = null;
      for (const x of state.timeline.values()) { if (x.media <= t) e = x; else break; }
      return e;
    }

    function roomTime(t) {
      const e = at(t);
      return e && e.room !== null ? e.room + (t - e.media) : null;
    }

    function delay() {
      if (state.playlist.ended) return null;
      const t = audio.currentTime;
      const e = at(t);
      if (!e || e.wall === null || Number.isNaN(e.wall)) return null;
      return Math.max(0, (Date.now() - (e.wall + (t - e.media) * 1000)) / 1000);
    }

    async function fetchText(url) {
      const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) throw new Error(`${r.status} for ${url}`);
      return r.text();
    }

    async function poll() {
      if (state.stopped) return;
      try {
        if (!state.audio) {
          const text = await fetchText(master);
          const line = text.split("\n").find((l) => l.trim() && !l.startsWith("#"));
          const subs = /URI="([^"]+)"/.exec(text);
          state.audio = resolve(line.trim(), master);
          state.subs = subs ? resolve(subs[1], master) : null;
        }
        state.playlist = parseMedia(await fetchText(state.audio), state.audio);
        place(state.playlist);
        if (state.subs) {
          const subs = parseMedia(await fetchText(state.subs), state.subs);
          for (const e of subs.entries) {
            if (state.seen.has(e.uri)) continue;
            const cues = parseVtt(await fetchText(e.uri));
            state.seen.add(e.uri);
            // A cue spanning two segments is in both: keep it once.
            for (const c of cues) state.cues.set(`${c.start}|${c.speaker}|${c.text}`, c);
          }
        }
      } catch (e) { /* a missed poll: the next one catches up */ }
      if (!state.playlist.ended || !state.subs || state.seen.size < state.playlist.entries.length) {
        state.timer = setTimeout(poll, POLL_MS);
      }
    }

    function tick() {
      if (state.stopped) return;
      const room = roomTime(audio.currentTime);
      const now = room === null ? [] : player.cues.filter((c) => c.start <= room && room < c.end);
      if (options.onCues) options.onCues(now, new Set(now.map((c) => c.speaker)));
      if (options.onDelay) options.onDelay(delay());
      setTimeout(tick, 250);
    }

    // Resolves when a source may be set: at once for a closed playlist; for a
    // live one, when a read finds a new segment and three or more listed.
    async function untilStart() {
      const newest = () => {
        const { entries } = state.playlist;
        return entries.length ? entries[entries.length - 1].seq : -1;
      };
      const before = newest();
      while (!state.stopped && !state.playlist.ended) {
        if (newest() > before && state.playlist.entries.length >= LIVE_START_SEGMENTS) return;
        await new Promise((done) => setTimeout(done, START_POLL_MS));
        try {
          if (state.audio) state.playlist = parseMedia(await fetchText(state.audio), state.audio);
        } catch (e) { /* read again */ }
      }
    }

    // Chromium's live HLS fails for good when the element sits paused with a
    // live source for longer than its few queued segments: so a live source
    // is set only at the moment it plays, and set again after an error.
    let retries = 0;
    function load() {
      // Anchor the timeline where the player starts: the first segment of a
      // closed playlist, the third from the end of a live one.
      const { entries, ended } = state.playlist;
      state.timeline.clear();
      place({ entries: ended ? entries : entries.slice(-LIVE_START_SEGMENTS) });
      audio.src = master;
      return audio.play().catch((e) => {
        if (!options.autoplay) return;
        audio.removeAttribute("src");
        audio.load();
        if (options.onBlocked) options.onBlocked(e);
      });
    }
    function restart() {
      clearTimeout(state.timer);
      return poll().then(untilStart).then(load);
    }
    player.play = () => { retries = 0; return restart(); };
    audio.addEventListener("error", () => {
      if (state.stopped || state.playlist.ended || retries >= 5) return;
      retries += 1;
      // A new start is a new timeline, from the window the next poll reads.
      setTimeout(restart, 1000);
    });
    // Errors in a row give up; playing again starts a new count.
    audio.addEventListener("playing", () => { retries = 0; });
    audio.addEventListener("ended", () => { if (options.onEnded) options.onEnded(); });
    // The playlists first, then the source: the player starts at the window just read.
    poll().then(untilStart).then(() => {
      if (state.stopped) return;
      if (options.autoplay) load();
      else audio.src = master;
      tick();
    });
    return player;
  }

  // One caption line, in the live page's markup (live.js), so one reader serves every page.
  HlsPlayer.captionLine = function (cue) {
    const line = document.createElement("p");
    line.className = "caption";
    line.dataset.speaker = cue.speaker;
    const who = document.createElement("span");
    who.className = "caption__speaker";
    who.textContent = cue.speaker;
    const text = document.createElement("span");
    text.className = "caption__text";
    cue.text.split("\n").forEach((part, i) => { if (i) text.append(document.createElement("br")); text.append(part); });
    line.append(who, text);
    return line;
  };

  window.HlsPlayer = HlsPlayer;
})();
