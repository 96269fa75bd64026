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
        if (space.state !== root.dataset.state || stages.some((s) => !bars.has(s))) {
          location.reload();
          return;
        }
        stages.forEach((s) => show(s, space.progress[s]));
      }
    } catch (_) { /* offline for a moment: try again */ }
    setTimeout(poll, POLL_MS);
  }

  if (root.dataset.state !== "failed") setTimeout(poll, POLL_MS);
})();
