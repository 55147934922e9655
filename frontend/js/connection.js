// One run's websocket (docs/protocol.md) with automatic reconnection and a state a person can
// read: connecting → open → (reconnecting in Ns, attempt n) → unreachable, or closed once the run
// is over. Decoding is protocol.js; this file owns the socket and its timers.

import { decode, parseText, FRAME, REAL } from "./protocol.js";
import { backoffDelay } from "./series.js";

const FINAL = new Set(["done", "failed", "interrupted", "deleted"]);
const GIVE_UP_AFTER = 4; // failed attempts in a row (~8 s) before saying "server unreachable"; it still retries

export class RunSocket {
  /**
   * handlers: {hello(msg), real(decoded), frame(decoded), event(ev), status(msg), error(msg),
   * state({state, attempt, delay, reason})}
   */
  constructor(runId, handlers, token = null) {
    this.runId = runId;
    this.h = handlers;
    this.token = token;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.closed = false;
    this.final = false;
    this.gotHello = false;
    this.state = "idle";
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // no token in the URL: the teacher's session cookie goes with the upgrade
    return `${proto}//${location.host}/ws/runs/${encodeURIComponent(this.runId)}`;
  }

  setState(state, extra = {}) {
    this.state = state;
    if (this.h.state) this.h.state({ state, attempt: this.attempt, ...extra });
  }

  connect() {
    if (this.closed) return;
    this.setState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.gotHello = false;
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onclose = (e) => this.onClose(e);
    ws.onerror = () => {}; // onclose follows and decides
  }

  onMessage(data) {
    try {
      if (typeof data === "string") {
        const msg = parseText(data);
        if (msg.type === "hello") {
          this.gotHello = true;
          this.attempt = 0;
          this.setState("open");
          this.h.hello?.(msg);
        } else if (msg.type === "event") this.h.event?.(msg.event);
        else if (msg.type === "status") {
          if (FINAL.has(msg.status)) this.final = true;
          this.h.status?.(msg);
        } else if (msg.type === "error") this.h.error?.(msg);
        return;
      }
      const m = decode(data);
      if (m.type === REAL) this.h.real?.(m);
      else if (m.type === FRAME) this.h.frame?.(m);
    } catch (e) {
      this.h.error?.({ type: "error", message: `could not read a message: ${e.message}` });
    }
  }

  onClose(e) {
    this.ws = null;
    if (this.closed) return;
    if (e.code === 4404) {
      this.closed = true;
      this.setState("missing", { reason: e.reason || `no run ${this.runId}` });
      return;
    }
    if (this.final) {
      this.closed = true;
      this.setState("closed");
      return;
    }
    // "too far behind" (1013) reconnects at once; anything else backs off
    const delay = e.code === 1013 ? 0 : backoffDelay(this.attempt, Math.random());
    this.attempt += 1;
    const state = this.attempt > GIVE_UP_AFTER ? "unreachable" : "reconnecting";
    this.setState(state, { delay, reason: e.reason || (e.code === 1006 ? "connection lost" : `closed (${e.code})`) });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Send a control message (the body of POST /api/runs/{id}/control); false when not open. */
  send(body) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(body));
    return true;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "viewer left");
    this.ws = null;
  }
}
