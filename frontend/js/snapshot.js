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
const MUTED = "#5f6577";
const FONT = "system-ui, sans-serif";

/**
 * A PNG data URL of the live view; `title` is written across the top and `metrics`
 * ([[label, value], ...]) on the line under it.
 */
export async function dashboardPNG(title, metrics = []) {
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

  const side = H - head - pad; // the samples panel is square on the left
  const samples = $("samples");
  const s = Math.min(side / samples.height, side / samples.width);
  ctx.drawImage(samples, pad, head, samples.width * s, samples.height * s);

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
  titled("Occupancy per mode (dashed: covered line 1/(4K); dotted: fair share 1/K)", head, key);
  fitIn($("chart-bars"), head + caption, rows - caption - 4);
  titled("Occupancy over time (modes × steps)", head + rows, [["0", "#ffffff"], ["fair share", "#f08a4b"], ["≥ 2× fair", "#7a1f3d"]]);
  fitIn($("chart-heat"), head + rows + caption, rows - caption - 4);
  const P = globalThis.Plotly;
  let y = head + 2 * rows;
  for (const id of ["chart-loss", "chart-modes"]) {
    // laid out at the slot's size, rendered at 2× for sharpness
    const url = await P.toImage($(id), { format: "png", width: w, height: rows - 4, scale });
    ctx.drawImage(await loadImage(url), x, y, w, rows - 4);
    y += rows;
  }
  return out.toDataURL("image/png");
}
