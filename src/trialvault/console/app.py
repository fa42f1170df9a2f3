"""The local web console: server-rendered pages over the same library functions as the CLI.

Every page that reads or changes the vault opens it with the signed-in user's own key slot,
so every action is audited exactly as the CLI's (command names start with `console `).
Pages show counts, dates, states and codes of rules — never a child's row values.

Requests are checked in this order (docs/security.md, "Boundaries: console"): client address
on loopback, Host header naming the bound address and port (DNS rebinding), Origin/Referer on
every POST, the CSRF token (the login form's own before a session exists), the session and its
role. Vault work (Argon2 unlocks, queries, release checks) runs in a worker thread, one vault
session at a time, so the event loop keeps answering while a login or a check runs.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from trialvault.console.login import LOGOUT_COMMAND, LoginService
from trialvault.console.security import (
    COOKIE_NAME,
    CSRF_FIELD,
    DEFAULT_BACKOFF,
    LOGIN_COOKIE,
    BackoffPolicy,
    ConsoleSession,
    LoginCsrf,
    SessionStore,
    allowed_hosts,
    csrf_ok,
    host_ok,
    is_loopback,
    origin_ok,
)
from trialvault.errors import AccessDenied, TrialvaultError
from trialvault.study import StudyFile

# A page handler runs in a worker thread: plain (blocking) code, the form already parsed.
Handler = Callable[[Request, ConsoleSession, FormData | None], Response]
T = TypeVar("T")
# How long a request waits for the vault while another request's vault work runs.
VAULT_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class ConsoleSettings:
    vault_dir: Path
    study: StudyFile
    study_path: Path
    idle_seconds: float = 15 * 60
    allow_remote: bool = False
    certificate_dir: Path = Path("destruction-certificates")
    # Sealed access responses (age-encrypted to the data subject's key) stay here, registered
    # in the inventory, so the DPO can download one again until it is destroyed.
    responses_dir: Path = Path("access-responses")
    host: str = "127.0.0.1"
    port: int = 8765
    extra_hosts: tuple[str, ...] = ()
    backoff: BackoffPolicy = DEFAULT_BACKOFF


@dataclass(frozen=True)
class Page:
    """A navigation entry and the roles that may open it."""

    path: str
    title: str
    roles: frozenset[str]


class VaultBusy(TrialvaultError):
    """Another request of this console has held the vault for too long."""

    exit_code = 7


def _templates() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.console").joinpath("templates", name).read_text(
            encoding="utf-8"))
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["when"] = when
    return env


def when(value: Any) -> str:
    """A stored time as people read it: to the second, no microseconds, no 'T'."""
    if value is None:
        return ""
    return str(value)[:19].replace("T", " ")


class RequestChecks(BaseHTTPMiddleware):
    """Client on loopback (unless remote use was allowed), Host naming the bound address and
    port, Origin/Referer of the console on every POST; then the security headers."""

    def __init__(self, app: Any, settings: ConsoleSettings) -> None:
        super().__init__(app)
        self.allow_remote = settings.allow_remote
        self.hosts = allowed_hosts(settings.host, settings.port, settings.extra_hosts)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        client = request.client.host if request.client else None
        if not self.allow_remote and not is_loopback(client):
            return PlainTextResponse("The console serves this machine only.", status_code=403)
        if not host_ok(request.headers.get("host"), self.hosts):
            return PlainTextResponse("Unknown Host header: open the console at the address it "
                                     "printed when it started.", status_code=400)
        if request.method not in ("GET", "HEAD") and not origin_ok(
                request.headers.get("origin"), request.headers.get("referer"), self.hosts):
            return PlainTextResponse("This form was not sent from a console page.",
                                     status_code=403)
        response = await call_next(request)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the
        # console's own form posts, and the Origin check above needs the real one.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        return response


class Console:
    """Holds the settings, sessions and pages; builds the Starlette app."""

    def __init__(self, settings: ConsoleSettings, *, secret: str | None = None) -> None:
        self.settings = settings
        key = secret or secrets.token_urlsafe(48)
        self.sessions = SessionStore(key, settings.idle_seconds)
        self.login_csrf = LoginCsrf(key)
        self.env = _templates()
        self.pages: list[Page] = []
        # One vault session at a time (the vault's own lock is per process); requests that do
        # not need the vault never wait for it.
        self._vault = threading.Lock()
        self.logins = LoginService(settings.vault_dir, settings.backoff, self.in_vault)
        self.routes: list[Route] = [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.protected(self.logout, roles=None), methods=["POST"]),
            Route("/", self.home, methods=["GET"]),
        ]

    # --- building blocks ------------------------------------------------------------------
    def in_vault(self, work: Callable[[], T]) -> T:
        """Run blocking vault work (in a worker thread) while holding the console's vault lock."""
        if not self._vault.acquire(timeout=VAULT_WAIT_SECONDS):
            raise VaultBusy("the vault is busy with another request of this console; try again")
        try:
            return work()
        finally:
            self._vault.release()

    def page(self, path: str, title: str, roles: set[str], handler: Handler,
             methods: tuple[str, ...] = ("GET",), nav: bool = True) -> None:
        if nav:
            self.pages.append(Page(path, title, frozenset(roles)))
        self.routes.append(Route(path, self.protected(handler, roles=frozenset(roles)),
                                 methods=list(methods)))

    def protected(self, handler: Handler, roles: frozenset[str] | None
                  ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE_NAME))
            if session is None:
                return RedirectResponse("/login", status_code=303)
            if roles is not None and session.role not in roles:
                return self.render(request, session, "error.html.j2", http_status=403,
                                   title="Not allowed",
                                   message=f"Your role ({session.role}) cannot use this page.")
            form = None
            if request.method == "POST":
                form = await request.form()
                token = form.get(CSRF_FIELD)
                if not csrf_ok(session, token if isinstance(token, str) else None):
                    return PlainTextResponse("Missing or wrong CSRF token.", status_code=403)
            return await run_in_threadpool(self._run, handler, request, session, form)
        return endpoint

    def _run(self, handler: Handler, request: Request, session: ConsoleSession,
             form: FormData | None) -> Response:
        try:
            return self.in_vault(lambda: handler(request, session, form))
        except AccessDenied as exc:
            return self.render(request, session, "error.html.j2", http_status=403,
                               title="Not allowed", message=str(exc))
        except VaultBusy as exc:
            return self.render(request, session, "error.html.j2", http_status=503,
                               title="Busy", message=str(exc))
        except TrialvaultError as exc:
            return self.render(request, session, "error.html.j2", http_status=400,
                               title="Refused", message=str(exc))

    def render(self, request: Request, session: ConsoleSession | None, template: str, *,
               http_status: int = 200, **context: Any) -> HTMLResponse:
        nav = [p for p in self.pages if session and session.role in p.roles]
        html = self.env.get_template(template).render(
            session=session, nav=nav, path=request.url.path, csrf_field=CSRF_FIELD,
            csrf=session.csrf if session else "", study=self.settings.study, **context)
        return HTMLResponse(html, status_code=http_status)

    # --- login ----------------------------------------------------------------------------
    def _login_page(self, request: Request, *, error: str | None, http_status: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
        nonce, token = self.login_csrf.issue()
        response = self.render(request, None, "login.html.j2", title="Sign in", error=error,
                               login_token=token, http_status=http_status)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict",
                            secure=False, path="/login", max_age=self.login_csrf.max_age)
        response.headers.update(headers or {})
        return response

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request, error=None)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not self.login_csrf.check(request.cookies.get(LOGIN_COOKIE),
                                     token if isinstance(token, str) else None):
            return self._login_page(request, http_status=403, error="The sign-in form had "
                                    "expired or did not come from this console; try again.")
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        address = request.client.host if request.client else "unknown"
        outcome = await run_in_threadpool(self.logins.attempt, user, password, address)
        if outcome.retry_after:
            wait = int(outcome.retry_after + 0.999)
            return self._login_page(request, http_status=429, headers={"Retry-After": str(wait)},
                                    error=f"Too many failed sign-ins: wait {wait} seconds "
                                    "before trying again.")
        if outcome.role is None:
            return self._login_page(request, http_status=outcome.http_status,
                                    error=outcome.message)
        cookie = self.sessions.create(user, outcome.role, password)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="strict",
                            secure=False, path="/", max_age=int(self.settings.idle_seconds))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    def logout(self, request: Request, session: ConsoleSession, form: FormData | None
               ) -> Response:
        from trialvault.vault.session import open_vault

        self.sessions.drop(request.cookies.get(COOKIE_NAME))
        # Page views write no entry of their own: login and logout bracket them in the log.
        # (A session that times out ends without this entry; the next login shows a new one.)
        with contextlib.suppress(TrialvaultError), open_vault(
                self.settings.vault_dir, session.user, session.password,
                command=LOGOUT_COMMAND, args={}, write=False):
            pass
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    async def home(self, request: Request) -> Response:
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is None:
            return RedirectResponse("/login", status_code=303)
        allowed = [p for p in self.pages if session.role in p.roles]
        return RedirectResponse(allowed[0].path if allowed else "/login", status_code=303)

    def app(self) -> Starlette:
        return Starlette(routes=self.routes,
                         middleware=[Middleware(RequestChecks, settings=self.settings)])
