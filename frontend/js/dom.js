// The one DOM element builder of the page's modules.

/**
 * el("button", {class: "small", text: "Open", title: "…"}, ...children): attributes left out when
 * undefined, null or false; `class` and `text` set className and textContent.
 */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid) e.append(kid);
  return e;
}
