"""Who is who: the server's secret, students' signed sessions and display names, the teacher's
server-side sessions, and the per-address counters that keep one machine from becoming many
people or guessing the token.

- **The secret**: 32 random bytes in `DATA_DIR/server-secret` (mode 0600), made on first use.
  Everything a browser holds that names a person is signed with it, so an id read off a list,
  typed or guessed is nobody. Deleting the file ends every student session (they get new ones).
- **Students**: a student session is `ID.SIGNATURE` in an HttpOnly cookie, minted by
  `GET /api/session` and remembered (with the address that asked for it and the student's
  display name) in the store's `students` table. At most `sessions_per_address` new sessions
  an hour go to one network address (loopback, the server's own machine, is not counted), and
  `same_person` counts every session minted from one address as one person for the caps.
- **Names**: what a student types on joining, cleaned (no control or format characters, spaces
  collapsed, at most NAME_MAX characters) and made unique in the class ("Ana", "Ana 2"); the
  page shows it as text, never as markup. The teacher may remove one; the student then gives
  another.
- **The teacher**: signing in (the teacher link) issues a fresh random session id; the server
  keeps only its SHA-256 with an expiry. Sign-out ends it, a token rotation ends all of them,
  a restart of the server ends them too (open the teacher link again).
- **Token guesses**: a wrong token (a header or a teacher link) counts against its address;
  past TOKEN_FAILURES in TOKEN_WINDOW seconds the address is answered 429 without a comparison
  until the window has moved on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECRET_FILE = "server-secret"
SESSION_MAX_AGE = 12 * 3600  # a school day; the teacher opens the printed link again after it
STUDENT_MAX_AGE = 30 * 24 * 3600
NAME_MAX = 32
MAX_STUDENTS = 10_000  # sessions remembered; the oldest without a name go first past it
MAX_TEACHER_SESSIONS = 64
TOKEN_FAILURES = 10  # wrong tokens one address may send in TOKEN_WINDOW seconds
TOKEN_WINDOW = 60.0
SESSION_WINDOW = 3600.0
_SID = re.compile(r"^[a-f0-9]{16}$")
_COOKIE = re.compile(r"^([a-f0-9]{16})\.([a-f0-9]{32})$")


def load_secret(data_dir: Path | str) -> bytes:
    """The server's secret, made (O_EXCL, 0600) the first time; in memory only where the data
    dir cannot be written (student sessions then last as long as the process)."""
    path = Path(data_dir) / SECRET_FILE
    for _ in range(2):
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data
            log.warning("%s is too short to be a secret: making a new one", path)
            path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot read %s (%s): student sessions last until the server stops",
                        path, e.strerror)
            return secrets.token_bytes(32)
        secret = secrets.token_bytes(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # made by someone else just now: read it
        except OSError as e:
            log.warning("cannot write %s (%s): student sessions last until the server stops",
                        path, e.strerror)
            return secret
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret
    return secrets.token_bytes(32)


def counted_address(address: str | None) -> str | None:
    """The address counted for per-address limits: a non-loopback IP address, else None (the
    server's own machine, a unix socket, an in-process test client)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    return None if ip.is_loopback else str(ip)


def clean_name(raw: str) -> str:
    """A display name as shown: control and format characters (bidi overrides, zero-width
    joiners) dropped, whitespace collapsed; ValueError when nothing, or too much, is left."""
    kept = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", raw)
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    name = " ".join(kept.split())
    if not name:
        raise ValueError("a name needs at least one visible character")
    if len(name) > NAME_MAX:
        raise ValueError(f"at most {NAME_MAX} characters, got {len(name)}")
    return name


class AddressLog:
    """Times of something per address within a sliding window; bounded in addresses."""

    def __init__(self, window: float, max_addresses: int = 4096):
        self.window = window
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, address: str, now: float | None = None) -> int:
        q = self._seen.get(address)
        if q is None:
            return 0
        now = time.monotonic() if now is None else now
        while q and now - q[0] > self.window:
            q.popleft()
        return len(q)

    def add(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        q = self._seen.pop(address, None) or deque(maxlen=1024)
        q.append(now)
        self._seen[address] = q
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)

    def wait(self, address: str, limit: int) -> float:
        """Seconds until `address` is under `limit` again (0: it is)."""
        now = time.monotonic()
        if self.count(address, now) < limit:
            return 0.0
        q = self._seen[address]
        return max(0.0, q[-limit] + self.window - now)


@dataclass
class Student:
    sid: str
    created: float
    address: str | None = None  # the counted address that asked for the session
    name: str | None = None


