// "PNG" of the live view: the samples panel, the occupancy bars and heatmap (canvases) and the
// two Plotly curve charts (Plotly.toImage) composed into one image, titled with the run.

const $ = (id) => document.getElementById(id);

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("could not render a chart to PNG"));
    img.src = src;
  });
}

/** A PNG data URL of the live view; `title` is written across the top. */
export async function dashboardPNG(title) {
  const scale = 2;
  const W = 1400;
  const H = 760;
  const pad = 12;
  const head = 34;
  const out = document.createElement("canvas");
  out.width = W * scale;
  out.height = H * scale;
  const ctx = out.getContext("2d");
  ctx.scale(scale, scale);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#1f2230";
  ctx.font = "600 16px system-ui, sans-serif";
  ctx.fillText(title, pad, 22);

  const side = H - head - pad; // the samples panel is square on the left
  const samples = $("samples");
  const s = Math.min(side / samples.height, side / samples.width);
  ctx.drawImage(samples, pad, head, samples.width * s, samples.height * s);

  const x = pad * 2 + side;
  const w = W - x - pad;
  const rows = (H - head - pad) / 4;
  // canvases keep their aspect (letterboxed in their slot), so text is not stretched
  const fitIn = (c, y, slotH) => {
    const k = Math.min(w / c.width, slotH / c.height);
    ctx.drawImage(c, x, y, c.width * k, c.height * k);
  };
  fitIn($("chart-bars"), head, rows - 4);
  fitIn($("chart-heat"), head + rows, rows - 4);
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
