"""Console security: loopback only, Host and Origin checks, signed session cookies, CSRF tokens
(also on the login form), back-off after failed sign-ins, idle timeout, roles.

The session cookie carries only a signed random session id. What the server remembers about a
session (user, role, password to reopen the vault for each action, CSRF token, last activity)
lives in this process's memory and is dropped on logout, on idle timeout and when the server
stops. Nothing about a session is written to disk.
"""

from __future__ import annotations

import hashlib
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


# --- requests from this machine's browser only: Host and Origin ----------------------------

def allowed_hosts(bind_host: str, port: int, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The Host header values the console answers: the bound loopback name and port.

    A page on attacker.example can make the browser talk to 127.0.0.1 by DNS rebinding, but the
    browser then sends `Host: attacker.example:port`, which is refused. `localhost` is always
    this machine (resolvers do not rebind it), so it is accepted beside the address.
    """
    names = {bind_host}
    if bind_host in ("127.0.0.1", "localhost"):
        names |= {"127.0.0.1", "localhost"}
    if bind_host in ("::1", "[::1]"):
        names = {"[::1]", "localhost"}
    hosts = {f"{n}:{port}" for n in names}
    if port == 80:  # browsers leave the default port out of Host
        hosts |= names
    return frozenset(hosts | {h.lower() for h in extra})


def host_ok(host_header: str | None, allowed: frozenset[str]) -> bool:
    return host_header is not None and host_header.strip().lower() in allowed


def origin_ok(origin: str | None, referer: str | None, allowed_hosts_: frozenset[str]) -> bool:
    """A state-changing request must come from one of the console's own pages: its Origin (or,
    when a browser sends none, its Referer) names an allowed host. Neither: refused (OWASP CSRF
    cheat sheet, "verifying origin with standard headers")."""
    from urllib.parse import urlsplit

    if origin is not None:
        parts = urlsplit(origin)
        return parts.scheme == "http" and parts.netloc.lower() in allowed_hosts_ and (
            parts.path in ("", "/"))
    if referer:
        parts = urlsplit(referer)
        return parts.scheme == "http" and parts.netloc.lower() in allowed_hosts_
    return False


# --- the login form's CSRF token (before there is a session) --------------------------------

LOGIN_COOKIE = "tv_login"
LOGIN_TOKEN_SECONDS = 3600


class LoginCsrf:
    """Signed double-submit token for the login form: the form carries a token that is an
    HMAC (itsdangerous) of a random nonce held in an HttpOnly, SameSite=Strict cookie; a
    cross-site page can neither read the cookie nor mint the token."""

    def __init__(self, secret: str, max_age: int = LOGIN_TOKEN_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="trialvault-console-login")
        self.max_age = max_age

    def issue(self) -> tuple[str, str]:
        """(cookie value, form token)."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self._serializer.dumps(nonce)

    def check(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        try:
            nonce = self._serializer.loads(token, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)


# --- back-off after failed sign-ins ---------------------------------------------------------

@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    until: float = 0.0


@dataclass(frozen=True)
class BackoffPolicy:
    """Failures allowed before waiting, then a wait that doubles per failure up to a cap.

    Per user name: 3 free tries (a mistyped password or two), then 2 s, 4 s, … 15 min.
    Per client address: 10 free tries across all names (a guesser walking user names), same
    doubling. Counts are forgotten `forget_after` seconds after the last failure.
    """

    user_free: int = 3
    address_free: int = 10
    first_wait: float = 2.0
    max_wait: float = 15 * 60
    forget_after: float = 60 * 60
    max_tracked: int = 10_000


DEFAULT_BACKOFF = BackoffPolicy()


class LoginThrottle:
    """In-memory failure counts per user name (hashed: typed names are not kept) and per
    client address; `retry_after` says how long a sign-in must wait, without trying it."""

    def __init__(self, policy: BackoffPolicy = DEFAULT_BACKOFF,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._users: dict[str, _Failures] = {}
        self._addresses: dict[str, _Failures] = {}

    @staticmethod
    def _user_key(user: str) -> str:
        return hashlib.sha256(b"trialvault console user\x00" + user.encode("utf-8",
                                                                          "replace")).hexdigest()

    def retry_after(self, user: str, address: str) -> float:
        now = self._clock()
        waits = [f.until - now for f in (self._users.get(self._user_key(user)),
                                         self._addresses.get(address)) if f is not None]
        return max([0.0, *waits])

    def failed(self, user: str, address: str) -> tuple[int, float]:
        """Count a failure; (failures for this user name, seconds it must now wait)."""
        now = self._clock()
        self._prune(now)
        user_f = self._bump(self._users, self._user_key(user), self.policy.user_free, now)
        addr_f = self._bump(self._addresses, address, self.policy.address_free, now)
        return user_f.count, max(user_f.until, addr_f.until) - now

    def succeeded(self, user: str, address: str) -> None:
        # Only someone who knows a password gets here; their own earlier typos are forgiven.
        self._users.pop(self._user_key(user), None)
        self._addresses.pop(address, None)

    def _bump(self, table: dict[str, _Failures], key: str, free: int, now: float) -> _Failures:
        entry = table.setdefault(key, _Failures())
        entry.count += 1
        entry.last = now
        if entry.count > free:
            wait = min(self.policy.max_wait,
                       self.policy.first_wait * 2 ** (entry.count - free - 1))
            entry.until = now + wait
        return entry

    def _prune(self, now: float) -> None:
        for table in (self._users, self._addresses):
            if len(table) < self.policy.max_tracked:
                stale = [k for k, f in table.items()
                         if now - f.last > self.policy.forget_after and f.until <= now]
            else:  # a flood of names: keep only the entries still waiting
                stale = [k for k, f in table.items() if f.until <= now]
            for key in stale:
                del table[key]