class Identity:
    """One per app (`app.state.identity`)."""

    def __init__(self, data_dir: Path | str, sessions_per_address: int = 10):
        self.data_dir = Path(data_dir)
        self.sessions_per_address = sessions_per_address
        self._secret: bytes | None = None
        self._lock = threading.Lock()
        self.students: OrderedDict[str, Student] = OrderedDict()
        self._teacher: dict[str, float] = {}  # sha256 of a session id -> expiry (time.time)
        self._minted = AddressLog(SESSION_WINDOW)
        self._failures = AddressLog(TOKEN_WINDOW)
        self._store: Any = None

    # ------------------------------------------------------------------ secret and signing
    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = load_secret(self.data_dir)
        return self._secret

    def sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ persistence
    def attach(self, store: Any, db_path: Path) -> None:
        """Load the remembered students (called from the lifespan, off the event loop)."""
        self._store = store
        conn = sqlite3.connect(db_path, timeout=30)
        try:
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS students (id TEXT PRIMARY KEY, "
                             "created REAL NOT NULL, address TEXT, name TEXT)")
            rows = conn.execute("SELECT id, created, address, name FROM students "
                                "ORDER BY created").fetchall()
        finally:
            conn.close()
        for sid, created, address, name in rows[-MAX_STUDENTS:]:
            if isinstance(sid, str) and _SID.match(sid):
                self.students[sid] = Student(sid, float(created), address, name)

    def _save(self, st: Student) -> None:
        if self._store is not None:
            row = (st.sid, st.created, st.address, st.name)
            self._store.submit(lambda c: c.execute(
                "INSERT OR REPLACE INTO students VALUES (?,?,?,?)", row))

    def _forget(self, sid: str) -> None:
        if self._store is not None:
            self._store.submit(lambda c: c.execute("DELETE FROM students WHERE id=?", (sid,)))

    # ------------------------------------------------------------------ students
    def student_cookie(self, sid: str) -> str:
        return f"{sid}.{self.sign('student', sid)[:32]}"

    def verify_student(self, cookie: str | None) -> str | None:
        """The student id a cookie proves, or None (absent, malformed, forged, or copied
        without its signature)."""
        m = _COOKIE.match(cookie or "")
        if m is None:
            return None
        sid, sig = m.groups()
        if not hmac.compare_digest(sig, self.sign("student", sid)[:32]):
            return None
        return sid

    def mint_wait(self, address: str | None) -> float:
        """Seconds before `address` may have another new student session (0: now)."""
        counted = counted_address(address)
        if counted is None:
            return 0.0
        return self._minted.wait(counted, self.sessions_per_address)

    def mint(self, address: str | None) -> str:
        counted = counted_address(address)
        if counted is not None:
            self._minted.add(counted)
        sid = secrets.token_hex(8)
        st = Student(sid, time.time(), counted)
        self.students[sid] = st
        while len(self.students) > MAX_STUDENTS:
            old = next((s for s in self.students.values() if s.name is None),
                       next(iter(self.students.values())))
            del self.students[old.sid]
            self._forget(old.sid)
        self._save(st)
        return sid

    def student(self, sid: str) -> Student:
        """The record of a proven id (a record the store lost is made again, unnamed)."""
        st = self.students.get(sid)
        if st is None:
            st = self.students[sid] = Student(sid, time.time())
        return st

    def name_of(self, owner: str | None) -> str | None:
        if not owner or not owner.startswith("student:"):
            return None
        st = self.students.get(owner[8:])
        return st.name if st else None

    def same_person(self, a: str | None, b: str | None) -> bool:
        """Owners `student:X` and `student:Y` are one person: the same session, or sessions
        minted from the same (counted) address."""
        if not a or not b:
            return False
        if a == b:
            return True
        if not (a.startswith("student:") and b.startswith("student:")):
            return False
        sa, sb = self.students.get(a[8:]), self.students.get(b[8:])
        return bool(sa and sb and sa.address and sa.address == sb.address)

    def set_name(self, sid: str, raw: str) -> str:
        """Give student `sid` the display name `raw` (cleaned, made unique). ValueError."""
        name = clean_name(raw)
        taken = {s.name.casefold() for s in self.students.values()
                 if s.name and s.sid != sid}
        unique, n = name, 1
        while unique.casefold() in taken:
            n += 1
            suffix = f" {n}"
            unique = name[:NAME_MAX - len(suffix)] + suffix
        st = self.student(sid)
        st.name = unique
        self._save(st)
        return unique

    def handle(self, sid: str) -> str:
        """A student's public handle for the teacher's page (not the session id, and not
        enough to make a cookie)."""
        return self.sign("handle", sid)[:12]

    def remove_name(self, handle: str) -> str | None:
        """The teacher removes a name (by handle); returns the name removed, or None."""
        for st in self.students.values():
            if st.name is not None and hmac.compare_digest(self.handle(st.sid), handle):
                old, st.name = st.name, None
                self._save(st)
                return old
        return None

    # ------------------------------------------------------------------ the teacher
    @staticmethod
    def _digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def new_teacher_session(self) -> str:
        now = time.time()
        self._teacher = {k: v for k, v in self._teacher.items() if v > now}
        while len(self._teacher) >= MAX_TEACHER_SESSIONS:
            del self._teacher[min(self._teacher, key=self._teacher.__getitem__)]
        value = secrets.token_urlsafe(32)
        self._teacher[self._digest(value)] = now + SESSION_MAX_AGE
        return value

    def teacher_session(self, value: str | None) -> bool:
        if not value or len(value) > 100:
            return False
        expiry = self._teacher.get(self._digest(value))
        return expiry is not None and expiry > time.time()

    def end_teacher_session(self, value: str | None) -> None:
        if value:
            self._teacher.pop(self._digest(value), None)

    def end_teacher_sessions(self) -> None:
        self._teacher.clear()

    # ------------------------------------------------------------------ token guesses
    def token_wait(self, address: str | None) -> float:
        """Seconds before `address` may present a token again (0: now)."""
        return self._failures.wait(address or "?", TOKEN_FAILURES)

    def token_failed(self, address: str | None) -> None:
        self._failures.add(address or "?")
