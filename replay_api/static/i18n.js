/* The page's strings in the reader's language, for the page's other scripts.
 *
 * The server puts the catalogue entries those scripts use in
 * <script id="strings" type="application/json"> (a key is its English text,
 * as in the templates), so a language is one catalogue file, not a script.
 * tr("Muted by {name}.", { name }) fills in names as the server's gettext does.
 */
(() => {
  "use strict";
  const node = document.getElementById("strings");
  const strings = node ? JSON.parse(node.textContent) : {};
  window.tr = (text, values) => {
    const out = strings[text] || text;
    return values ? out.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole)) : out;
  };
})();
