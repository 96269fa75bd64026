// The live page: join a space on the SFU, listen, speak, raise a hand, host controls.
//
// Protocol (see ingest/signaling.py): the SFU makes every offer; we answer
// each one (non-trickle ICE: the answer carries our candidates). The offer
// names the m-line for our microphone ("publish_mid") and which m-line
// carries which speaker slot ("slots").
"use strict";

(function () {
  const root = document.getElementById("live");
  if (!root || root.dataset.live !== "true") return;

  const spaceId = root.dataset.spaceId;
  // The node the server placed the space on; a "moved" message replaces it.
  let rtcUrl = root.dataset.rtcUrl;
  const MAX_MOVES = 3;
  const $ = (id) => document.getElementById(id);
  const state = {
    token: root.dataset.token || "",
    identity: null,
    role: null,
    ws: null,
    pc: null,
    mic: null,
    muted: false,
    hand: false,
    slotsByMid: {},
    room: { speakers: [], hands: [], listeners: 0 },
    levels: {},
    ended: false,
    record: true,        // this person's choice: recorded when speaking, or only heard live
    consentGate: null,   // a pending question: the microphone waits for the answer
    movedTo: null,
    moves: 0,
    retries: 0,
    left: false,
    refused: null,
    hls: null,           // sent to the HLS tier (why), instead of WebRTC
  };
  // The token is this tab's alone: kept in sessionStorage (for reloads and
  // reconnects) and out of the address bar at once, so that sharing the
  // page's address never shares host or speaker powers.
  const TOKEN_KEY = `space-token:${spaceId}`;
  // A listener token that came in the address is a shared listener link
  // (private spaces): each person trades it for a listener token of their own.
  let sharedListenerLink = false;
  function keep(token) { try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode: memory only */ } }
  if (state.token) {
    const c = claims(state.token);
    sharedListenerLink = Boolean(c && c.role === "listener");
    if (!sharedListenerLink) keep(state.token);
  } else {
    try { state.token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { /* none kept */ }
  }
  const address = new URL(location.href);
  if (address.searchParams.has("token")) {
    address.searchParams.delete("token");
    history.replaceState(history.state, "", address.pathname + address.search + address.hash);
  }
  const invited = claims(state.token);
  if (invited && invited.role !== "listener") {
    $("join").textContent = invited.role === "host" ? tr("Join as host") : tr("Join as speaker");
    $("join-hint").textContent = invited.role === "host"
      ? tr("You are the host of this space (as {name}).", { name: invited.sub })
      : tr("You are invited to speak in this space (as {name}).", { name: invited.sub });
  }

  // Exposed for tests and debugging (never holds the token).
  window.liveSpace = { get identity() { return state.identity; }, get role() { return state.role; },
    get connection() { return state.pc ? state.pc.connectionState : "new"; }, events: [],
    // RTP packets received on the current connection (tests: is audio flowing?).
    async packetsReceived() {
      if (!state.pc) return 0;
      let n = 0;
      (await state.pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp") n += r.packetsReceived || 0; });
      return n;
    } };

  function status(text) { $("status").textContent = text; }
  function event(name, detail) { window.liveSpace.events.push({ name, detail, at: Date.now() }); }
  function send(message) { if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message)); }

  function claims(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload));
    } catch (e) { return null; }
  }

  async function listenerToken(credential) {
    const headers = { "Content-Type": "application/json" };
    if (credential) headers.Authorization = `Bearer ${credential}`;
    const response = await fetch(`/spaces/${encodeURIComponent(spaceId)}/tokens`, {
      method: "POST",
      headers,
      body: JSON.stringify({ role: "listener" }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : tr("could not get a listener token"));
    return body.token;
  }

  // Before a microphone goes live the person is told the space is recorded,
  // transcribed and searchable, and chooses (ingest/signaling.py: join.record, consent).
  function askConsent() {
    const allOrNone = (state.room || {}).recording === "all_or_none";
    $("consent-policy").hidden = !allOrNone;
    $("consent-decline").textContent = allOrNone ? tr("Stay a listener") : tr("Speak without being recorded");
    $("consent").hidden = false;
    event("consent-asked", { allOrNone });
    return new Promise((resolve) => {
      const choose = (record) => () => {
        $("consent").hidden = true;
        $("consent-record").onclick = null;
        $("consent-decline").onclick = null;
        state.record = record;
        event("consent", { record });
        resolve(record);
      };
      $("consent-record").onclick = choose(true);
      $("consent-decline").onclick = choose(false);
    });
  }

  async function showErasureLink() {
    try {
      const response = await fetch(`/spaces/${encodeURIComponent(spaceId)}/erasure-link`, {
        method: "POST", headers: { Authorization: `Bearer ${state.token}` },
      });
      if (!response.ok) return;
      const body = await response.json();
      $("erasure-link").href = body.url;
      $("erasure-link").onclick = async (e) => {
        e.preventDefault();
        if (!confirm(tr("Erase your voice and words from this space's replay? This cannot be undone."))) return;
        const r = await fetch(body.url, { method: "DELETE" });
        status(r.ok ? tr("Your erasure is under way; it runs once the space is processed.") : tr("Erasure is possible once the space is processed: keep the link."));
      };
      $("erasure").hidden = false;
    } catch (e) { /* no link: the host can still erase */ }
  }

  async function ensureMic() {
    if (state.consentGate) await state.consentGate;
    if (state.role === "listener") throw new Error("listening only");
    if (state.mic) return state.mic;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    state.mic = stream.getAudioTracks()[0];
    event("mic", { label: state.mic.label });
    return state.mic;
  }

  async function join() {
    $("join").disabled = true;
    try {
      if (!state.token || sharedListenerLink) {
        state.token = await listenerToken(sharedListenerLink ? state.token : null);
        sharedListenerLink = false;
        keep(state.token);
      }
      const c = claims(state.token);
      if (c && (c.role === "host" || c.role === "speaker")) {
        state.role = c.role;
        await askConsent();
        status(state.record ? tr("Asking for your microphone…") : tr("Asking for your microphone (heard live, not recorded)…"));
        await ensureMic();
      }
    } catch (e) {
      status(tr("Cannot join: {reason}", { reason: e.message }));
      $("join").disabled = false;
      return;
    }
    connect();
  }

  // Coming back by itself: a socket that drops (a network blip, a node going away)
  // or a media connection that fails is joined again with the same token, after a
  // growing pause; the SFU hands the new connection this identity's place (and the
  // speaker slot). Only the end of the space, leaving, or a refusal stops it.
  // Capped at 2 s: audio should be back within a few seconds of the node (issue 9 says 5).
  const BACKOFF_MS = [250, 500, 1000, 2000];
  // Errors after which joining again cannot help.
  const FINAL_ERRORS = new Set(["replaced", "removed", "unauthorized", "unknown_space", "ended", "identity_taken"]);
  // The SFU words its errors precisely, in English; a reader of another language gets its code in plain words.
  const SFU_ERRORS = {
    unauthorized: tr("Your invitation is not valid any more; ask the host for a new one."),
    unknown_space: tr("There is no such space."),
    ended: tr("You cannot join this space any more: it has ended, or the host removed you."),
    identity_taken: tr("Somebody of that name is already in this space."),
    too_many: tr("This space is full."),
    unavailable: tr("The live service is unavailable for a moment; try again shortly."),
    replaced: tr("You joined this space from another window or device."),
    removed: tr("The host removed you from this space."),
    forbidden: tr("That is not allowed in this space."),
    setup_timeout: tr("Connecting took too long; try again."),
  };
  const english = document.documentElement.lang === "en";
  function sfuSays(msg) { return (!english && SFU_ERRORS[msg.code]) || msg.message; }

  function connect() {
    status(state.retries ? tr("Reconnecting…") : tr("Connecting…"));
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    pc.ontrack = onTrack;
    pc.onconnectionstatechange = () => {
      if (state.pc !== pc) return;
      event("connection", pc.connectionState);
      if (pc.connectionState === "connected") { state.retries = 0; status(tr("Connected.")); }
      if (pc.connectionState === "failed" && state.ws) {
        status(tr("The media connection failed; reconnecting…"));
        state.ws.close(4000, "media failed");
      }
    };
    const ws = new WebSocket(rtcUrl);
    state.ws = ws;
    ws.onopen = () => send({ type: "join", token: state.token, record: state.record });
    ws.onmessage = (e) => onMessage(JSON.parse(e.data)).catch((err) => status(tr("Error: {reason}", { reason: err.message })));
    ws.onclose = (e) => {
      if (state.ws !== ws) return;
      event("closed", e.code);
      state.ws = null;
      teardown({ keepMic: true });
      if (state.movedTo) {
        // The space is on another node: join there instead, as if nothing happened.
        rtcUrl = state.movedTo;
        state.movedTo = null;
        connect();
        return;
      }
      if (state.hls) {
        teardown({ keepMic: false });
        window.liveHls.start({ reason: state.hls, token: state.token });
        return;
      }
      if (state.ended || state.left || state.refused) {
        if (!state.ended && !state.left) status(state.refused);
        teardown({ keepMic: false });
        return;
      }
      const delay = BACKOFF_MS[Math.min(state.retries, BACKOFF_MS.length - 1)] * (0.8 + 0.4 * Math.random());
      state.retries += 1;
      event("reconnect", { attempt: state.retries, delay: Math.round(delay) });
      status(tr("Disconnected ({reason}); reconnecting…", { reason: e.reason || e.code }));
      setTimeout(() => { if (!state.left && !state.ended) connect(); }, delay);
    };
  }

  function teardown(options) {
    if (state.pc) state.pc.close();
    state.pc = null;
    $("audio").replaceChildren();
    if (!options.keepMic && state.mic) { state.mic.stop(); state.mic = null; }
  }

  async function onMessage(msg) {
    event(msg.type, msg.type === "offer" ? { rev: msg.rev } : msg);
    switch (msg.type) {
      case "welcome":
        state.identity = msg.identity;
        state.role = msg.role;
        if (!$("hand-name").value) $("hand-name").value = msg.identity; // the name offered with a hand; editable
        state.moves = 0;
        // A rejoin is a new participant to the SFU: tell it what this page still has on.
        if (state.muted) send({ type: "mute", muted: true });
        if (state.hand) {
          const name = $("hand-name").value.trim();
          send({ type: "hand", raised: true, ...(name && name !== state.identity ? { name } : {}) });
        }
        $("join-panel").hidden = true;
        $("room").hidden = false;
        renderControls();
        if (msg.role === "host") showListenerLink();
        if (msg.role !== "listener") showErasureLink();
        // Declined in a record-everyone-or-no-one space: listening, the microphone closed.
        else if (state.mic) { state.mic.stop(); state.mic = null; }
        break;
      case "queued":
        // Joins are paced: the SFU sets up a few connections at a time; the welcome follows.
        status(tr("Many people are joining; you are number {position} in line…", { position: msg.position }));
        break;
      case "offer":
        await answer(msg);
        break;
      case "state":
        state.room = msg;
        renderRoom();
        break;
      case "speaking":
        state.levels = msg.levels;
        renderRoom();
        break;
      case "role":
        state.role = msg.role;
        if (msg.identity) state.identity = msg.identity;
        if (msg.role !== "listener") {
          // Invited without offering a name: take the one in the field, before the mic opens.
          const name = $("hand-name").value.trim();
          if (name && name !== state.identity) send({ type: "name", name });
          // Promoted: ask before the microphone goes live (the offer's answer waits for it).
          state.consentGate = askConsent().then((record) => { send({ type: "consent", record }); });
          await state.consentGate;
          state.consentGate = null;
          if (state.role === "listener") break;
          status(state.record ? tr("You can speak now.") : tr("You can speak now; you are heard live, not recorded."));
          await ensureMic();
          showErasureLink();
        } else {
          status(tr("You are listening."));
          if (state.mic) { state.mic.stop(); state.mic = null; }
        }
        renderControls();
        break;
      case "muted":
        state.muted = msg.muted;
        if (state.mic) state.mic.enabled = !msg.muted;
        if (msg.by !== state.identity) status(msg.muted ? tr("Muted by {name}.", { name: msg.by }) : tr("Unmuted by {name}.", { name: msg.by }));
        renderControls();
        break;
      case "ended":
        state.ended = true;
        {
          const replay = new URL(root.dataset.replayUrl, location.href).href;
          // The sentence is translated whole; the link takes the place of {link} in it.
          const [before, after] = tr("The space has ended. Its replay will be at {link} once it is processed.").split("{link}");
          $("status").replaceChildren(before, el("a", { href: replay, id: "replay-link" }, replay), after || "");
        }
        $("badge").textContent = tr("Ended");
        $("room").hidden = true;
        break;
      case "renamed":
        state.identity = msg.identity;
        $("hand-name").value = msg.identity;
        renderControls();
        break;
      case "moved":
        if (state.moves < MAX_MOVES) { state.moves += 1; state.movedTo = msg.rtc_url; }
        break;
      case "hls":
        // The room's WebRTC seats are taken: its HLS instead (livehls.js), once the socket closes.
        state.hls = msg.reason || "full";
        break;
      case "caption":
        showCaption(msg);
        break;
      case "error":
        if (FINAL_ERRORS.has(msg.code)) state.refused = sfuSays(msg);
        status(sfuSays(msg));
        if (msg.code === "identity_taken" && state.hand) { state.hand = false; renderControls(); }
        break;
    }
  }

  async function answer(offer) {
    const pc = state.pc;
    Object.assign(state.slotsByMid, offer.slots || {});
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    for (const t of pc.getTransceivers()) {
      if (t.mid === null) continue;
      if (offer.publish_mid !== null && t.mid === offer.publish_mid) {
        let mic = null;
        try { mic = await ensureMic(); } catch (e) { t.direction = "inactive"; continue; }
        mic.enabled = !state.muted;
        await t.sender.replaceTrack(mic);
        t.direction = "sendonly";
      } else if (t.mid in state.slotsByMid) {
        t.direction = "recvonly";
      } else {
        t.direction = "inactive";
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    send({ type: "answer", rev: offer.rev, sdp: pc.localDescription.sdp });
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000); // whatever we have by then
    });
  }

  function onTrack(e) {
    const audio = document.createElement("audio");
    audio.autoplay = true;
    audio.dataset.mid = e.transceiver.mid;
    audio.srcObject = new MediaStream([e.track]);
    $("audio").appendChild(audio);
    audio.play().catch(() => status(tr("Click anywhere to hear the space.")));
  }

  // --- rendering -----------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function renderRoom() {
    const isHost = state.role === "host";
    const list = $("speakers");
    list.replaceChildren();
    for (const s of state.room.speakers || []) {
      const level = state.levels[s.identity] || 0;
      const item = el("li", { class: "speaker" + (level ? " speaker--talking" : "") + (s.muted ? " speaker--muted" : ""), "data-identity": s.identity },
        el("span", { class: "speaker__level" }),
        el("span", { class: "speaker__name" }, s.identity === state.identity ? tr("{name} (you)", { name: s.identity }) : s.identity),
        el("span", { class: "speaker__role" }, s.role === "host" ? tr("host") : s.muted ? tr("muted") : ""),
        s.recorded === false ? el("span", { class: "speaker__role speaker__unrecorded" }, tr("not recorded")) : "");
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      item.style.setProperty("--level", String(level));
      if (isHost && s.identity !== state.identity) {
        item.append(
          el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "mute", identity: s.identity, muted: !s.muted }) }, s.muted ? tr("Unmute") : tr("Mute")),
          el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "demote", identity: s.identity }) }, tr("Move to audience")),
          el("button", { class: "button button--small button--danger", type: "button", onclick: () => send({ type: "remove", identity: s.identity }) }, tr("Remove")));
      }
      list.append(item);
    }
    const unrecorded = state.room.not_recorded || [];
    $("recording-note").hidden = unrecorded.length === 0;
    $("recording-note").textContent = unrecorded.length
      ? tr("Not being recorded: {names} (heard live only; not in the replay or transcript).", { names: unrecorded.join(", ") }) : "";
    if ($("all-or-none")) $("all-or-none").checked = state.room.recording === "all_or_none";
    const n = state.room.listeners || 0;
    $("listeners").textContent = n === 1 ? tr("1 listener") : tr("{count} listeners", { count: n });
    const hands = $("hands");
    hands.replaceChildren();
    for (const who of state.room.hands || []) {
      const offered = (state.room.hand_names || {})[who];
      hands.append(el("li", {}, offered ? `${offered} (${who}) ` : who + " ",
        el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "promote", identity: who }) }, tr("Invite to speak"))));
    }
  }

  function renderControls() {
    const speaking = state.role === "host" || state.role === "speaker";
    $("mute").hidden = !speaking;
    $("mute").textContent = state.muted ? tr("Unmute") : tr("Mute");
    $("hand").hidden = speaking;
    $("hand-name-field").hidden = speaking;
    $("hand").textContent = state.hand ? tr("Lower hand") : tr("Raise hand");
    $("host-panel").hidden = state.role !== "host";
    renderRoom();
  }

  // --- captions ------------------------------------------------------------
  //
  // The room agent sends each speaker's utterance as it grows (interim, may
  // still change) and once more when it is over (final). Events of one
  // utterance share a key (speaker + utterance): each replaces the line in
  // place, so text never shows twice. A settled event (the utterance heard
  // again with the room around it, seconds later) replaces the final once,
  // on screen and in the transcript. A replaced agent numbers utterances
  // from 0 again: a key whose line is final and ended before the new event
  // starts is a new utterance, not an update.
  const CAPTION_LINES = 3;
  const captionLines = new Map(); // key -> {line, seq, final, settled, end, item}
  let captionsOn = true;
  try { captionsOn = localStorage.getItem("captions") !== "off"; } catch (e) { /* default on */ }
  $("captions-on").checked = captionsOn;
  $("captions").hidden = !captionsOn;
  $("captions-on").addEventListener("change", () => {
    captionsOn = $("captions-on").checked;
    $("captions").hidden = !captionsOn;
    try { localStorage.setItem("captions", captionsOn ? "on" : "off"); } catch (e) { /* memory only */ }
  });
  window.liveSpace.captions = () => Array.from($("captions").children).map((p) => ({
    speaker: p.dataset.speaker,
    lines: Array.from(p.querySelector(".caption__text").childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent),
    final: !p.classList.contains("caption--interim") }));
  window.liveSpace.showCaption = (c) => showCaption(c);
  window.liveSpace.transcript = () => Array.from($("transcript").children).map((li) => ({
    speaker: li.dataset.speaker, text: li.querySelector(".transcript__text").textContent }));

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function showCaption(c) {
    let key = `${c.speaker}\u0000${c.utterance}`;
    let known = captionLines.get(key);
    if (known && known.final && !c.settled && c.start >= known.end) {
      captionLines.delete(key);
      key = `${key}\u0000${c.start}`;
      known = captionLines.get(key);
    }
    // Late or repeated; after a final only its settled text, after that nothing.
    if (known && (c.seq <= known.seq || known.settled || (known.final && !c.settled))) return;
    if (!known) {
      const line = el("p", { class: "caption", "data-speaker": c.speaker },
        el("span", { class: "caption__speaker" }, c.speaker), el("span", { class: "caption__text" }));
      $("captions").append(line);
      known = { line, seq: -1, final: false, settled: false, end: 0, item: null };
      captionLines.set(key, known);
      while ($("captions").children.length > CAPTION_LINES) $("captions").firstElementChild.remove();
    }
    known.seq = c.seq;
    known.final = c.final;
    known.settled = Boolean(c.settled);
    known.end = c.end;
    known.line.classList.toggle("caption--interim", !c.final);
    // The cue on screen now (the replay's rules: at most 2 lines of 42 characters);
    // the transcript below keeps the whole utterance.
    const text = known.line.querySelector(".caption__text");
    text.replaceChildren();
    (c.lines && c.lines.length ? c.lines : [c.text]).forEach((line, i) => { if (i) text.append(el("br")); text.append(line); });
    if (c.final && known.item) known.item.querySelector(".transcript__text").textContent = c.text;
    else if (c.final) known.item = addToTranscript(c);
  }

  function addToTranscript(c) {
    const list = $("transcript");
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8; // reading older lines: stay there
    const item = el("li", { "data-speaker": c.speaker, "data-start": String(c.start) },
      el("span", { class: "transcript__time" }, clock(c.start)),
      el("span", { class: "transcript__speaker" }, c.speaker),
      el("span", { class: "transcript__text" }, c.text));
    // In room-clock order: two speakers' finals can arrive out of order.
    let after = null;
    for (const li of list.children) { if (Number(li.dataset.start) > c.start) { after = li; break; } }
    list.insertBefore(item, after);
    if (stick) list.scrollTop = list.scrollHeight;
    return item;
  }

  $("join").addEventListener("click", join);
  $("all-or-none").addEventListener("change", (e) => send({ type: "recording", all_or_none: e.target.checked }));
  $("mute").addEventListener("click", () => {
    state.muted = !state.muted;
    if (state.mic) state.mic.enabled = !state.muted;
    send({ type: "mute", muted: state.muted });
    renderControls();
  });
  $("hand").addEventListener("click", () => {
    state.hand = !state.hand;
    const name = $("hand-name").value.trim();
    // The name to speak under travels with the hand (the host sees it; taken on promotion).
    send({ type: "hand", raised: state.hand, ...(state.hand && name && name !== state.identity ? { name } : {}) });
    renderControls();
  });
  $("leave").addEventListener("click", () => {
    state.left = true;
    if (state.ws) state.ws.close(1000, "left");
    status(tr("You left the space."));
    $("room").hidden = true;
  });
  $("end").addEventListener("click", () => { if (confirm(tr("End the space for everyone?"))) send({ type: "end" }); });
  // --- sharing (host): a listener link and speaker links, never the host's own --

  const pageUrl = `${location.origin}/spaces/${encodeURIComponent(spaceId)}/live`;

  function fit(field) {
    field.style.height = "auto";
    field.style.height = `${field.scrollHeight + 2}px`;
  }

  function showLink(field, url) {
    field.value = url;
    field.closest(".share__row").hidden = false;
    fit(field);
  }

  async function copy(field, button) {
    const label = button.textContent;
    try { await navigator.clipboard.writeText(field.value); } catch (e) {
      field.select();
      if (document.execCommand) document.execCommand("copy");
    }
    button.textContent = tr("Copied");
    setTimeout(() => { button.textContent = label; }, 1500);
  }

  async function showListenerLink() {
    if (root.dataset.private !== "true") { showLink($("listener-link"), pageUrl); return; }
    // A private space opens only with a token of its own: a listener one,
    // which each person who opens the link trades for their own.
    try {
      showLink($("listener-link"), `${pageUrl}?token=${encodeURIComponent(await listenerToken(state.token))}`);
    } catch (e) { $("invite-link").textContent = tr("No listener link: {reason}", { reason: e.message }); }
  }

  window.addEventListener("resize", () => ["listener-link", "speaker-link"].forEach((id) => { if ($(id).value) fit($(id)); }));
  $("copy-listener").addEventListener("click", () => copy($("listener-link"), $("copy-listener")));
  $("copy-speaker").addEventListener("click", () => copy($("speaker-link"), $("copy-speaker")));
  $("invite").addEventListener("submit", async (e) => {
    e.preventDefault();
    const identity = $("invite-name").value.trim();
    let response, body;
    try {
      response = await fetch(`/spaces/${encodeURIComponent(spaceId)}/tokens`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
        body: JSON.stringify({ role: "speaker", identity }),
      });
      body = await response.json();
    } catch {
      // A dropped connection or a proxy's HTML error page: say so, not nothing.
      $("invite-link").textContent = tr("Could not invite.");
      return;
    }
    if (!response.ok) { $("invite-link").textContent = body.error ? body.error.message : tr("Could not invite."); return; }
    $("invite-link").textContent = tr("Send this link to {name} only: it lets them speak as {name}.", { name: identity });
    showLink($("speaker-link"), `${pageUrl}?token=${encodeURIComponent(body.token)}`);
  });
})();
