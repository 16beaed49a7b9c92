"""A fake song CDN on 127.0.0.1: files, redirects, wrong types, undeclared sizes, stalls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

MP3_HEADER = b"ID3\x04\x00\x00\x00\x00\x00\x00"


def mp3_bytes(size: int) -> bytes:
    """`size` bytes that start like an MP3 file."""
    return (MP3_HEADER + bytes(range(256)) * (size // 256 + 1))[:size]


@dataclass
class _Route:
    body: bytes = b""
    content_type: str = "audio/mpeg"
    status: int = 200
    location: str | None = None
    declare_length: bool = True
    stall: bool = False


@dataclass
class CdnRequest:
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeCdn:
    """Serves what a test put at each path; records every request with its headers."""

    def __init__(self) -> None:
        self.requests: list[CdnRequest] = []
        self._routes: dict[str, _Route] = {}
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> FakeCdn:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def host(self) -> str:
        """The `host:port` entry that lets the bot download from this CDN."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    def put(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "audio/mpeg",
        declare_length: bool = True,
    ) -> str:
        """Serve `body` at `path`; returns its URL."""
        self._routes[path.lstrip("/")] = _Route(
            body=body, content_type=content_type, declare_length=declare_length
        )
        return self.url(path)

    def redirect(self, path: str, location: str) -> str:
        self._routes[path.lstrip("/")] = _Route(status=302, location=location)
        return self.url(path)

    def stall(self, path: str) -> str:
        """Answer with headers, then send the body never."""
        self._routes[path.lstrip("/")] = _Route(stall=True, declare_length=False)
        return self.url(path)

    def requested(self, path: str) -> list[CdnRequest]:
        return [r for r in self.requests if r.path == "/" + path.lstrip("/")]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(CdnRequest(request.path, dict(request.headers)))
        route = self._routes.get(request.match_info["tail"])
        if route is None:
            return web.Response(status=404)
        if route.location is not None:
            return web.Response(status=route.status, headers={"Location": route.location})
        response = web.StreamResponse(status=route.status)
        response.content_type = route.content_type
        if route.declare_length:
            response.content_length = len(route.body)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        if route.stall:
            await response.write(MP3_HEADER)
            await self._released.wait()
            return response
        for start in range(0, len(route.body), 65536):
            await response.write(route.body[start : start + 65536])
        await response.write_eof()
        return response
