"""Console security: loopback only, signed session cookies, CSRF tokens, idle timeout, roles.

The session cookie carries only a signed random session id. What the server remembers about a
session (user, role, password to reopen the vault for each action, CSRF token, last activity)
lives in this process's memory and is dropped on logout, on idle timeout and when the server
stops. Nothing about a session is written to disk.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "tv_session"
CSRF_FIELD = "csrf_token"


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (the only clients the console serves by default)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class ConsoleSession:
    user: str
    role: str
    password: str = field(repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    """In-memory sessions with an idle timeout; ids travel in a signed cookie."""

    def __init__(self, secret: str, idle_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="trialvault-console-session")
        self._sessions: dict[str, ConsoleSession] = {}
        self.idle_seconds = idle_seconds
        self._clock = clock

    def create(self, user: str, role: str, password: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = ConsoleSession(user, role, password,
                                                    last_seen=self._clock())
        return self._serializer.dumps(session_id)

    def get(self, cookie: str | None) -> ConsoleSession | None:
        """The live session behind a cookie, refreshing its idle clock; None when absent,
        forged or idle for too long (an idle session is forgotten at once)."""
        if not cookie:
            return None
        try:
            session_id = self._serializer.loads(cookie)
        except BadSignature:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self.idle_seconds:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        return session

    def drop(self, cookie: str | None) -> None:
        if not cookie:
            return
        try:
            self._sessions.pop(self._serializer.loads(cookie), None)
        except BadSignature:
            return

    def expire_all(self) -> None:
        """Forget every session (used by tests of the timeout and at shutdown)."""
        self._sessions.clear()

    def age_all(self, seconds: float) -> None:
        """Move every session's last activity back (lets tests exercise the idle timeout)."""
        for session in self._sessions.values():
            session.last_seen -= seconds


def csrf_ok(session: ConsoleSession, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf, submitted)
