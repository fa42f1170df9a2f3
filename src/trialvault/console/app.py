"""The local web console: server-rendered pages over the same library functions as the CLI.

Every page that reads or changes the vault opens it with the signed-in user's own key slot,
so every action is audited exactly as the CLI's (command names start with `console `).
Pages show counts, dates, states and codes of rules — never a child's row values.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from trialvault.console.security import (
    COOKIE_NAME,
    CSRF_FIELD,
    ConsoleSession,
    SessionStore,
    csrf_ok,
    is_loopback,
)
from trialvault.errors import AccessDenied, TrialvaultError
from trialvault.study import StudyFile

Handler = Callable[[Request, ConsoleSession], Awaitable[Response]]


@dataclass(frozen=True)
class ConsoleSettings:
    vault_dir: Path
    study: StudyFile
    study_path: Path
    idle_seconds: float = 15 * 60
    allow_remote: bool = False
    certificate_dir: Path = Path("destruction-certificates")


@dataclass(frozen=True)
class Page:
    """A navigation entry and the roles that may open it."""

    path: str
    title: str
    roles: frozenset[str]


def _templates() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.console").joinpath("templates", name).read_text(
            encoding="utf-8"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


class LoopbackOnly(BaseHTTPMiddleware):
    """Refuse any client that is not on this machine, unless remote use was allowed."""

    def __init__(self, app: Any, allow_remote: bool) -> None:
        super().__init__(app)
        self.allow_remote = allow_remote

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.client.host if request.client else None
        if not self.allow_remote and not is_loopback(host):
            return PlainTextResponse("The console serves this machine only.", status_code=403)
        response = await call_next(request)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        return response


class Console:
    """Holds the settings, sessions and pages; builds the Starlette app."""

    def __init__(self, settings: ConsoleSettings, *, secret: str | None = None) -> None:
        self.settings = settings
        self.sessions = SessionStore(secret or secrets.token_urlsafe(48), settings.idle_seconds)
        self.env = _templates()
        self.pages: list[Page] = []
        self.routes: list[Route] = [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.protected(self.logout, roles=None), methods=["POST"]),
            Route("/", self.home, methods=["GET"]),
        ]

    # --- building blocks ------------------------------------------------------------------
    def page(self, path: str, title: str, roles: set[str], handler: Handler,
             methods: tuple[str, ...] = ("GET",), nav: bool = True) -> None:
        if nav:
            self.pages.append(Page(path, title, frozenset(roles)))
        self.routes.append(Route(path, self.protected(handler, roles=frozenset(roles)),
                                 methods=list(methods)))

    def protected(self, handler: Handler, roles: frozenset[str] | None
                  ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE_NAME))
            if session is None:
                return RedirectResponse("/login", status_code=303)
            if roles is not None and session.role not in roles:
                return self.render(request, session, "error.html.j2", http_status=403,
                                   title="Not allowed",
                                   message=f"Your role ({session.role}) cannot use this page.")
            if request.method == "POST":
                form = await request.form()
                token = form.get(CSRF_FIELD)
                if not csrf_ok(session, token if isinstance(token, str) else None):
                    return PlainTextResponse("Missing or wrong CSRF token.", status_code=403)
            try:
                return await handler(request, session)
            except AccessDenied as exc:
                return self.render(request, session, "error.html.j2", http_status=403,
                                   title="Not allowed", message=str(exc))
            except TrialvaultError as exc:
                return self.render(request, session, "error.html.j2", http_status=400,
                                   title="Refused", message=str(exc))
        return endpoint

    def render(self, request: Request, session: ConsoleSession | None, template: str, *,
               http_status: int = 200, **context: Any) -> HTMLResponse:
        nav = [p for p in self.pages if session and session.role in p.roles]
        html = self.env.get_template(template).render(
            session=session, nav=nav, path=request.url.path, csrf_field=CSRF_FIELD,
            csrf=session.csrf if session else "", study=self.settings.study, **context)
        return HTMLResponse(html, status_code=http_status)

    # --- login ----------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        return self.render(request, None, "login.html.j2", title="Sign in", error=None)

    async def login(self, request: Request) -> Response:
        from trialvault.vault.session import open_vault

        form = await request.form()
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        try:
            with open_vault(self.settings.vault_dir, user, password, command="console login",
                            args={"user": user}, write=False) as vault:
                role = vault.role
        except TrialvaultError:
            return self.render(request, None, "login.html.j2", http_status=401, title="Sign in",
                               error="Wrong user name or password.")
        cookie = self.sessions.create(user, role, password)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="strict",
                            secure=False, path="/", max_age=int(self.settings.idle_seconds))
        return response

    async def logout(self, request: Request, session: ConsoleSession) -> Response:
        self.sessions.drop(request.cookies.get(COOKIE_NAME))
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
        middleware = [Middleware(LoopbackOnly, allow_remote=self.settings.allow_remote)]
        return Starlette(routes=self.routes, middleware=middleware)
