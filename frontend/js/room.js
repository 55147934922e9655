// The page in the room: a larger type for a projector, switched in the top bar and remembered on
// this browser. Every font size of the stylesheet is a multiple of the CSS variable --type;
// the charts drawn by script (Plotly, the canvases) read the same scale from typeScale().

const KEY = "collapse-lab.type";

/** The type scale in force: 1, or larger while the projector's type is on. */
export function typeScale() {
  if (typeof document === "undefined" || typeof getComputedStyle !== "function") return 1;
  const v = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--type"));
  return Number.isFinite(v) && v > 0 ? v : 1;
}

function remembered() {
  try { return localStorage.getItem(KEY) === "large"; } catch { return false; }
}

/** Apply the remembered type size; wire `button` to switch it; `changed()` after each switch. */
export function installTypeToggle(button, changed = () => {}) {
  const apply = (large) => {
    document.documentElement.dataset.type = large ? "large" : "normal";
    button.setAttribute("aria-pressed", String(large));
    button.title = large ? "Normal type (the larger type for a projector is on)"
      : "Larger type, for a projector (remembered on this browser)";
  };
  apply(remembered());
  button.addEventListener("click", () => {
    const large = document.documentElement.dataset.type !== "large";
    try { localStorage.setItem(KEY, large ? "large" : "normal"); } catch { /* not kept */ }
    apply(large);
    changed(large);
  });
}
