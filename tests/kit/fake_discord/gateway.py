"""The gateway: HELLO, IDENTIFY and RESUME, heartbeats, and the events the fake dispatches."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.kit.fake_discord import builders
from tests.kit.fake_discord.records import FakeMessage, JSONObject
from tests.kit.fake_discord.state import FakeState

HEARTBEAT_INTERVAL_MS = 41_250

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12


@dataclass(eq=False)
class GatewaySession:
    """A session the bot identified for; it may resume it on a new connection."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    history: deque[JSONObject] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass(eq=False)
class GatewayConnection:
    """One websocket connection of the bot, with the session it identified or resumed."""

    ws: web.WebSocketResponse
    query: dict[str, str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None
    ready: bool = False

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, frame: JSONObject) -> None:
        async with self.lock:
            await self.ws.send_str(builders.to_json(frame))

    async def dispatch(self, event: str, data: JSONObject) -> None:
        session = self.session
        if session is None:
            raise RuntimeError("dispatch before IDENTIFY or RESUME")
        # Sequence numbers must reach the bot in the order they are handed out.
        async with self.lock:
            session.seq += 1
            frame: JSONObject = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.history.append(frame)
            await self.ws.send_str(builders.to_json(frame))


class FakeGateway:
    """Serves the bot's websocket connections and records every frame the bot sends."""

    def __init__(self, state: FakeState, *, url: Callable[[], str]) -> None:
        self.state = state
        self.frames: list[JSONObject] = []
        self.ready_count = 0
        self._url = url
        self._sessions: dict[str, GatewaySession] = {}
        self._connections: list[GatewayConnection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Connection attempts still to be answered 503 instead of a websocket, and how many were.
        self.refusals_left = 0
        self.refused = 0

    def active_connection(self) -> GatewayConnection | None:
        """The newest connection that is open and got READY (or RESUMED)."""
        for conn in reversed(self._connections):
            if conn.ready and conn.open:
                return conn
        return None

    async def close(self) -> None:
        """Close every connection and wait for the events still being sent."""
        for conn in list(self._connections):
            await conn.ws.close(code=1001, message=b"fake Discord shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop(self, *, code: int) -> None:
        conn = self.active_connection()
        if conn is None:
            raise AssertionError("no bot is connected to the fake gateway")
        conn.ready = False
        await conn.ws.close(code=code, message=b"fake gateway hiccup")

    def message_deleted(self, message: FakeMessage) -> None:
        """Tell the bot about a deleted message, if its intents ask for such events."""
        conn = self.active_connection()
        if conn is None or conn.session is None or message.ephemeral:
            return
        needed = INTENT_GUILD_MESSAGES if message.guild_id else INTENT_DIRECT_MESSAGES
        if conn.session.intents & needed:
            event: JSONObject = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id:
                event["guild_id"] = str(message.guild_id)
            self._spawn(conn.dispatch("MESSAGE_DELETE", event))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            # The bot may already be gone; a lost event then matters to nobody.
            with contextlib.suppress(ConnectionError, RuntimeError):
                await coro

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of the gateway's websocket."""
        if self.refusals_left > 0:
            self.refusals_left -= 1
            self.refused += 1
            self.state.changes.notify()
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = GatewayConnection(ws, dict(request.query))
        self._connections.append(conn)
        try:
            hello = {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-gateway"]}
            await conn.send({"op": 10, "s": None, "t": None, "d": hello})
            async for msg in ws:
                try:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        raise ValueError("the gateway takes JSON text frames")
                    frame = json.loads(msg.data)
                    if not isinstance(frame, dict):
                        raise ValueError("a gateway payload is a JSON object")
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                await self._on_frame(conn, frame)
        finally:
            conn.ready = False
            self._connections.remove(conn)
            self.state.changes.notify()
        return ws

    async def _on_frame(self, conn: GatewayConnection, frame: JSONObject) -> None:
        op = frame.get("op")
        data = frame.get("d")
        recorded = copy.deepcopy(frame)
        if isinstance(recorded.get("d"), dict) and "token" in recorded["d"]:
            recorded["d"]["token"] = "<redacted>"
        self.frames.append(recorded)
        self.state.changes.notify()
        if op == 1:
            await conn.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2 and isinstance(data, dict):
            await self._identify(conn, data)
        elif op == 6 and isinstance(data, dict):
            await self._resume(conn, data)
        elif op in (3, 4):
            pass
        elif op == 8 and isinstance(data, dict) and conn.session is not None:
            await self._members_chunk(conn, data)
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: GatewayConnection, data: JSONObject) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if not data.get("token"):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        who = self.state.identity
        intents = int(data.get("intents") or 0)
        shard = data.get("shard")
        session = GatewaySession(secrets.token_hex(16), intents, shard)
        self._sessions[session.id] = session
        conn.session = session
        ready: JSONObject = {
            "v": 10,
            "user": builders.bot_user(who),
            "guilds": [{"id": str(who.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._url(),
            "application": {"id": str(who.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        if shard is not None:
            ready["shard"] = shard
        await conn.dispatch("READY", ready)
        # Discord sends GUILD_CREATE only to bots that asked for the GUILDS intent.
        if intents & INTENT_GUILDS:
            channels = list(self.state.channels.values())
            await conn.dispatch("GUILD_CREATE", builders.guild_create(who, channels))
        conn.ready = True
        self.ready_count += 1
        self.state.changes.notify()

    async def _resume(self, conn: GatewayConnection, data: JSONObject) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or not data.get("token"):
            await conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        conn.session = session
        last_seen = int(data.get("seq") or 0)
        async with conn.lock:
            for frame in list(session.history):
                if frame["s"] > last_seen:
                    await conn.ws.send_str(builders.to_json(frame))
        await conn.dispatch("RESUMED", {"_trace": ["fake-gateway"]})
        conn.ready = True
        self.ready_count += 1
        self.state.changes.notify()

    async def _members_chunk(self, conn: GatewayConnection, data: JSONObject) -> None:
        user_ids = {str(u) for u in data.get("user_ids") or []}
        members = [builders.bot_member(self.state.identity)]
        if user_ids:
            members = [m for m in members if m["user"]["id"] in user_ids]
        chunk: JSONObject = {
            "guild_id": str(self.state.identity.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)
