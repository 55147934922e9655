"""The order queued runs start in: the teacher's first, then the students' in fair rounds.

With students starting their own runs, oldest-first would let one student who queues many runs
hold every worker while the rest wait. So queued runs start round-robin across owners: each owner's
n-th waiting run goes in round (runs that owner already has training + n); within a round the
older run first. The teacher's runs (and the runs of scripts and of a local user, which have no
student owner) go before every student's: the projector should not wait behind the class.

Pure: takes run records (anything with `owner` and `created`), returns them in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class Queued(Protocol):
    owner: str | None
    created: float


R = TypeVar("R", bound=Queued)


def is_student(owner: str | None) -> bool:
    return bool(owner) and str(owner).startswith("student:")


def fair_order(queued: Sequence[R], active: Iterable[Queued] = ()) -> list[R]:
    """`queued` in the order they should start; `active` are the runs already training (a
    student with one training waits a round behind one with none)."""
    busy = Counter(r.owner for r in active if is_student(r.owner))
    seen: Counter[str | None] = Counter()
    keyed = []
    for r in sorted(queued, key=lambda r: r.created):
        if is_student(r.owner):
            rnd = busy[r.owner] + seen[r.owner]
            seen[r.owner] += 1
            keyed.append(((1, rnd, r.created), r))
        else:
            keyed.append(((0, 0, r.created), r))
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed]
