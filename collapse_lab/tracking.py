"""`collapse_lab.track`: any PyTorch training loop, live in the Collapse Lab dashboard, steered
by it (docs/tracking.md).

    run = collapse_lab.track("http://host:8000", token=..., name="my-gan",
                             modes=centres,            # or classify=fn, classes=10 / real=batch
                             knobs={"lr_g": (2e-4, 1e-6, 1e-2)})
    for step in range(n):
        ...
        run.log(step, samples=fake, d_loss=d, g_loss=g)   # never blocks, never raises
        lr = run.knobs["lr_g"]                             # changed live from the page
    run.finish()                                           # or: with collapse_lab.track(...)

`log()` only merges what it is given into the pending tick (at most `rate` ticks a second leave
the process; the scalars of the logs in between are averaged, the latest samples kept) and hands
it to a background thread over a bounded queue that drops the oldest tick when full. The thread
measures nothing: it converts the samples, runs `classify`, and sends; the server measures
collapse. When the server is slow or gone the thread warns once, keeps the newest ticks, and
reconnects, attaching to the same run. Given a folder instead of a URL, the same ticks are measured
in the thread and written to a data dir that `collapse-lab serve --data-dir FOLDER` shows.

The token travels in the `Authorization` header only; it is never part of a URL or a message
this module logs.
"""

from __future__ import annotations

import atexit
import logging
import math
import secrets
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

log = logging.getLogger("collapse_lab.track")

MAX_BYTES = 900_000  # of one message's arrays (the server takes 1 MiB)
CONFIDENT = 0.9  # a classifier's top probability that makes a sample high quality


class TrackError(RuntimeError):
    """`track()` could not start the run: the server refused it or could not be reached."""


# ---------------------------------------------------------------------------- inputs
def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (any device)
        x = x.detach()
        if getattr(x, "is_floating_point", lambda: False)():
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _knob_wire(name: str, v: Any) -> dict[str, Any]:
    """A declared knob in its wire form: a value (its type is the knob's), a tuple (value, min,
    max) or (value, [choices]), or a dict {value, min, max, choices, help}."""
    d: dict[str, Any]
    value: Any
    if isinstance(v, Mapping):
        d = dict(v)
        value = d.get("value")
    elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], list | tuple):
        d, value = dict(choices=list(v[1])), v[0]
    elif isinstance(v, tuple) and len(v) == 3:
        d, value = dict(min=v[1], max=v[2]), v[0]
    else:
        d, value = {}, v
    if hasattr(value, "item"):
        value = value.item()
    kind: str
    if "choices" in d:
        kind = "choice"
    elif isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int) and not isinstance(d.get("min"), float) \
            and not isinstance(d.get("max"), float):
        kind = "int"
    elif isinstance(value, int | float):
        kind, value = "float", float(value)
    else:
        raise ValueError(f"knob {name!r}: a number, a bool, (value, min, max), "
                         f"(value, [choices]) or a dict, got {value!r}")
    return dict(d, type=d.get("type", kind), value=value)


def _images(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, list[int] | None]:
    """(N, …) samples as rows, and the image shape when they are images: (N, H, W) or
    (N, C, H, W) with C in 1–4 (colour is drawn as grey), rescaled from [lo, hi] to [-1, 1]."""
    if x.ndim == 4 and 1 <= x.shape[1] <= 4:
        x = x.mean(1)
    if x.ndim == 3:
        shape = [int(x.shape[1]), int(x.shape[2])]
        x = (x.reshape(x.shape[0], -1) - lo) / (hi - lo) * 2 - 1
        return x, shape
    if x.ndim == 1:
        x = x[:, None]
    return x.reshape(x.shape[0], -1), None


