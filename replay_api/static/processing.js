/* The page of a space that is not ready yet: it follows GET /spaces/{id}.
 *
 * Bars move in place as the pipeline reports progress; when the state
 * changes (the space ends, is processed, fails) or a stage starts that the
 * page does not show yet, the page reloads, so the server, which knows
 * every stage's plain name, draws it again; a ready space opens its replay.
 */
(() => {
  "use strict";

  const root = document.getElementById("processing");
  if (!root) return;
  const POLL_MS = 2000;
  const token = root.dataset.token || "";
  const url = `/spaces/${encodeURIComponent(root.dataset.spaceId)}`;
  const bars = new Map(Array.from(root.querySelectorAll("[data-stage]"), (el) => [el.dataset.stage, el]));
  const instant = startInstantReplay();

  // The live HLS, closed when the space ended: something to play at once.
  function startInstantReplay() {
    const section = document.getElementById("instant");
    if (!section || !window.HlsPlayer) return null;
    const audio = document.getElementById("instant-audio");
    const box = document.getElementById("instant-captions");
    const player = window.HlsPlayer({
      url: section.dataset.hlsUrl, token, audio,
      onCues: (cues) => box.replaceChildren(...cues.map(window.HlsPlayer.captionLine)),
    });
    window.instantReplay = player;
    return { player, audio };
  }

  function playing() { return instant && !instant.audio.paused && instant.audio.currentTime > 0; }

  function show(stage, fraction) {
    const el = bars.get(stage);
    const percent = `${Math.round(fraction * 100)} %`;
    el.querySelector("progress").value = fraction;
    el.querySelector("progress").textContent = percent;
    el.querySelector(".progress__pct").textContent = percent;
  }

  async function poll() {
    try {
      const response = await fetch(url, {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        cache: "no-store",
      });
      if (response.ok) {
        const space = await response.json();
        const stages = Object.keys(space.progress || {});
        if (space.state === "ready" && playing()) {
          // The pipeline's mix and transcript landed: go on from here in the replay.
          const room = instant.player.room;
          location.href = `${url}/replay${room === null ? "" : `?t=${room.toFixed(2)}`}`;
          return;
        }
        if (!playing() && (space.state !== root.dataset.state || stages.some((s) => !bars.has(s)))) {
          location.reload();
          return;
        }
        stages.filter((s) => bars.has(s)).forEach((s) => show(s, space.progress[s]));
      }
    } catch (_) { /* offline for a moment: try again */ }
    setTimeout(poll, POLL_MS);
  }

  if (root.dataset.state !== "failed") setTimeout(poll, POLL_MS);
})();
