"""The `collapse-lab` command: train, options, serve, watch (and sweep, when installed).

Flags of `train` are generated from the trainer's knob registry, so a new knob appears here, in
/api/options and in the dashboard at once. `collapse-lab train` never starts a server and never
imports FastAPI.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
import typing
from pathlib import Path
from typing import Any, NoReturn

from collapse_lab.server.protocol import FRAME_KEYS
from collapse_lab.server.settings import default_data_dir
from collapse_lab.server.sweep import register as add_sweep
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import knobs

log = logging.getLogger("collapse_lab")

class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_knob_flags(p: argparse.ArgumentParser, *, exclude: tuple[str, ...] = ()) -> None:
    """One flag per knob; values stay strings until the registry checks them (clear errors)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for k in knobs():
        if k["name"] in exclude:
            continue
        g = groups.setdefault(k["group"], p.add_argument_group(f"{k['group']} knobs"))
        default = k["default"]
        rng = (f" [{k['min']:g}, {k['max']:g}]" if "min" in k else
               f" {{{', '.join(k['choices'])}}}" if "choices" in k else "")
        help_ = f"{k['help']}{rng} (default: {default})".replace("%", "%%")
        if k["type"] == "bool":
            g.add_argument(flag(k["name"]), dest=k["name"], action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=help_)
        else:
            g.add_argument(flag(k["name"]), dest=k["name"], default=argparse.SUPPRESS,
                           metavar=k["type"].upper() if k["type"] != "choice" else "NAME",
                           help=help_)


def knob_values(ns: argparse.Namespace) -> dict[str, Any]:
    names = {k["name"] for k in knobs()}
    return {k: v for k, v in vars(ns).items() if k in names}


def config_from_args(ns: argparse.Namespace):
    from collapse_lab.trainer.registry import from_preset

    try:
        return from_preset(ns.preset, knob_values(ns))
    except ConfigError as e:
        fail(f"{flag(e.field) if e.field != 'preset' else '--preset'}: {e.message}")


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"collapse-lab: error: {message}", file=sys.stderr)
    raise SystemExit(code)