class _Pending:
    """The logs merged into one tick: the last step, mean scalars, the latest samples."""

    __slots__ = ("step", "time", "sums", "counts", "samples")

    def __init__(self) -> None:
        self.step = 0
        self.time = 0.0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.samples: Any = None

    def add(self, step: int, t: float, scalars: dict[str, Any]) -> None:
        self.step, self.time = step, t
        for k, v in scalars.items():
            try:
                f = float(v.item() if hasattr(v, "item") else v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                self.sums[k] = self.sums.get(k, 0.0) + f
                self.counts[k] = self.counts.get(k, 0) + 1
            else:  # a NaN loss is news: it stays NaN
                self.sums[k], self.counts[k] = math.nan, 1

    def scalars(self) -> dict[str, float | None]:
        out = {}
        for k, s in self.sums.items():
            v = s / self.counts[k]
            out[k] = v if math.isfinite(v) else None
        return out


class Knobs(Mapping[str, Any]):
    """The current knob values (read-only here; the dashboard changes them)."""

    def __init__(self, values: dict[str, Any]):
        self._values = dict(values)
        self.version = 0

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Knobs({self._values!r})"

    def _replace(self, values: dict[str, Any], version: int) -> None:
        self._values = {**self._values, **values}  # one assignment: readers see old or new
        self.version = version


# ---------------------------------------------------------------------------- the run
class Run:
    """A tracked run. `log()` never blocks and never raises; `knobs` holds the current values;
    `stop_requested` turns true when Stop is pressed in the dashboard; `finish()` ends it (a
    `with` block finishes it as failed when an exception leaves it)."""

    def __init__(self, sink: _Sink, spec: _Spec, rate: float, queue: int):
        self._sink = sink
        self._spec = spec
        self.id: str = sink.run_id
        self.url: str | None = getattr(sink, "page", None)
        self.knobs = Knobs(sink.knobs)
        self.stop_requested = False
        self._gap = 1.0 / rate
        self._t0 = time.monotonic()
        self._next_send = 0.0
        self._next_samples = 0.0
        self._pending: _Pending | None = None
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque(maxlen=queue)
        self._wake = threading.Event()
        self._finished = False
        self._warned: set[str] = set()
        self.dropped = 0  # ticks dropped because the queue was full
        self.sent = 0
        sink.attach_run(self)
        self._thread = threading.Thread(target=self._work, name=f"collapse-lab-{self.id}",
                                        daemon=True)
        self._thread.start()
        _ACTIVE.add(self)

    def __repr__(self) -> str:
        return f"<collapse_lab.Run {self.id} {self._spec.meta.get('name')!r}>"

    # ------------------------------------------------------------------ the loop's side
    def log(self, step: int, samples: Any = None, **scalars: Any) -> None:
        """Record step `step`: generated `samples` (a tensor or array: points, vectors or
        images) and named scalars (losses, ...). Costs microseconds; never raises."""
        try:
            if self._finished:
                return
            now = time.monotonic()
            with self._lock:
                p = self._pending
                if p is None:
                    p = self._pending = _Pending()
                p.add(int(step), now - self._t0, scalars)
                if samples is not None and now >= self._next_samples:
                    p.samples = samples.detach() if hasattr(samples, "detach") else samples
                    if isinstance(p.samples, np.ndarray):
                        p.samples = p.samples.copy()  # the loop may reuse its buffer
                    elif str(getattr(p.samples, "device", "")) == "cpu":
                        p.samples = p.samples.clone()
                    self._next_samples = now + self._gap
                if now >= self._next_send:
                    self._enqueue(p)
                    self._pending = None
                    self._next_send = now + self._gap
        except Exception as e:  # noqa: BLE001 - logging never breaks the training loop
            self._warn("log", f"collapse_lab: log() ignored a bad call ({e}); training goes on")

    def wants_samples(self) -> bool:
        """Whether a `log()` now would keep its samples (about `rate` times a second): a loop
        whose samples cost something to make (a generator's forward pass) makes them only then."""
        return not self._finished and time.monotonic() >= self._next_samples

    def _enqueue(self, p: _Pending) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._warn("full", "collapse_lab: the server is not keeping up; dropping the oldest "
                       "ticks (training goes on)")
        self._queue.append(p)
        self._wake.set()

    def finish(self, status: str = "done", reason: str | None = None,
               timeout: float = 30.0) -> None:
        """End the run: what is queued is sent (up to `timeout` seconds), then the run is
        `done` (or `failed`, with `reason`)."""
        if self._finished:
            return
        with self._lock:
            if self._pending is not None:
                self._enqueue(self._pending)
                self._pending = None
            self._final = (status if status in ("done", "failed") else "done", reason)
            self._finished = True
        self._wake.set()
        self._thread.join(timeout)
        _ACTIVE.discard(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.finish()
        else:
            self.finish("failed", f"{kind.__name__}: {exc}"[:500])

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------------ the thread
    def _work(self) -> None:
        sink = self._sink
        while True:
            self._wake.wait(sink.poll)
            self._wake.clear()
            sink.poll_messages(self)
            while self._queue:
                p = self._queue[0]
                try:
                    body = self._spec.tick(p)
                except Exception as e:  # noqa: BLE001 - a bad tick is dropped, said once
                    self._queue.popleft()
                    self._warn("tick", f"collapse_lab: a tick could not be prepared ({e}); "
                               "dropped")
                    continue
                if not sink.send(self, body):
                    break  # not sent: kept, tried again after a reconnect
                self._queue.popleft()
                self.sent += 1
            if self._finished and not self._queue:
                status, reason = self._final
                sink.finish(self, status, reason)
                return
            if self._finished and sink.gone:
                sink.finish(self, *self._final)
                return


_ACTIVE: set[Run] = set()


def _finish_all_failed(kind: Any, exc: Any, tb: Any) -> None:
    for r in list(_ACTIVE):
        r.finish("failed", f"{kind.__name__}: {exc}"[:500], timeout=5)
    _previous_hook(kind, exc, tb)


def _finish_all_at_exit() -> None:
    for r in list(_ACTIVE):
        r.finish("done", "the process ended without run.finish()", timeout=5)


_previous_hook = sys.excepthook
sys.excepthook = _finish_all_failed
atexit.register(_finish_all_at_exit)


# ---------------------------------------------------------------------------- what is sent
class _Spec:
    """The run's start message, and how a tick becomes a log message."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 classify: Callable[[Any], Any] | None, image_range: tuple[float, float],
                 max_samples: int):
        self.meta, self.arrays = meta, arrays
        self.classify = classify
        self.image_range = image_range
        self.max_samples = max_samples

    def tick(self, p: _Pending) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = dict(type="log", step=p.step, time=round(p.time, 4),
                                    scalars=p.scalars())
        arrays: dict[str, np.ndarray] = {}
        if p.samples is not None:
            raw = p.samples[: self.max_samples]
            x, shape = _images(_numpy(raw).astype(np.float32), *self.image_range)
            rows = max(1, min(len(x), MAX_BYTES // (4 * max(1, x.shape[1]) + 5)))
            x = np.ascontiguousarray(x[:rows], dtype=np.float32)
            arrays["samples"] = x
            if shape is not None:
                meta["image_shape"] = shape
            if self.classify is not None:
                labels, confident = self._classify(raw[:rows])
                arrays["labels"], arrays["confident"] = labels, confident
        return meta, arrays

    def _classify(self, samples: Any) -> tuple[np.ndarray, np.ndarray]:
        assert self.classify is not None
        try:
            import torch

            with torch.no_grad():
                out = _numpy(self.classify(samples))
        except ImportError:
            out = _numpy(self.classify(samples))
        if out.ndim == 2:  # scores: logits or probabilities
            if out.min() >= 0 and np.allclose(out.sum(1), 1, atol=1e-3):
                prob = out
            else:
                e = np.exp(out - out.max(1, keepdims=True))
                prob = e / e.sum(1, keepdims=True)
            return prob.argmax(1).astype(np.int32), (prob.max(1) >= CONFIDENT).astype(np.uint8)
        labels = out.reshape(-1).astype(np.int32)
        return labels, np.ones(len(labels), np.uint8)


# ---------------------------------------------------------------------------- sinks
class _Sink:
    run_id: str
    knobs: dict[str, Any]
    poll: float = 0.05
    gone = False  # the destination will take nothing more

    def attach_run(self, run: Run) -> None: ...

    def poll_messages(self, run: Run) -> None: ...

    def send(self, run: Run, body: tuple[dict[str, Any], dict[str, np.ndarray]]) -> bool:
        raise NotImplementedError

    def finish(self, run: Run, status: str, reason: str | None) -> None:
        raise NotImplementedError


def _ws_url(url: str) -> tuple[str, str]:
    """(the websocket address of /ws/track, the page's address) of a server URL."""
    parts = urlsplit(url)
    if parts.query and "token" in parts.query.lower():
        raise ValueError("pass the token as track(..., token=...): a token in a URL ends up in "
                         "logs and histories")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"expected http://HOST:PORT (a Collapse Lab server) or a folder, got "
                         f"{url!r}")
    base = parts.path.rstrip("/")
    page = urlunsplit(("https" if scheme == "wss" else "http", parts.netloc, base + "/", "", ""))
    return urlunsplit((scheme, parts.netloc, base + "/ws/track", "", "")), page


class _Remote(_Sink):
    """A Collapse Lab server, over its tracking websocket."""

    def __init__(self, url: str, token: str | None, spec: _Spec, timeout: float):
        from collapse_lab.server.tracked import pack

        self.url, self.page_base = _ws_url(url)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.spec, self.timeout, self.pack = spec, timeout, pack
        self.ws: Any = None
        self.retry_at = 0.0
        self.backoff = 0.5
        self.run: Run | None = None
        self.knobs: dict[str, Any] = {}
        started = self._connect(dict(spec.meta, type="start"), first=True)
        self.run_id = started["run_id"]
        self.knobs = started.get("knobs", {})
        self.version = started.get("version", 0)
        self.page = f"{self.page_base}#run={self.run_id}"

    def _connect(self, meta: dict[str, Any], first: bool = False) -> dict[str, Any]:
        import json

        from websockets.sync.client import connect

        args: dict[str, Any] = dict(additional_headers=self.headers, open_timeout=self.timeout,
                                    close_timeout=2, max_size=1 << 20, compression=None)
        try:
            try:  # a connection that outlives a `with` block: `legacy` where websockets has it
                ws = connect(self.url, legacy=True, **args)
            except TypeError:
                ws = connect(self.url, **args)
        except Exception as e:  # noqa: BLE001 - said in the user's words
            raise TrackError(f"cannot reach the Collapse Lab server at {self.url}: "
                             f"{type(e).__name__}: {e}") from None
        try:
            ws.send(self.pack(meta, self.spec.arrays))
            reply = json.loads(ws.recv(timeout=max(self.timeout, 60)))
        except Exception as e:  # noqa: BLE001
            ws.close()
            said = getattr(getattr(e, "rcvd", None), "reason", "")
            if said:  # closed with a reason: the server's refusal, in its words
                raise TrackError(f"the server refused the run: {said}") from None
            raise TrackError(f"the server at {self.url} closed the connection while starting "
                             f"the run ({type(e).__name__}: {e})") from None
        if reply.get("type") == "error":
            ws.close()
            raise TrackError(f"the server refused the run: {reply.get('message')}")
        if reply.get("type") != "started":
            ws.close()
            raise TrackError(f"unexpected reply from the server: {str(reply)[:200]}")
        self.ws = ws
        return reply

    def _reconnect(self, run: Run) -> bool:
        if self.gone:
            return False
        now = time.monotonic()
        if now < self.retry_at:
            return False
        try:
            reply = self._connect(dict(self.spec.meta, type="attach", run_id=self.run_id))
        except TrackError as e:
            self.retry_at = now + self.backoff
            self.backoff = min(self.backoff * 2, 5.0)
            if "refused the run" in str(e):
                self.gone = True
                run._warn("refused", f"collapse_lab: {e}; the run's ticks are no longer sent")
            return False
        self.backoff = 0.5
        self._apply(run, reply)
        if reply.get("status") == "stopping":
            run.stop_requested = True
        log.info("collapse_lab: reconnected to run %s", self.run_id)
        return True

    def _lost(self, run: Run, e: Exception) -> None:
        code = getattr(getattr(e, "rcvd", None), "code", None)
        if code in (4400, 4403, 4404, 4409):  # refused, deleted, or written by another process
            self.gone = True
            run._warn("closed", f"collapse_lab: the server closed the run's connection "
                      f"({getattr(e.rcvd, 'reason', '') or code}); its ticks are no longer "  # type: ignore[attr-defined]
                      "sent")
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001
                pass
        self.ws = None
        self.retry_at = time.monotonic() + self.backoff
        if not self.gone:
            run._warn("lost", f"collapse_lab: lost the server at {self.url} "
                      f"({type(e).__name__}); training goes on, ticks are kept and sent when it "
                      "is back")

    def _apply(self, run: Run, msg: dict[str, Any]) -> None:
        values = msg.get("knobs") if msg.get("type") == "started" else msg.get("values")
        if isinstance(values, dict):
            run.knobs._replace(values, int(msg.get("version", run.knobs.version)))

    def _handle(self, run: Run, text: Any) -> None:
        import json

        try:
            msg = json.loads(text)
        except (TypeError, ValueError):
            return
        kind = msg.get("type")
        if kind == "knobs":
            self._apply(run, msg)
        elif kind == "stop":
            run.stop_requested = True
        elif kind == "deleted":
            self.gone = True
            run._warn("deleted", "collapse_lab: the run was deleted on the server; its ticks "
                      "are no longer sent")
        elif kind == "error":
            if msg.get("fatal"):
                self.gone = True
            run._warn(f"error-{msg.get('fatal')}", f"collapse_lab: the server says: "
                      f"{msg.get('message')}")

    def poll_messages(self, run: Run) -> None:
        if self.ws is None and not self._reconnect(run):
            return
        try:
            while True:
                self._handle(run, self.ws.recv(timeout=0))
        except TimeoutError:
            return
        except Exception as e:  # noqa: BLE001 - closed: reconnect later
            self._lost(run, e)

    def send(self, run: Run, body: tuple[dict[str, Any], dict[str, np.ndarray]]) -> bool:
        if self.gone:
            return True  # nowhere to send: dropped
        if self.ws is None and not self._reconnect(run):
            return False
        try:
            self.ws.send(self.pack(*body))
            return True
        except Exception as e:  # noqa: BLE001
            self._lost(run, e)
            return False

    def finish(self, run: Run, status: str, reason: str | None) -> None:
        if self.gone:
            return
        for _ in range(3):
            if self.ws is None and not self._reconnect(run):
                time.sleep(self.backoff)
                continue
            try:
                self.ws.send(self.pack(dict(type="finish", status=status, reason=reason)))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    msg = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
                    if '"finished"' in str(msg):
                        break
                self.ws.close()
                return
            except Exception as e:  # noqa: BLE001
                self._lost(run, e)


class _Local(_Sink):
    """A data folder: the run measured in this process and written as the server would, for
    `collapse-lab serve --data-dir FOLDER`."""

    poll = 0.5

    def __init__(self, folder: str | Path, spec: _Spec, snapshot_every: int = 2):
        from collapse_lab.server.store import Store
        from collapse_lab.server.tracked import Measure, Series, parse_knobs

        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.folder / "runs.sqlite3")
        self.spec = spec
        measure = Measure.from_start(spec.meta, spec.arrays)
        specs = parse_knobs(spec.meta.get("knobs"))
        self.series = Series(measure)
        self.snapshot_every = snapshot_every
        self.sampled = 0
        self.run_id = secrets.token_hex(5)
        self.knobs = {k: s.value for k, s in specs.items()}
        self.page = None
        now = time.time()
        self.record: dict[str, Any] = dict(
            id=self.run_id, created=now, status="running", reason="tracked into a folder",
            config=dict(family="tracked", name=measure.name, modes=measure.kind, steps=0,
                        knobs=self.knobs, knob_specs={k: s.describe() for k, s in specs.items()}),
            label=measure.name, owner=None, config_version=0, step=0,
            provenance=dict(tracked=True, modes=measure.kind, folder=True), hello=None,
            started=now, ended=None, last=None)
        self._picture()
        self.store.save_run(self.record)

    def _picture(self) -> None:
        m = self.series.measure
        if m.ready and self.record["hello"] is None:
            self.record["hello"] = dict(dataset=m.describe(), value_kind="probability")
            self.store.save_run(self.record)
            self.store.save_real(self.run_id, m.real_message())

    def send(self, run: Run, body: tuple[dict[str, Any], dict[str, np.ndarray]]) -> bool:
        from collapse_lab.trainer.knobs import ConfigError

        meta, arrays = body
        try:
            tick = self.series.tick(meta, arrays, 0)
        except ConfigError as e:
            run._warn("tick", f"collapse_lab: a tick was refused ({e}); dropped")
            return True
        self._picture()
        self.store.add_tick(self.run_id, tick)
        self.record.update(step=tick["step"], last=tick)
        if "samples" in arrays:
            self.sampled += 1
            if self.sampled % self.snapshot_every == 1 or self.snapshot_every == 1:
                frame = self.series.frame(tick)
                if frame is not None:
                    self.store.add_snapshot(self.run_id, tick["step"], frame)
            if self.sampled % 50 == 1:
                self.store.save_run(self.record)
        return True

    def finish(self, run: Run, status: str, reason: str | None) -> None:
        last = self.record.get("last")
        if last is not None:
            frame = self.series.frame(last, "done")
            if frame is not None:
                self.store.add_snapshot(self.run_id, last["step"], frame)
        self.record.update(status=status, reason=reason or (
            "the loop finished" if status == "done" else "the loop failed"), ended=time.time())
        self.store.save_run(self.record)
        self.store.close()


# ---------------------------------------------------------------------------- track()
def track(target: str | Path, token: str | None = None, name: str | None = None, *,
          modes: Any = None, classify: Callable[[Any], Any] | None = None,
          classes: int | list[str] | None = None, real: Any = None,
          knobs: Mapping[str, Any] | None = None, mode_std: float | None = None,
          bins: int | None = None, image_range: tuple[float, float] = (-1.0, 1.0),
          max_samples: int = 1024, rate: float = 10.0, queue: int = 256,
          timeout: float = 10.0) -> Run:
    """Start a tracked run on a Collapse Lab server (`http://host:port`) or in a data folder.

    Collapse is measured by one of: `modes` (known mode centres, K × D; `mode_std`, their
    spread, sets what counts as a hit: 3 × mode_std, else a quarter of the nearest two centres'
    distance), `classify` (a callable samples → class ids or scores, with `classes` the number
    of classes or their names; a sample whose top probability is ≥ 0.9 counts as high quality),
    or `real` (a batch of real samples: k-means bins fit once on it, `bins` of them; NDB and
    precision/recall besides). `knobs` are the values the dashboard may change: a number or
    bool, `(value, min, max)`, `(value, [choices])` or `{"value", "min", "max", "choices",
    "help"}`. At most `rate` ticks a second are sent (logs in between are merged), at most
    `queue` wait (the oldest are dropped), at most `max_samples` samples each. Raises
    TrackError when the server refuses the run (e.g. no token where one is needed) or cannot
    be reached, ValueError for a bad argument.
    """
    given = [k for k, v in (("modes", modes), ("classify", classify), ("real", real))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of modes=, classify=, real= (got {', '.join(given)})")
    if not 0 < rate <= 100:
        raise ValueError("rate: ticks a second, in (0, 100]")
    if not 1 <= queue <= 100_000 or not 1 <= max_samples <= 4096:
        raise ValueError("queue: 1–100000 ticks; max_samples: 1–4096")
    lo, hi = (float(v) for v in image_range)
    if not hi > lo:
        raise ValueError("image_range: (low, high) with high > low")
    meta: dict[str, Any] = dict(name=name or "tracked run", protocol=1, client=dict(
        python=sys.version.split()[0], host=_host()))
    arrays: dict[str, np.ndarray] = {}
    if modes is not None:
        c = _numpy(modes).astype(np.float32)
        c, shape = _images(c, lo, hi) if c.ndim > 2 else (c.reshape(len(c), -1), None)
        meta.update(modes="centres", image_shape=shape)
        arrays["centres"] = np.ascontiguousarray(c)
        if mode_std is not None:
            meta["mode_std"] = float(mode_std)
    elif classify is not None:
        if not callable(classify):
            raise ValueError("classify: a callable samples → class ids (or scores)")
        if classes is None:
            raise ValueError("classify= needs classes=: the number of classes, or their names")
        names = list(classes) if isinstance(classes, list | tuple) else None
        meta.update(modes="classes", num_classes=len(names) if names else int(classes),  # type: ignore[arg-type]
                    mode_names=[str(s) for s in names] if names else None)
    elif real is not None:
        r, shape = _images(_numpy(real).astype(np.float32), lo, hi)
        rows = min(len(r), 4096, MAX_BYTES // (4 * max(1, r.shape[1])))
        if rows < len(r):
            pick = np.random.default_rng(0).choice(len(r), rows, replace=False)
            r = r[np.sort(pick)]
        meta.update(modes="real", image_shape=shape)
        arrays["real"] = np.ascontiguousarray(r, dtype=np.float32)
        if bins is not None:
            meta["bins"] = int(bins)
    else:
        meta["modes"] = "none"
    meta["knobs"] = {str(k): _knob_wire(str(k), v) for k, v in (knobs or {}).items()}
    from collapse_lab.server.tracked import parse_knobs
    from collapse_lab.trainer.knobs import ConfigError

    try:
        parse_knobs(meta["knobs"])  # the server's own rules, said before anything is sent
    except ConfigError as e:
        raise ValueError(f"knobs: {e}") from None
    spec = _Spec(meta, arrays, classify, (lo, hi), max_samples)
    target = str(target)
    if "://" in target:
        sink: _Sink = _Remote(target, token, spec, timeout)
    else:
        sink = _Local(target, spec)
    return Run(sink, spec, rate, queue)


def _host() -> str:
    import socket

    try:
        return socket.gethostname()[:100]
    except OSError:
        return "?"
