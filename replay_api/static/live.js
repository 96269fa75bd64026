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
    movedTo: null,
    moves: 0,
    retries: 0,
    left: false,
    refused: null,
  };
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

  async function listenerToken() {
    const response = await fetch(`/spaces/${encodeURIComponent(spaceId)}/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ role: "listener" }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : "could not get a listener token");
    return body.token;
  }

  async function ensureMic() {
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
      if (!state.token) state.token = await listenerToken();
      const c = claims(state.token);
      if (c && (c.role === "host" || c.role === "speaker")) {
        status("Asking for your microphone…");
        await ensureMic();
      }
    } catch (e) {
      status(`Cannot join: ${e.message}`);
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

  function connect() {
    status(state.retries ? "Reconnecting…" : "Connecting…");
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    pc.ontrack = onTrack;
    pc.onconnectionstatechange = () => {
      if (state.pc !== pc) return;
      event("connection", pc.connectionState);
      if (pc.connectionState === "connected") { state.retries = 0; status("Connected."); }
      if (pc.connectionState === "failed" && state.ws) {
        status("The media connection failed; reconnecting…");
        state.ws.close(4000, "media failed");
      }
    };
    const ws = new WebSocket(rtcUrl);
    state.ws = ws;
    ws.onopen = () => send({ type: "join", token: state.token });
    ws.onmessage = (e) => onMessage(JSON.parse(e.data)).catch((err) => status(`Error: ${err.message}`));
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
      if (state.ended || state.left || state.refused) {
        if (!state.ended && !state.left) status(state.refused);
        teardown({ keepMic: false });
        return;
      }
      const delay = BACKOFF_MS[Math.min(state.retries, BACKOFF_MS.length - 1)] * (0.8 + 0.4 * Math.random());
      state.retries += 1;
      event("reconnect", { attempt: state.retries, delay: Math.round(delay) });
      status(`Disconnected (${e.reason || e.code}); reconnecting…`);
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
        state.moves = 0;
        // A rejoin is a new participant to the SFU: tell it what this page still has on.
        if (state.muted) send({ type: "mute", muted: true });
        if (state.hand) send({ type: "hand", raised: true });
        $("join-panel").hidden = true;
        $("room").hidden = false;
        renderControls();
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
        if (msg.role !== "listener") {
          status("You can speak now.");
          await ensureMic();
        } else {
          status("You are listening.");
          if (state.mic) { state.mic.stop(); state.mic = null; }
        }
        renderControls();
        break;
      case "muted":
        state.muted = msg.muted;
        if (state.mic) state.mic.enabled = !msg.muted;
        if (msg.by !== state.identity) status(msg.muted ? `Muted by ${msg.by}.` : `Unmuted by ${msg.by}.`);
        renderControls();
        break;
      case "ended":
        state.ended = true;
        status(`The space has ended. The replay will be at ${root.dataset.replayUrl} once processed.`);
        $("badge").textContent = "Ended";
        $("room").hidden = true;
        break;
      case "moved":
        if (state.moves < MAX_MOVES) { state.moves += 1; state.movedTo = msg.rtc_url; }
        break;
      case "error":
        if (FINAL_ERRORS.has(msg.code)) state.refused = msg.message;
        status(msg.message);
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
        const mic = await ensureMic();
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
    audio.play().catch(() => status("Click anywhere to hear the space."));
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
        el("span", { class: "speaker__name" }, s.identity + (s.identity === state.identity ? " (you)" : "")),
        el("span", { class: "speaker__role" }, s.role === "host" ? "host" : s.muted ? "muted" : ""));
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      item.style.setProperty("--level", String(level));
      if (isHost && s.identity !== state.identity) {
        item.append(
          el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "mute", identity: s.identity, muted: !s.muted }) }, s.muted ? "Unmute" : "Mute"),
          el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "demote", identity: s.identity }) }, "Move to audience"),
          el("button", { class: "button button--small button--danger", type: "button", onclick: () => send({ type: "remove", identity: s.identity }) }, "Remove"));
      }
      list.append(item);
    }
    const n = state.room.listeners || 0;
    $("listeners").textContent = `${n} listener${n === 1 ? "" : "s"}`;
    const hands = $("hands");
    hands.replaceChildren();
    for (const who of state.room.hands || []) {
      hands.append(el("li", {}, who + " ",
        el("button", { class: "button button--small", type: "button", onclick: () => send({ type: "promote", identity: who }) }, "Invite to speak")));
    }
  }

  function renderControls() {
    const speaking = state.role === "host" || state.role === "speaker";
    $("mute").hidden = !speaking;
    $("mute").textContent = state.muted ? "Unmute" : "Mute";
    $("hand").hidden = speaking;
    $("hand").textContent = state.hand ? "Lower hand" : "Raise hand";
    $("host-panel").hidden = state.role !== "host";
    renderRoom();
  }

  $("join").addEventListener("click", join);
  $("mute").addEventListener("click", () => {
    state.muted = !state.muted;
    if (state.mic) state.mic.enabled = !state.muted;
    send({ type: "mute", muted: state.muted });
    renderControls();
  });
  $("hand").addEventListener("click", () => {
    state.hand = !state.hand;
    send({ type: "hand", raised: state.hand });
    renderControls();
  });
  $("leave").addEventListener("click", () => {
    state.left = true;
    if (state.ws) state.ws.close(1000, "left");
    status("You left the space.");
    $("room").hidden = true;
  });
  $("end").addEventListener("click", () => { if (confirm("End the space for everyone?")) send({ type: "end" }); });
  $("invite").addEventListener("submit", async (e) => {
    e.preventDefault();
    const identity = $("invite-name").value.trim();
    const response = await fetch(`/spaces/${encodeURIComponent(spaceId)}/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
      body: JSON.stringify({ role: "speaker", identity }),
    });
    const body = await response.json();
    if (!response.ok) { $("invite-link").textContent = body.error ? body.error.message : "Could not invite."; return; }
    $("invite-link").replaceChildren("Send this link to ", identity, ": ", el("a", { href: body.live_url }, body.live_url));
  });
})();
