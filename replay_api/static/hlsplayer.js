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
  // (it ignores EXT-X-START and LL-HLS parts, a live source can not be played
  // faster, and it gives a live source no seekable range, so a seek is
  // ignored). So a live source is set once the playlist lists three segments:
  // while waiting to start, the playlist is read every START_POLL_MS.
  const LIVE_START_SEGMENTS = 3;
  const START_POLL_MS = 250;
  // Three segments and the newest's publishing are 7 s behind the room with
  // 2 s segments. What Chromium does offer: a live source paused after it has
  // played, and played again once the playlist has gained segments it never
  // saw, reloads the playlist and starts at the first of those
  // (HlsRenditionImpl::ResumeLivePlayback). So the page plays the start
  // muted, pauses once the player holds every listed segment, and plays again
  // when the playlist lists LIVE_EDGE_SEGMENTS more: the listener hears the
  // room that many segments (and the newest's publishing) behind, with about
  // one segment buffered ahead against a late one. Safari gives a live source
  // a seekable range: there the page seeks as far behind its end instead.
  const LIVE_EDGE_SEGMENTS = 2;
  const CATCH_UP_POLL_MS = 100;
  // The player then reads the playlist every segment, from when it plays
  // again: played the moment a segment is listed, it would read just after
  // each listing and miss (a whole segment late, a stall) any segment
  // published a little later than that one. So it plays again this fraction
  // of a segment after the listing: a segment may be published that much
  // later than usual without a stall, and the listener is that much further
  // behind.
  const RESUME_AFTER = 0.3;
  const CATCH_UP_JUMPS = 3;

  function resolve(uri, base) { return new URL(uri, base).href; }

  // Segments with their sequence number, room time and program date-time.
  function parseMedia(text, base) {
    const entries = [];
    let room = null, wall = null, seq = 0, target = 2;
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) seq = parseInt(line.slice(22), 10);
      else if (line.startsWith("#EXT-X-TARGETDURATION:")) target = parseFloat(line.slice(22));
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
    return { entries, target, ended: text.includes("#EXT-X-ENDLIST") };
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
    const state = { audio: null, subs: null, playlist: { entries: [], target: 2, ended: false }, cues: new Map(),
      seen: new Set(), timer: null, stopped: false, timeline: new Map(), catchUp: null, catching: false,
      fetched: [], loadedAt: 0, stalls: 0, lost: false, liveStart: null };
    const player = {
      get supported() { return Boolean(audio.canPlayType("application/vnd.apple.mpegurl")); },
      get ended() { return state.playlist.ended; },
      get room() { return roomTime(audio.currentTime); },
      get delay() { return delay(); },
      get cues() { return Array.from(state.cues.values()); },
      // Still moving a live start towards the room (muted meanwhile): no delay to show yet.
      get catchingUp() { return state.catching; },
      // Times playback waited for data once caught up: each adds to the delay for good.
      get stalls() { return state.stalls; },
      // How the last live start went: "sought", "jumped", or why it stayed three segments back.
      get liveStart() { return state.liveStart; },
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
      return state.playlist.ended || state.catching || state.lost ? null : behindRoom();
    }

    function behindRoom() {
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

    // The segments the native player fetched, named by Resource Timing (the page never fetches one):
    // the timeline's buffer, up to date but full after some hundred fetches, and an observer's
    // copy, kept but told late on a busy machine.
    function segmentsIn(entries) {
      const found = [];
      for (const e of entries) {
        const m = /\/(\d{6})\.ts$/.exec(new URL(e.name).pathname);
        if (m) found.push({ seq: parseInt(m[1], 10), at: e.startTime });
      }
      return found;
    }
    if (window.PerformanceObserver) {
      new PerformanceObserver((list) => {
        state.fetched.push(...segmentsIn(list.getEntries()));
        state.fetched.splice(0, Math.max(0, state.fetched.length - 50));
      }).observe({ type: "resource" });
    }
    function fetchedSegments() {
      return [...segmentsIn(performance.getEntriesByType("resource")), ...state.fetched].sort((x, y) => x.at - y.at);
    }

    async function newestListed() {
      state.playlist = parseMedia(await fetchText(state.audio), state.audio);
      place(state.playlist);
      const { entries } = state.playlist;
      return entries.length ? entries[entries.length - 1].seq : -1;
    }

    // Polls test() until it holds (true) or timeoutMs passes (false).
    async function waitFor(test, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!state.stopped && Date.now() < deadline) {
        try { if (await test()) return true; } catch (e) { /* tried again */ }
        await new Promise((done) => setTimeout(done, CATCH_UP_POLL_MS));
      }
      return false;
    }

    // Once a live source plays: see LIVE_EDGE_SEGMENTS. A jump takes at most
    // a segment off the delay the player had when it paused (a start slowed
    // by a busy machine, or audio it kept): while still more than
    // LIVE_EDGE_SEGMENTS + 1 segments behind the room, it jumps again, up to
    // CATCH_UP_JUMPS times (muted throughout).
    // Anything unexpected leaves the player where it is.
    async function catchUp(muted) {
      const target = state.playlist.target;
      try {
        if (audio.seekable.length) {
          audio.currentTime = Math.max(audio.seekable.start(0), audio.seekable.end(0) - LIVE_EDGE_SEGMENTS * target);
          state.liveStart = "sought";
          return;
        }
        for (let i = 0; i < CATCH_UP_JUMPS && (await jump()); i += 1) {
          const behind = behindRoom();
          if (state.lost || behind === null || behind <= (LIVE_EDGE_SEGMENTS + 1) * target) return;
        }
      } finally {
        state.catching = false;
        audio.muted = muted;
      }
    }

    // One pause and play again; true if the player jumped to where the page can place it.
    async function jump() {
      const segmentMs = state.playlist.target * 1000;
      const told = (how) => { state.liveStart = state.liveStart ? `${state.liveStart}; ${how}` : how; };
      // Nothing left in the player's queue: playing again then reloads the playlist.
      const holds = async () => {
        const newest = await newestListed();
        return fetchedSegments().some((f) => f.at >= state.loadedAt && f.seq >= newest);
      };
      if (!(await waitFor(holds, 3 * segmentMs)) || state.stopped) {
        told("stayed: the player never held every listed segment");
        return false;
      }
      audio.pause();
      const pausedAt = audio.currentTime;
      // The paused player reads no playlist: it has seen nothing newer than this.
      const seen = await newestListed();
      const gained = async () => (await newestListed()) >= seen + LIVE_EDGE_SEGMENTS;
      const more = await waitFor(gained, (LIVE_EDGE_SEGMENTS + 1) * segmentMs);
      await new Promise((done) => setTimeout(done, RESUME_AFTER * segmentMs));
      if (state.stopped) return false;
      const since = performance.now();
      try {
        await audio.play();
      } catch (e) {
        if (options.onBlocked) options.onBlocked(e);
        return false;
      }
      // The player appends the first segment it never saw right after the
      // last it holds, drops what it holds up to where it resumes (a segment
      // and the pause's length past where it paused) and plays from the first
      // it kept: the timeline by sequence number still holds, unless the
      // segments it appends do not follow the last it held.
      let first = null;
      const jumped = () => {
        first = fetchedSegments().find((f) => f.at >= since) || null;
        const b = audio.buffered;
        return first !== null && b.length > 0 && b.start(0) > pausedAt && audio.currentTime >= b.start(0);
      };
      if (!(await waitFor(jumped, 3 * segmentMs))) {
        // Better no delay shown than a wrong one.
        state.lost = audio.buffered.length > 0 && audio.buffered.start(0) > pausedAt;
        told(state.lost ? "jumped, to a segment not told" : "stayed: the player did not jump");
        return false;
      }
      const held = Math.max(-1, ...fetchedSegments().filter((f) => f.at < since).map((f) => f.seq));
      state.lost = first.seq !== held + 1;
      told(`jumped from ${held} to ${first.seq}` + (more ? "" : " (the playlist gained too few)"));
      return !state.lost;
    }

    // Resolves when a source may be set: at once for a closed playlist; for a
    // live one, when a read finds a new segment and three or more listed. The
    // start matters even with catchUp: the player resumes at most a segment
    // and the pause's length past where it paused, so the jump takes at most
    // one segment off the delay it started with (three segments and the
    // newest's age, which a start just after a listing keeps small).
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
      state.lost = false;
      state.liveStart = null;
      place({ entries: ended ? entries : entries.slice(-LIVE_START_SEGMENTS) });
      if (!ended) {
        if (state.catchUp === null) state.catchUp = audio.muted;
        state.catching = true;
        audio.muted = true;
      }
      state.loadedAt = performance.now();
      audio.src = master;
      return audio.play().catch((e) => {
        if (state.catchUp !== null) audio.muted = state.catchUp;
        state.catchUp = null;
        state.catching = false;
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
    audio.addEventListener("playing", () => {
      retries = 0;
      if (state.catchUp !== null && state.catching) {
        const muted = state.catchUp;
        state.catchUp = null;
        catchUp(muted);
      }
    });
    audio.addEventListener("waiting", () => {
      if (!state.catching && !state.playlist.ended && audio.currentTime > 0) state.stalls += 1;
    });
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
