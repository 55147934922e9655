// "PNG" of the live view: the samples panel, the occupancy bars and heatmap (canvases) and the
// two Plotly curve charts (Plotly.toImage) composed into one image, titled with the run and the
// step of the picture shown, its metrics written under the title, each occupancy chart titled
// with its colour key.

import { OCC_COLORS } from "./series.js";

const $ = (id) => document.getElementById(id);

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("could not render a chart to PNG"));
    img.src = src;
  });
}

const INK = "#1f2230";

/** The samples panel's colour key: [label, draw(ctx, x, y)] with a 10 px swatch at (x, y). */
function sampleKey(opts) {
  const box = (fill, stroke) => (c, x, y) => {
    if (fill) { c.fillStyle = fill; c.fillRect(x, y, 10, 10); }
    if (stroke) { c.strokeStyle = stroke; c.lineWidth = 1.5; c.strokeRect(x + 0.75, y + 0.75, 8.5, 8.5); }
  };
  const ring = (c, x, y) => {
    c.strokeStyle = "#2e9e5b";
    c.lineWidth = 1.5;
    c.beginPath();
    c.arc(x + 5, y + 5, 4.5, 0, 2 * Math.PI);
    c.stroke();
  };
  const key = [["real", box("rgba(20, 20, 20, 0.35)")], ["generated", box("#1b1f3b")],
    ["low quality", box("rgba(140, 40, 160, 0.55)")], ["mode centre", ring]];
  if (opts.manifold) key.push(["G manifold", box(null, "rgb(0, 121, 140)")]);
  return key;
}
const MUTED = "#5f6577";
const FONT = "system-ui, sans-serif";

/**
 * A PNG data URL of the live view; `title` is written across the top and `metrics`
 * ([[label, value], ...]) on the line under it. opts.manifold: the G manifold layer is drawn
 * (its key is added).
 */
export async function dashboardPNG(title, metrics = [], opts = {}) {
  const scale = 2;
  const W = 1400;
  const H = 800;
  const pad = 12;
  const head = 58; // title and metrics
  const out = document.createElement("canvas");
  out.width = W * scale;
  out.height = H * scale;
  const ctx = out.getContext("2d");
  ctx.scale(scale, scale);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = INK;
  ctx.font = `600 16px ${FONT}`;
  ctx.textBaseline = "alphabetic";
  ctx.fillText(title, pad, 22);
  let mx = pad;
  for (const [label, value] of metrics) {
    ctx.font = `12.5px ${FONT}`;
    ctx.fillStyle = MUTED;
    ctx.fillText(`${label} `, mx, 44);
    mx += ctx.measureText(`${label} `).width;
    ctx.font = `600 12.5px ${FONT}`;
    ctx.fillStyle = INK;
    ctx.fillText(value, mx, 44);
    mx += ctx.measureText(value).width + 16;
  }

  const foot = 22; // the samples' colour key under them
  const side = H - head - pad - foot; // the samples panel is square on the left
  if (opts.text) {
    drawTextPanel(ctx, opts.text, pad, head, side, side + foot);
    await drawRight(ctx, W, H, head, pad, side);
    return out.toDataURL("image/png");
  }
  const samples = $("samples");
  const s = Math.min(side / samples.height, side / samples.width);
  ctx.drawImage(samples, pad, head, samples.width * s, samples.height * s);
  let kx = pad;
  const ky = head + samples.height * s + 16;
  ctx.font = `11.5px ${FONT}`;
  for (const [label, draw] of sampleKey(opts)) {
    draw(ctx, kx, ky - 9);
    kx += 14;
    ctx.fillStyle = MUTED;
    ctx.fillText(label, kx, ky);
    kx += ctx.measureText(label).width + 14;
  }

  await drawRight(ctx, W, H, head, pad, side);
  return out.toDataURL("image/png");
}

/**
 * A family's text panel (docs/families.md, kind "text": {label, items, groups}) in the samples'
 * place, for a family whose samples are not points: each group's name, then its strings in
 * columns, as many as fit; what does not fit is counted.
 */