# ---------------------------------------------------------------------------- train
class Progress:
    """A one-line progress bar on a terminal's stderr; silent when stderr is not a tty."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = total, stream
        self.enabled = stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, tick: dict[str, Any], total: int) -> None:
        if not self.enabled:
            return
        self.total = total
        k = len(tick["occupancy"])
        metrics = (f"{tick['steps_per_sec']:6.0f} steps/s  covered {tick['modes_covered']:>2}/{k}  "
                   f"eff {tick['effective_modes']:5.2f}")
        if total == 0:  # steps 0: until stopped, so no bar and no eta
            line = f"\r{tick['step']:>8} steps  {metrics}  (Ctrl-C ends the run) "
        else:
            frac = min(tick["step"] / total, 1.0)
            bar = "█" * int(frac * 30) + "·" * (30 - int(frac * 30))
            el = time.perf_counter() - self.t0
            eta = el / frac - el if frac > 0 else 0.0
            line = f"\r{bar} {tick['step']:>6}/{total}  {metrics}  eta {eta:4.0f}s "
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def scalar_view(tick: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tick.items() if k not in FRAME_KEYS}


def print_table(tick: dict[str, Any], cfg, info: dict[str, Any]) -> None:
    k = len(tick["occupancy"])
    rows = [
        ("dataset / objective", f"{cfg.dataset} / {cfg.objective}"),
        ("steps", f"{tick['step']}"),
        ("modes covered", f"{tick['modes_covered']} / {k}   (occupancy ≥ 1/(4K))"),
        ("modes captured", f"{tick['modes_captured']} / {k}   (≥ 1 high-quality sample)"),
        ("high-quality samples", f"{100 * tick['hq_fraction']:.1f} %"),
        ("effective modes", f"{tick['effective_modes']:.2f}"),
        ("reverse KL", f"{tick['reverse_kl']:.3f}"),
        ("loss D / G", f"{tick['loss_d']:.4f} / {tick['loss_g']:.4f}"),
        ("wall time", f"{tick['time']:.1f} s on {info['device']}"),
    ]
    w = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"{name:<{w}}  {val}")
    occ = " ".join(f"{100 * o:4.1f}" for o in tick["occupancy"])
    print(f"{'occupancy %':<{w}}  {occ}")


def cmd_train(ns: argparse.Namespace) -> int:
    from collapse_lab.trainer.commands import Rejected
    from collapse_lab.trainer.families import load_checkpoint
    from collapse_lab.trainer.loop import Callbacks, Trainer, run

    data_dir = Path(ns.data_dir) if ns.data_dir else default_data_dir()
    trainer = Trainer(data_dir)
    ticks: list[dict[str, Any]] = []
    ended: list[tuple[str, str]] = []
    bar = Progress(0)

    def on_tick(t: dict[str, Any]) -> None:
        ticks.append(scalar_view(t))
        bar.update(t, trainer.runs["run"].cfg.steps)

    # nobody draws D's landscape here: ticks skip it (half their cost)
    cb = Callbacks(on_tick=on_tick, on_end=lambda status, why: ended.append((status, why)),
                   want_picture=lambda: False)
    try:
        if ns.resume:
            try:
                state = load_checkpoint(Path(ns.resume))
            except (OSError, KeyError, RuntimeError, ValueError) as e:
                fail(f"--resume: cannot read checkpoint {ns.resume}: {e}")
            trainer.add("run", state, cb)
            overrides = knob_values(ns)  # flags given with --resume change the restored run
            if overrides:
                rejected: list[Rejected] = []
                trainer.runs["run"].cb.on_event = lambda e: rejected.append(e) \
                    if isinstance(e, Rejected) else None
                trainer.command("run", {"set": overrides})
                if rejected:
                    fail(f"{flag(rejected[0].field)}: {rejected[0].message}")
        else:
            trainer.add("run", config_from_args(ns), cb)
    except ConfigError as e:
        fail(f"{flag(e.field)}: {e.message}")
    info = trainer.info("run")
    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True  # the first Ctrl-C ends the run cleanly; a second one aborts

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        run(trainer, should_stop=lambda: stop["asked"])
    finally:
        signal.signal(signal.SIGINT, old)
    bar.close()
    status, reason = ended[0]
    if status == "failed":
        fail(f"run diverged: {reason}", code=1)
    final = trainer.runs["run"]
    last = final.last
    assert last is not None and final.final is not None
    if ns.save:
        final.final.save(Path(ns.save))
    cfg = final.cfg
    if ns.json:
        out: dict[str, Any] = dict(config=cfg.to_dict(), info=info, final=scalar_view(last))
        if ns.series:
            out["series"] = ticks
        json.dump(out, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    else:
        print_table(last, cfg, info)
        if ns.save:
            print(f"checkpoint saved to {ns.save}")
    return 0


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------------- options
def cmd_options(ns: argparse.Namespace) -> int:
    from collapse_lab.trainer.registry import options

    opts = options()
    if ns.json:
        json.dump(opts, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print("families (--family NAME):")
    for f in opts["families"]:
        print(f"  {f['name']:<10} {f['label']}: {f['help']}")
    print("datasets:")
    for d in opts["datasets"]:
        print(f"  {d['name']:<10} {d['help']}")
    print("objectives:")
    for o in opts["objectives"]:
        print(f"  {o['name']:<10} {o['help']} ({o['source']})")
    print("remedies:")
    for r in opts["remedies"]:
        print(f"  {r['name']:<15} {r['help']} ({r['source']})")
    print("presets (collapse-lab train --preset NAME [overrides]):")
    for p in opts["presets"]:
        print(f"  {p['name']:<16} [{p['family']}] {p['help']}")
    for f in opts["families"]:
        print(f"knobs of family {f['name']} (live = may change mid-run):")
        print(f"  {'flag':<18} {'type':<7} {'default':<8} {'allowed':<22} live  help")
        for k in f["knobs"]:
            allowed = (f"[{k['min']:g}, {k['max']:g}]" if "min" in k else
                       ",".join(k["choices"]) if "choices" in k else "")
            if len(allowed) > 22:
                allowed = allowed[:21] + "…"
            d = "-" if k["default"] is None else str(k["default"])
            print(f"  {flag(k['name']):<18} {k['type']:<7} {d:<8} {allowed:<22} "
                  f"{'yes ' if k['live'] else 'no  '}  {k['help']}")
    return 0


# ---------------------------------------------------------------------------- serve
# a list setting is a repeatable flag named in the singular
_SINGULAR = {"allowed_hosts": "allowed-host", "allowed_origins": "allowed-origin"}


def setting_flag(name: str) -> str:
    """The `serve` flag of a server setting (server/settings.py)."""
    return "--" + _SINGULAR.get(name, name.replace("_", "-"))


def add_setting_flags(s: argparse.ArgumentParser) -> None:
    """One flag per server setting, generated from the settings model: its type, range and
    help are the model's, and pydantic checks the values (flags win over COLLAPSE_LAB_* env)."""
    from collapse_lab.server.settings import Settings

    for name, f in Settings.model_fields.items():
        ann = f.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        default = f.get_default(call_default_factory=True)
        shown = "none" if default is None else "[]" if default == [] else default
        help_ = (f"{f.description} (default: {shown}; env COLLAPSE_LAB_{name.upper()})"
                 .replace("%", "%%"))
        kw: dict[str, Any] = dict(dest=name, default=None, help=help_)
        if ann is bool:
            s.add_argument(setting_flag(name), action=argparse.BooleanOptionalAction, **kw)
        elif typing.get_origin(ann) is list:
            s.add_argument(setting_flag(name), action="append", metavar="NAME",
                           **dict(kw, help=help_ + " (repeat for more)"))
        elif typing.get_origin(ann) is typing.Literal:
            s.add_argument(setting_flag(name), choices=list(typing.get_args(ann)), **kw)
        else:
            base = args[0] if args else ann
            typ: type = int if base is int else float if base is float else str
            s.add_argument(setting_flag(name), type=typ, metavar=name.upper(), **kw)


