// The HTTP API (docs/protocol.md, README.md: the API): thin fetch wrappers that turn a 4xx body
// {detail, field} into an ApiError a person can read.

/** Where the server serves plotly.js (server/app.py); index.html loads it from the same path. */
export const PLOTLY_PATH = "/vendor/plotly.min.js";

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.name = "ApiError";
    this.status = status; // 0: the server could not be reached
    this.field = field || null;
  }

  get unreachable() {
    return this.status === 0;
  }

  /** A refusal because too many runs are queued or active (the server's queue is full). */
  get queueFull() {
    return this.status === 429 || this.status === 503
      || (this.status === 409 && /queue|too many|at most \d+ runs/i.test(this.message));
  }
}

// No token here: the teacher's browser holds an HttpOnly session cookie (server/auth.py), which
// fetch and websockets send by themselves; a token never sits in the page, a URL or a link.

/** One request; `body` is JSON, or {text, type} for a raw body (a CSV upload). */
export async function request(method, path, body) {
  const headers = { accept: "application/json" };
  const raw = body && typeof body.text === "string" && typeof body.type === "string";
  if (body !== undefined) headers["content-type"] = raw ? body.type : "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : raw ? body.text : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `server unreachable (${e.message})`);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    let field = null;
    try {
      const j = await res.json();
      detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail);
      field = j.field;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, detail, field);
  }
  const type = res.headers.get("content-type") || "";
  if (type.includes("application/json")) return res.json();
  if (type.includes("octet-stream")) return res.arrayBuffer();
  return res.text();
}

export const api = {
  health: () => request("GET", "/api/health"),
  options: () => request("GET", "/api/options"),
  runs: () => request("GET", "/api/runs"),
  run: (id) => request("GET", `/api/runs/${encodeURIComponent(id)}`),
  start: (body) => request("POST", "/api/runs", body),
  remove: (id) => request("DELETE", `/api/runs/${encodeURIComponent(id)}`),
  control: (id, body) => request("POST", `/api/runs/${encodeURIComponent(id)}/control`, body),
  /** Stop {runs: [ids]} | {group: gid} | {all: true} (server/api_runs.py stop_runs). */
  stopRuns: (body) => request("POST", "/api/runs/stop", body),
  estimateChange: (id, set) => request("GET", `/api/runs/${encodeURIComponent(id)}/estimate?set=${encodeURIComponent(JSON.stringify(set))}`),
  history: (id) => request("GET", `/api/runs/${encodeURIComponent(id)}/history`),
  replay: (id) => request("GET", `/api/runs/${encodeURIComponent(id)}/replay`),
  preview: (name) => request("GET", `/api/datasets/${encodeURIComponent(name)}/preview`),
  csvUrl: (id) => `/api/runs/${encodeURIComponent(id)}/history?format=csv`,
  compare: (body) => request("POST", "/api/compare", body),
  group: (gid) => request("GET", `/api/compare/${encodeURIComponent(gid)}`),
  extendGroup: (gid, variant) => request("POST", `/api/compare/${encodeURIComponent(gid)}/runs`, { variant }),
  controlGroup: (gid, action) => request("POST", `/api/compare/${encodeURIComponent(gid)}/control`, { action }),
};
