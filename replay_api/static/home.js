/* The home page's "Start a space": POST /spaces, then the host's live page.
 *
 * The host token goes to this tab's sessionStorage, where the live page
 * looks for it. A public space's page opens without it in the address; a
 * private one's needs it once (the page cannot open otherwise), and the
 * live page takes it out of the address bar at once.
 */
(() => {
  "use strict";

  const form = document.getElementById("start");
  if (!form) return;
  form.hidden = false;
  const error = document.getElementById("start-error");
  const button = document.getElementById("start-go");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    const data = new FormData(form);
    const visibility = data.get("visibility") === "private" ? "private" : "public";
    try {
      const response = await fetch("/spaces", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          title: String(data.get("title") || "").trim(),
          host: String(data.get("host") || "").trim() || "host",
          visibility,
          language: String(data.get("language") || "auto"),
        }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : tr("error {status}", { status: response.status }));
      try { sessionStorage.setItem(`space-token:${body.space_id}`, body.token); } catch (_) { /* private mode */ }
      const page = `/spaces/${encodeURIComponent(body.space_id)}/live`;
      location.assign(visibility === "private" ? `${page}?token=${encodeURIComponent(body.token)}` : page);
    } catch (e) {
      error.textContent = tr("Could not start the space: {reason}", { reason: e.message });
      button.disabled = false;
    }
  });
})();
