"""Compare groups: runs started side by side from one shared base config, each variant saying
what differs (the routes: server/api_compare.py). A group is a record of its own (id, label,
base, variants), written through to the store; its runs are ordinary runs of the registry whose
`group_id` names it, so they are listed from there, oldest first.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

from collapse_lab.server.runs import Run
from collapse_lab.server.store import Store


class Groups:
    def __init__(self, store: Store, runs: dict[str, Run]):
        self.store = store
        self.runs = runs  # run id -> run: the supervisor's registry, read here
        self._all: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        for g in await asyncio.to_thread(self.store.load_groups):
            self._all[g["id"]] = g

    def new(self, base: dict[str, Any], varied: list[dict[str, Any]],
            label: str | None) -> dict[str, Any]:
        gid = "g" + secrets.token_hex(4)
        g = dict(id=gid, created=time.time(), label=label, base=base, varied=varied)
        self._all[gid] = g
        self.store.save_group(g)
        return g

    def get(self, gid: str) -> dict[str, Any] | None:
        return self._all.get(gid)

    def __contains__(self, gid: object) -> bool:
        return gid in self._all

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every group, oldest first."""
        return iter(sorted(self._all.values(), key=lambda g: g["created"]))

    def runs_of(self, gid: str) -> list[Run]:
        """The group's runs, oldest first."""
        return sorted((r for r in self.runs.values() if r.group_id == gid),
                      key=lambda r: r.created)