def add_serve(sub) -> None:
    s = sub.add_parser("serve", help="start the dashboard server (prints its URL)")
    add_setting_flags(s)
    s.set_defaults(func=cmd_serve)


def serve_lines(settings, token: str | None) -> list[str]:
    """What `serve` prints: the dashboard's address(es), and with a token the teacher and viewer
    links for the machine's real addresses (never 0.0.0.0)."""
    from collapse_lab.server.links import base_urls, teacher_link

    urls = base_urls(settings.host, settings.port, settings.public_url,
                     https=settings.ssl_certfile is not None)
    lines = [f"Collapse Lab at {urls[0]}  (data: {settings.data_dir})"]
    if token:
        for u in urls:
            lines.append(f"teacher link (open it once; it signs this browser in as the teacher):"
                         f" {teacher_link(u, token)}")
        for u in urls:
            lines.append(f"viewer link (for the class; watch only): {u}")
    return lines


def cmd_serve(ns: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from collapse_lab.server.datadir import problem
    from collapse_lab.server.settings import Settings

    given = {k: getattr(ns, k) for k in Settings.model_fields if getattr(ns, k, None) is not None}
    if given.get("ray_address"):
        given["backend"] = "ray"
    try:
        settings = Settings(**given)
    except ValidationError as e:
        err = e.errors()[0]
        fail(f"{setting_flag(str(err['loc'][0]))}: {err['msg']}")
    if settings.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            fail("--backend ray: Ray is not installed; pip install 'collapse-lab[ray]'")
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        fail("--ssl-certfile and --ssl-keyfile: give both (the certificate and its key) or "
             "neither")
    for name in ("ssl_certfile", "ssl_keyfile"):
        f = getattr(settings, name)
        if f is not None and not Path(f).is_file():
            fail(f"{flag(name)}: no readable file {str(f)!r}")
    trouble = problem(Path(settings.data_dir), settings.db_path)
    if trouble:  # before the server's heavy imports: a quick, clear answer
        fail(trouble)
    from collapse_lab.server import logs
    from collapse_lab.server.app import create_app
    from collapse_lab.server.conns import ConnLimits, fd_budget, guarded

    _, conns, low = fd_budget()
    if low:
        print(f"collapse-lab: warning: {low}", file=sys.stderr, flush=True)
    limits = ConnLimits(max_per_address=min(settings.max_conns_per_address, conns),
                        max_total=conns, header_timeout=settings.header_timeout,
                        stall_timeout=settings.stall_timeout)
    app = create_app(settings)
    app.state.conn_limits = limits
    # a rotated token's new teacher link goes where the first one went: this terminal
    app.state.announce = lambda lines: print("\n".join(lines), flush=True)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on",
                            ws_per_message_deflate=False,  # see docs/operations.md
                            ws_max_size=1 << 20, log_level="warning" if not ns.verbose
                            else "debug", timeout_graceful_shutdown=10,
                            ssl_certfile=settings.ssl_certfile and str(settings.ssl_certfile),
                            ssl_keyfile=settings.ssl_keyfile and str(settings.ssl_keyfile),
                            backlog=min(2048, conns))
    config.load()
    config.http_protocol_class = guarded(config.http_protocol_class, limits)
    logs.install()  # after uvicorn.Config, which sets up uvicorn's loggers
    server = CleanExitServer(config)
    print("\n".join(serve_lines(settings, app.state.token)), flush=True)
    server.run()
    return 0


