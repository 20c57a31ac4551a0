"""The live page: a small Starlette application over a `Watcher`'s latest reading.

Routes (JSON in the schemas of `status --json` and `doctor --json`):
  /                      the page (HTML; its script and style are served from here too)
  /api/state             everything the page shows: version, machines' status, doctor
  /api/status            {"machines": {name: status --json}}
  /api/status/{machine}  one machine's `status --json`
  /api/doctor            `doctor --json` over every machine
  /graph.svg             the live graph

Nothing is loaded from elsewhere (a Content-Security-Policy says so to the browser), no
secret is ever in a reading (status redacts keys; the tests scan every response), and a
token guards every route when one is set (required off loopback: see `check_listen`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .collect import Source
from .watch import Latest, Watcher

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                    "X-Frame-Options": "DENY"}
COOKIE = "wgbgp_token"
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}


class ListenError(ValueError):
    """The address to listen on is unsafe or malformed."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str | None) -> None:
    """Refuse to serve off loopback without a token: the page shows the whole network."""
    if not is_loopback(host) and not token:
        raise ListenError(
            f"--listen {host} is reachable from other machines, and the page shows the "
            "whole network: set a token (WGBGP_WEB_TOKEN or --token-file FILE), or listen "
            "on 127.0.0.1")


def state_json(latest: Latest, source: Source) -> dict[str, Any]:
    """What the page polls: the reading in the status/doctor schemas, plus its version."""
    r = latest.reading
    graph = source.graph()
    return {
        "schema": "wgbgp.web/1",
        "version": latest.version,
        "network": source.name,
        "mode": source.mode,
        "machines_expected": [v.name for v in graph.vertices if v.kind in ("hub", "node")],
        "taken_at": r.taken_at if r else None,
        "seconds": round(r.seconds, 2) if r else None,
        "doctor_seconds": (round(r.doctor_seconds, 2) if r and r.doctor_seconds is not None
                           else None),
        "machines": r.statuses if r else {},
        "doctor": r.doctor if r else None,
        "doctor_at": r.doctor_at if r else None,
        "sessions": [{"a": e.a, "b": e.b, "kind": e.kind, "plane": e.plane,
                      "state": e.state, "detail": e.detail}
                     for e in (r.graph.edges if r else ()) if e.kind != "underlay"],
        "errors": {**(r.errors if r else {}), **({"graph": latest.error}
                                                  if latest.error else {})},
    }


def _static(name: str) -> bytes:
    return files("wgbgp.web").joinpath("static", name).read_bytes()


def create_app(watcher: Watcher, token: str | None = None) -> Starlette:
    """The application over `watcher` (started by the caller)."""
    source = watcher.source

    async def page(_: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response(_static(name), media_type=STATIC[name])

    async def state(_: Request) -> Response:
        return JSONResponse(state_json(watcher.get(), source))

    async def all_status(_: Request) -> Response:
        r = watcher.get().reading
        return JSONResponse({"machines": r.statuses if r else {}})

    async def one_status(request: Request) -> Response:
        r = watcher.get().reading
        machine = request.path_params["machine"]
        if r is None or machine not in r.statuses:
            return JSONResponse({"error": f"no status of {machine!r}",
                                 "fix": "machines read: "
                                        + ", ".join(sorted(r.statuses if r else ()))},
                                status_code=404)
        return JSONResponse(r.statuses[machine])

    async def doctor(_: Request) -> Response:
        r = watcher.get().reading
        if r is None or r.doctor is None:
            return JSONResponse({"error": "doctor has not run yet", "fix": "ask again soon"},
                                status_code=503)
        return JSONResponse(r.doctor)

    async def graph_svg(_: Request) -> Response:
        return Response(watcher.get().svg, media_type="image/svg+xml")

    routes = [Route("/", page), Route("/static/{name}", static), Route("/api/state", state),
              Route("/api/status", all_status), Route("/api/status/{machine}", one_status),
              Route("/api/doctor", doctor), Route("/graph.svg", graph_svg)]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token)])


Call = Callable[[Request], Awaitable[Response]]


class _Guard(BaseHTTPMiddleware):
    """Security headers on every response; the token on every request when one is set.

    The token comes as `Authorization: Bearer T`, or once as `?token=T` (then kept in a
    strict same-site cookie, and the address bar cleaned by a redirect)."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: Call) -> Response:
        response = await self._checked(request, call_next)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _checked(self, request: Request, call_next: Call) -> Response:
        if not self.token:
            return await call_next(request)
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            response = RedirectResponse(request.url.remove_query_params("token"), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        cookie = request.cookies.get(COOKIE, "")
        if any(hmac.compare_digest(c.encode(), self.token.encode()) for c in (bearer, cookie)
               if c):
            return await call_next(request)
        return JSONResponse({"error": "a token is required",
                             "fix": "open the address with ?token=YOUR_TOKEN once"},
                            status_code=401)
