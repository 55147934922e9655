"""Server settings: one pydantic-settings model, read from COLLAPSE_LAB_* env vars and CLI flags.

Nothing here is read at import time: `Settings()` is built by `collapse-lab serve` (or a test)
and handed to `create_app(settings)`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """$COLLAPSE_LAB_DATA_DIR, else the user's XDG data directory (~/.local/share/collapse-lab)."""
    env = os.environ.get("COLLAPSE_LAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "collapse-lab"


def _default_worker_threads() -> int:
    # on a small CPU one thread per worker leaves a core to the server and the browser
    return 1 if (os.cpu_count() or 1) <= 4 else 0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLAPSE_LAB_", extra="ignore")

    host: str = Field("127.0.0.1", description="interface to listen on", max_length=255)
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port)")
    data_dir: Path = Field(default_factory=default_data_dir,
                           description="SQLite store, checkpoints and dataset caches")
    max_workers: int = Field(2, ge=1, le=64,
                             description="runs training at once; further runs wait as queued")
    max_runs: int = Field(500, ge=1, le=100_000, description="runs kept in the store")
    frame_rate: float = Field(10.0, gt=0, le=60, description="live frames per second per run")
    worker_threads: int = Field(default_factory=_default_worker_threads, ge=0, le=256,
                                description="torch threads per worker; 0 = torch's default")
    token: str | None = Field(None, min_length=8, max_length=200,
                              description="teacher token; when set only its holder may start, "
                              "control or delete runs")
    allowed_origins: list[str] = Field(default_factory=list, max_length=100,
                                       description="extra Origins allowed to open websockets")
    allowed_hosts: list[str] = Field(default_factory=list, max_length=100,
                                     description="extra names (or addresses) this server is "
                                     "reached by, e.g. behind a proxy or port mapping; "
                                     "'.example.org' allows its subdomains, '*' any Host")
    max_body: int = Field(1 << 20, ge=1024, le=1 << 30,
                          description="bytes of a request body that is not JSON")
    max_json_body: int = Field(64 << 10, ge=1024, le=16 << 20,
                               description="bytes of a JSON request body (configs, controls)")
    body_timeout: float = Field(30.0, gt=0, le=3600,
                                description="seconds a request body may take to arrive")
    max_queued: int = Field(100, ge=1, le=100_000,
                            description="runs waiting for a worker; past it starting a run is "
                            "429")
    snapshot_every: int = Field(2, ge=1, le=10_000,
                                description="ticks between sample snapshots kept for replay")
    checkpoint_every: int = Field(50, ge=1, le=100_000,
                                  description="ticks between checkpoints (resume after a crash)")
    max_snapshots: int = Field(400, ge=2, le=100_000,
                               description="snapshots kept per run; older ones are thinned out")
    max_ticks: int = Field(20_000, ge=100, le=10_000_000,
                           description="ticks stored per run; past it the older half is thinned "
                           "(every other one dropped), the newest half kept whole")
    viewer_queue: int = Field(256, ge=8, le=100_000,
                              description="text messages queued per viewer before it is dropped")
    batch_groups: bool = Field(True, description="train the runs of a compare group that can "
                               "share one stacked step in one worker "
                               "(trainer/families/gan/engine.py)")
    pack: bool = Field(True, description="a queued run joins a live worker whose runs it can "
                       "share a stacked step with, instead of waiting for a free worker")
    pack_limit: int = Field(32, ge=1, le=1024, description="runs one worker trains at most")
    backend: Literal["local", "ray"] = Field("local", description="where workers run: local "
                                             "processes, or Ray actors (the `ray` extra)")
    ray_address: str | None = Field(None, max_length=255, description="the Ray cluster to use "
                                    "(e.g. ray://head:10001 or head:6379); none = a local Ray")
    ray_cpus_per_worker: float = Field(1.0, gt=0, le=256, description="CPUs a worker actor asks "
                                       "Ray for")
    ray_gpus_per_worker: float = Field(0.25, ge=0, le=8, description="share of a GPU a worker "
                                       "actor asks for when its runs use CUDA (several share one)")
    public_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s?#]+$",
                                   description="the address students open, where the machine's "
                                   "own addresses are not it (NAT, a container); printed links "
                                   "and the page's QR code use it")
    max_class: int = Field(2000, ge=1, le=100_000,
                           description="pages connected to the class channel at once")
    students_may_run: bool = Field(False, description="viewers may start and steer runs of "
                                   "their own from the start (the teacher can switch it live)")
    student_cap: int = Field(1, ge=1, le=10, description="active runs per student")
    student_runs: int = Field(32, ge=1, le=10_000,
                              description="active student runs on the server at once, all "
                              "students together; past it a student's start is refused")
    sessions_per_address: int = Field(10, ge=1, le=100_000,
                                      description="new student sessions one network address "
                                      "gets an hour (loopback not counted); the caps count the "
                                      "sessions of one address as one person")
    runs_per_student: int = Field(20, ge=1, le=10_000,
                                  description="runs kept per student; past it their own oldest "
                                  "finished runs are deleted")
    upload_files: int = Field(20, ge=1, le=100_000,
                              description="uploads kept per owner; past it their own oldest "
                              "go")
    upload_bytes: int = Field(20 << 20, ge=1 << 20, le=1 << 40,
                              description="bytes of uploads kept per owner; past it their own "
                              "oldest go")
    upload_total_bytes: int = Field(512 << 20, ge=1 << 20, le=1 << 44,
                                    description="bytes of uploads on the server, all owners; "
                                    "past it an upload is refused (413)")
    ssl_certfile: Path | None = Field(None, description="serve HTTPS with this certificate "
                                      "(PEM), with ssl_keyfile")
    ssl_keyfile: Path | None = Field(None, description="the certificate's private key (PEM)")
    stop_timeout: float = Field(5.0, ge=0.1, le=120,
                                description="seconds a worker gets to stop before terminate/kill")
    run_memory_mb: int = Field(3072, ge=256, le=1 << 20,
                               description="estimated memory one run may need (MB); a run or "
                               "a change past it is refused with 422 naming the knob")
    run_step_seconds: float = Field(10.0, gt=0, le=86_400,
                                    description="estimated seconds one training step of a run "
                                    "may take; a run or change past it is refused with 422")
    worker_memory_mb: int = Field(0, ge=0, le=1 << 22,
                                  description="address-space limit of a worker process (MB); "
                                  "0 = half the machine's memory; not applied to CUDA workers")
    max_conns_per_address: int = Field(128, ge=4, le=100_000,
                                       description="open connections (HTTP and websockets) "
                                       "from one IP address; one more is closed at once")
    header_timeout: float = Field(10.0, gt=0, le=600,
                                  description="seconds a connection may take to send a "
                                  "request's headers (idle and trickling sockets are closed)")
    stall_timeout: float = Field(30.0, gt=0, le=3600,
                                 description="seconds a connection may leave what it was sent "
                                 "unread (a websocket that never reads) before it is dropped")
    track_grace: float = Field(30.0, ge=0.1, le=86_400,
                               description="seconds a tracked run waits for its training loop "
                               "to reconnect before it fails (docs/tracking.md)")
    track_rate: float = Field(50.0, gt=0, le=1000,
                              description="log messages a second one tracked run may send; a "
                              "faster loop is slowed (its client merges logs)")

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, v: object) -> object:
        # `COLLAPSE_LAB_TOKEN=` (as docker-compose passes an unset variable) means "no token"
        return None if isinstance(v, str) and not v.strip() else v

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "runs.sqlite3"

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.data_dir) / "checkpoints"