def _clean_exit_server():
    """uvicorn.Server that ends with exit code 0 after a SIGTERM or SIGINT it has handled.

    uvicorn re-raises a caught signal once it has shut down, so the process dies of it (exit
    143 for SIGTERM). A shutdown that stopped every worker and recorded every run is a clean
    exit, and says so with 0 (docs/operations.md); a second Ctrl-C still forces the exit."""
    import contextlib
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[override]
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            sigs = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def CleanExitServer(config):  # noqa: N802 - a class made on first use (uvicorn imported late)
    return _clean_exit_server()(config)


# ---------------------------------------------------------------------------- watch
def add_watch(sub) -> None:
    w = sub.add_parser("watch", help="follow a live run over the websocket")
    w.add_argument("url", help="the server, e.g. http://localhost:8000")
    w.add_argument("run_id", help="the run's id")
    w.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    w.add_argument("--json", action="store_true", help="one JSON object per frame")
    w.add_argument("--token", help="the teacher token (watching needs none)")
    w.set_defaults(func=cmd_watch)


def cmd_watch(ns: argparse.Namespace) -> int:
    from collapse_lab.server.client import Client, ServerError

    if ns.frames is not None and ns.frames < 1:
        fail("--frames: expected a positive integer")
    client = Client(ns.url, token=ns.token)
    try:
        stream = client.stream(ns.run_id)
    except ServerError as e:
        fail(f"{ns.run_id}: {e.detail}")
    except Exception as e:  # noqa: BLE001 - refused, unreachable, not a websocket
        fail(f"cannot connect to {client.ws_url(ns.run_id)}: {e}")
    with stream:
        if not ns.json:
            h = stream.hello
            print(f"run {ns.run_id}: {h['dataset']['name'] if h.get('dataset') else '?'}, "
                  f"{stream.status}", flush=True)
        for f in stream.frames(ns.frames):
            if ns.json:
                out = dict(f.summary(), **stream.in_force(), run_status=stream.status)
                print(json.dumps(out, default=_json_default), flush=True)
            else:
                s = f.scalars
                k = len(f.occupancy)
                print(f"step {f.step:>7}  v{f.config_version}  {stream.config.get('objective')}"
                      f"  covered {s.get('modes_covered')}/{k}  eff "
                      f"{(s.get('effective_modes') or 0):5.2f}  loss D/G "
                      f"{_num(s.get('loss_d'))}/{_num(s.get('loss_g'))}", flush=True)
        if not ns.json and stream.status in ("done", "failed", "interrupted"):
            print(f"run {stream.status}: {stream.reason or ''}")
    return 0


def _num(v: Any) -> str:
    return "nan" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------------------- main
def build_parser() -> Parser:
    p = Parser(prog="collapse-lab", description="Watch GAN mode collapse happen, and steer it.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    t = sub.add_parser("train", help="train one run headless and print its final metrics")
    t.add_argument("--preset", help="start from a named configuration (see `options`)")
    t.add_argument("--data-dir", help=f"where caches live (default: {default_data_dir()})")
    t.add_argument("--json", action="store_true", help="final metrics as one JSON object")
    t.add_argument("--series", action="store_true", help="with --json: include every tick")
    t.add_argument("--save", metavar="PATH", help="write a checkpoint at the end")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")
    add_knob_flags(t)
    t.set_defaults(func=cmd_train)

    o = sub.add_parser("options", help="every dataset, objective, remedy, preset and knob")
    o.add_argument("--json", action="store_true", help="the registry as JSON")
    o.set_defaults(func=cmd_options)

    add_serve(sub)
    add_watch(sub)
    add_sweep(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(ns, "func", None):
        parser.print_help()
        return 2
    try:
        return int(ns.func(ns) or 0)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
