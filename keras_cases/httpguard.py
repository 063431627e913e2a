"""What both HTTP services (serve, the runs dashboard) put in front of their routes.

- `BodyLimit`: a pure ASGI middleware that counts the bytes of a request body as they
  arrive (Content-Length or chunked) and answers 413 once they pass the limit, so no route
  ever holds more than `limit` bytes of one request.
- `HostCheck`: the Host header must name the machine the service was bound to (localhost by
  default), so a web page elsewhere cannot reach it through DNS rebinding; anything else is
  a 400.
- `ERROR` / `VALIDATION_ERRORS`: the 4xx bodies both services answer with, {"detail": str}
  (422 adds "errors": int), declared in their OpenAPI schemas by `responses`;
- `install` wires all of it into a FastAPI app.
"""

from __future__ import annotations

import json

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_HOST = ("0.0.0.0", "::", "")  # bound to every interface: clients may use any name


async def send_json(send, status: int, body: dict, headers=()):
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for a request body over `limit` bytes, however it is sent."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = {"detail": f"request body over {self.limit} bytes"}
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await send_json(send, 413, too_large, [(b"connection", b"close")])
        seen, over, started = 0, False, False

        async def counting_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if over:
                return  # whatever the app makes of the cut-off body, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await send_json(send, 413, too_large, [(b"connection", b"close")])


def host_name(header: str) -> str:
    """The host of a Host header, without its port ("[::1]:8000" -> "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(bound: str) -> set[str] | None:
    """The Host names a service bound to `bound` answers to; None: any (every interface)."""
    bound = host_name(bound)
    if bound in ANY_HOST:
        return None
    return {*LOCAL_HOSTS, bound}


class HostCheck:
    """400 unless the Host header names one of `hosts` (None: no check)."""

    def __init__(self, app, hosts: set[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.hosts is not None:
            raw = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
            if host_name(raw) not in self.hosts:
                return await send_json(
                    send,
                    400,
                    {"detail": f"unexpected Host header {raw[:100]!r}: use one of {', '.join(sorted(self.hosts))}"},
                )
        await self.app(scope, receive, send)


ERROR = {
    "type": "object",
    "title": "Error",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "what is wrong, in one sentence"}},
}
VALIDATION_ERRORS = {
    "type": "object",
    "title": "ValidationErrors",
    "required": ["detail", "errors"],
    "properties": {**ERROR["properties"], "errors": {"type": "integer", "description": "how many problems"}},
}


def responses(*statuses: int, max_body: int | None = None) -> dict:
    """The OpenAPI `responses=` entry for these 4xx statuses (JSON bodies, whatever the
    route's own media type)."""
    what = {
        400: "bad request (unexpected Host header, unreadable input)",
        404: "not found",
        413: f"request body over {max_body} bytes" if max_body else "request body too large",
        415: "unsupported content type",
        422: "the request does not match the schema",
    }
    return {
        s: {
            "description": what[s],
            "content": {"application/json": {"schema": VALIDATION_ERRORS if s == 422 else ERROR}},
        }
        for s in statuses
    }


def install(app, host: str, max_body: int):
    """The body limit, the Host check and the one-line 422 body on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(problems[:20]), "errors": len(problems)}, status_code=422)

    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(HostCheck, hosts=allowed_hosts(host))  # added last: runs first
    return app