function drawTextPanel(ctx, text, x0, y0, w, h) {
  ctx.font = `600 13px ${FONT}`;
  ctx.fillStyle = INK;
  ctx.fillText(text.label, x0, y0 + 13);
  const line = 15;
  const colW = w / 2;
  let col = 0;
  let y = y0 + 34;
  const bottom = y0 + h - 4;
  const items = text.value.items || [];
  const groups = (text.value.groups || []).filter((g) => items.some((it) => it.group === g));
  let shown = 0;
  const next = () => {
    y += line;
    if (y > bottom) { col += 1; y = y0 + 34; }
    return col < 2;
  };
  for (const g of groups) {
    if (col >= 2) break;
    ctx.font = `600 12px ${FONT}`;
    ctx.fillStyle = INK;
    ctx.fillText(g, x0 + col * colW, y);
    if (!next()) break;
    ctx.font = `12px ${FONT}`;
    for (const it of items.filter((i) => i.group === g)) {
      ctx.fillStyle = it.tag ? MUTED : INK;
      ctx.fillText(`${it.text}${it.tag ? ` (${it.tag})` : ""}`, x0 + col * colW + 10, y);
      shown += 1;
      if (!next()) break;
    }
    y += 4;
  }
  if (shown < items.length) {
    ctx.font = `12px ${FONT}`;
    ctx.fillStyle = MUTED;
    ctx.fillText(`… and ${items.length - shown} more`, x0, y0 + h + 12);
  }
}

/** The occupancy charts and the two curve charts, in the right-hand column. */
async function drawRight(ctx, W, H, head, pad, side) {
  const scale = 2;
  const x = pad * 2 + side;
  const w = W - x - pad;
  const rows = (H - head - pad) / 4;
  const caption = 18;
  // a chart title with, for the occupancy charts, the colours' key on its right
  const titled = (text, y, key) => {
    ctx.font = `600 13px ${FONT}`;
    ctx.fillStyle = INK;
    ctx.fillText(text, x, y + 13);
    if (!key) return;
    let kx = x + w;
    ctx.font = `11.5px ${FONT}`;
    for (const [label, color] of key.slice().reverse()) {
      const tw = ctx.measureText(label).width;
      kx -= tw;
      ctx.fillStyle = MUTED;
      ctx.fillText(label, kx, y + 13);
      kx -= 14;
      ctx.fillStyle = color;
      ctx.fillRect(kx, y + 4, 10, 10);
      ctx.strokeStyle = "#c9ccd6";
      ctx.strokeRect(kx + 0.5, y + 4.5, 9, 9);
      kx -= 10;
    }
  };
  // canvases keep their aspect (letterboxed in their slot), so text is not stretched
  const fitIn = (c, y, slotH) => {
    const k = Math.min(w / c.width, slotH / c.height);
    ctx.drawImage(c, x, y, c.width * k, c.height * k);
  };
  const key = [["covered", OCC_COLORS.covered], ["starving", OCC_COLORS.starving],
    ["dropped", OCC_COLORS.dropped]];
  titled("Occupancy per mode (dashed line: covered, 1/(4K))", head, key);
  fitIn($("chart-bars"), head + caption, rows - caption - 4);
  titled("Occupancy over time (modes × steps)", head + rows, [["0", "#ffffff"], ["fair share", "#f08a4b"], ["≥ 2× fair", "#7a1f3d"]]);
  fitIn($("chart-heat"), head + rows + caption, rows - caption - 4);
  const P = globalThis.Plotly;
  let y = head + 2 * rows;
  for (const [id, text] of [["chart-loss", $("loss-title").textContent], ["chart-modes", "Modes and divergence over time"]]) {
    titled(text, y);
    // laid out at the slot's size, rendered at 2× for sharpness
    const h = rows - caption - 4;
    const url = await P.toImage($(id), { format: "png", width: w, height: h, scale });
    ctx.drawImage(await loadImage(url), x, y + caption, w, h);
    y += rows;
  }
}
