"""A fake Discord (REST API and gateway on 127.0.0.1) that the real discord.py bot runs against."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

import aiohttp
import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.kit.discord_limits import validate_message_payload
from tests.kit.snowflakes import SnowflakeSource, snowflake_at, snowflake_time

DEFAULT_APPLICATION_ID = 1_181_000_000_000_000_001
DEFAULT_BOT_USER_ID = 1_181_000_000_000_000_002
DEFAULT_GUILD_ID = 1_181_000_000_000_000_003
DEFAULT_CHANNEL_ID = 1_181_000_000_000_000_004
DEFAULT_USER_ID = 1_181_000_000_000_000_005
FAKE_BOT_TOKEN = "fake-bot-token"

API_PREFIX = "/api/v10"
ACK_WINDOW_SECONDS = 3.0
TOKEN_LIFETIME = timedelta(minutes=15)
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
HEARTBEAT_INTERVAL_MS = 41_250

SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12

_MESSAGE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
_CHANNEL_MESSAGE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
_BODY_ERROR_CODES = frozenset({50035, 50006, 50109})
_RECORDED_HEADERS = ("Content-Type", "User-Agent", "X-Audit-Log-Reason")
# Predicates may depend on the clock as well as on the fake's state.
_POLL_INTERVAL = 0.05

_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value
_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value

EditVia = Literal["callback", "webhook", "channel"]
JSONObject = dict[str, Any]


@dataclass
class RecordedRequest:
    """One REST request the bot made, and how the fake answered it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    has_authorization: bool
    time: float
    files: list[str] = field(default_factory=list)
    status: int = 0
    response: Any = None

    @property
    def error_code(self) -> int | None:
        if isinstance(self.response, dict):
            code = self.response.get("code")
            return code if isinstance(code, int) else None
        return None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass(frozen=True)
class CallbackRecord:
    """An accepted interaction callback: its type, its data and how long after dispatch it came."""

    type: int
    data: JSONObject | None
    elapsed: float


@dataclass(frozen=True)
class EditRecord:
    """One change to a message: which route made it, the body it sent, when (monotonic)."""

    via: EditVia
    payload: JSONObject
    time: float


@dataclass(eq=False)
class FakeMessage:
    """A message as the fake Discord stores it."""

    id: int
    channel_id: int
    guild_id: int | None
    author: JSONObject
    type: int
    created_at: datetime
    webhook_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: JSONObject | None = None
    content: str = ""
    embeds: list[JSONObject] = field(default_factory=list)
    components: list[JSONObject] = field(default_factory=list)
    attachments: list[JSONObject] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    edited_at: datetime | None = None
    deleted: bool = False
    edits: list[EditRecord] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def payload(self) -> JSONObject:
        """The message object Discord would return for this message now."""
        data: JSONObject = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": dict(self.author),
            "content": self.content,
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "attachments": copy.deepcopy(self.attachments),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": self.tts,
            "timestamp": self.created_at.isoformat(),
            "edited_timestamp": self.edited_at.isoformat() if self.edited_at else None,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = copy.deepcopy(self.interaction_metadata)
        return data


class _Changes:
    """Wakes waiters whenever the fake's state changes, so waiting costs no busy polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(
        self, predicate: Callable[[], bool], within: float, describe: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(describe())
            event = self._event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, _POLL_INTERVAL))


class FakeInteraction:
    """An interaction the fake dispatched, and what the bot did with it."""

    def __init__(
        self,
        *,
        id: int,
        token: str,
        type: int,
        channel_id: int,
        guild_id: int | None,
        user: JSONObject,
        payload: JSONObject,
        message_id: int | None,
        changes: _Changes,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.user = user
        self.payload = payload
        self.message_id = message_id
        self.created_at = snowflake_time(id)
        self.dispatched_at = 0.0
        self.callback: CallbackRecord | None = None
        self.followup_ids: list[int] = []
        self.original_message_id: int | None = None
        self.token_revoked = False
        self._changes = changes

    @property
    def expires_at(self) -> datetime:
        return self.created_at + TOKEN_LIFETIME

    def token_expired(self) -> bool:
        return self.token_revoked or datetime.now(UTC) >= self.expires_at

    async def wait_callback(self, timeout: float = 5.0) -> CallbackRecord:  # noqa: ASYNC109
        await self._changes.until(
            lambda: self.callback is not None,
            timeout,
            lambda: f"interaction {self.id} got no accepted callback within {timeout}s",
        )
        assert self.callback is not None
        return self.callback

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} callback={self.callback}>"


@dataclass(frozen=True)
class _Upload:
    filename: str
    size: int
    content_type: str


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _DiscordError(Exception):
    def __init__(
        self, status: int, code: int, message: str, errors: JSONObject | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def reply(self) -> _Reply:
        body: JSONObject = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return _Reply(self.status, body)


@dataclass
class _Injection:
    method: str
    path_pattern: str
    reply: _Reply
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatchcase(path, self.path_pattern)


@dataclass(frozen=True)
class _Call:
    request: RecordedRequest
    params: dict[str, str]
    uploads: list[_Upload]

    @property
    def body(self) -> JSONObject:
        body = self.request.json
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise _invalid_form({"_errors": [_form_error("Must be an object.")]})
        return body


@dataclass(eq=False)
class _GatewaySession:
    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    history: deque[JSONObject] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass(eq=False)
class _GatewayConnection:
    ws: web.WebSocketResponse
    query: dict[str, str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: _GatewaySession | None = None
    ready: bool = False

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, frame: JSONObject) -> None:
        async with self.lock:
            await self.ws.send_str(_dumps(frame))

    async def dispatch(self, event: str, data: JSONObject) -> None:
        session = self.session
        if session is None:
            raise RuntimeError("dispatch before IDENTIFY or RESUME")
        # Sequence numbers must reach the bot in the order they are handed out.
        async with self.lock:
            session.seq += 1
            frame: JSONObject = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.history.append(frame)
            await self.ws.send_str(_dumps(frame))


_Handler = Callable[[_Call], _Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler
    bot_token: bool


class FakeDiscord:
    """Discord's REST API and gateway as far as the bot uses them, with recording and faults."""

    def __init__(
        self,
        *,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int = DEFAULT_BOT_USER_ID,
        guild_id: int = DEFAULT_GUILD_ID,
        channel_id: int = DEFAULT_CHANNEL_ID,
        ack_window: float = ACK_WINDOW_SECONDS,
    ) -> None:
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.ack_window = ack_window

        self.requests: list[RecordedRequest] = []
        self.rejected: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.registered_commands: dict[str, list[JSONObject]] = {}
        self.gateway_frames: list[JSONObject] = []
        self.ready_count = 0

        self._changes = _Changes()
        self._ids = SnowflakeSource()
        self._started_at = datetime.now(UTC)
        self._bot_role_id = self._ids.next()
        self._commands: dict[str, list[JSONObject]] = {}
        self._command_ids: dict[tuple[str, int, str], int] = {}
        self._by_token: dict[str, FakeInteraction] = {}
        self._injections: list[_Injection] = []
        self._revoked_channels: set[int] = set()
        self._channels: dict[int, JSONObject] = {channel_id: self._text_channel(channel_id)}
        self._sessions: dict[str, _GatewaySession] = {}
        self._connections: list[_GatewayConnection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes = self._build_routes()

    # lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle_rest)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        for conn in list(self._connections):
            await conn.ws.close(code=1001, message=b"fake Discord shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        return f"{self._origin}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._require_port()}/gateway"

    @property
    def _origin(self) -> str:
        return f"http://127.0.0.1:{self._require_port()}"

    def _require_port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake; restore both on exit."""
        api_base, gateway = self.api_base, yarl.URL(self.gateway_url)
        saved_base, saved_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE = api_base
        DiscordWebSocket.DEFAULT_GATEWAY = gateway
        try:
            yield
        finally:
            Route.BASE = saved_base
            DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway

    @contextlib.asynccontextmanager
    async def running(
        self,
        client: discord.Client,
        token: str = FAKE_BOT_TOKEN,
        *,
        timeout: float = 10,  # noqa: ASYNC109
        drain_timeout: float = 1.0,
    ) -> AsyncIterator[None]:
        """Run `client.start(token)` until the block ends; it must be ready when the block starts.

        Use inside `patch_discord()`. On exit, app command handlers still running get
        `drain_timeout` seconds to finish and are then cancelled; the client is closed
        and its task awaited.
        """
        ready_before = self.ready_count
        task = asyncio.create_task(client.start(token), name="fake-discord-client")
        try:
            await self.wait_for(
                lambda: (
                    task.done() or (self.ready_count > ready_before and self._ready_connected())
                ),
                timeout,
            )
            if task.done():
                task.result()
                raise AssertionError("the client stopped before it was ready")
            yield
        finally:
            await _drain_command_handlers(drain_timeout)
            await client.close()
            await task

    # waiting

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10,  # noqa: ASYNC109
    ) -> None:
        """Wait until `predicate()` is true; fail with the recent traffic if it never becomes so."""

        def describe() -> str:
            name = getattr(predicate, "__qualname__", repr(predicate))
            recent = ", ".join(str(r) for r in self.requests[-8:]) or "none"
            return f"condition {name} not met within {timeout}s; last requests: {recent}"

        await self._changes.until(predicate, timeout, describe)

    async def wait_ready(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until a bot has identified (or resumed) and got READY and its guilds."""
        await self._changes.until(
            self._ready_connected,
            timeout,
            lambda: f"no bot became ready on the fake gateway within {timeout}s",
        )

    def _ready_connected(self) -> bool:
        return self._active_connection() is not None

    def _active_connection(self) -> _GatewayConnection | None:
        for conn in reversed(self._connections):
            if conn.ready and conn.open:
                return conn
        return None

    # interactions

    async def interact(
        self,
        *,
        name: str = "suno",
        subcommand: str | None = "status",
        options: dict[str, str | bool | int] | None = None,
        locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
        channel_id: int | None = None,
        guild: bool = True,
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Dispatch a slash command (INTERACTION_CREATE, type 2) to the connected bot.

        `subcommand` may be "group sub" for a command inside a subcommand group.
        `created_at` sets the interaction id's time, which is when its token starts to age.
        """
        data = self._command_data(name, subcommand, options or {}, guild=guild)
        return await self._dispatch_interaction(
            2,
            data,
            user_id=user_id,
            channel_id=channel_id,
            guild=guild,
            locale=locale,
            created_at=created_at,
            message=None,
        )

    async def press_button(
        self,
        message_id: int,
        custom_id: str,
        *,
        locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
    ) -> FakeInteraction:
        """Dispatch a button press (INTERACTION_CREATE, type 3) on a stored message."""
        message = self.messages[message_id]
        return await self._dispatch_interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user_id=user_id,
            channel_id=message.channel_id,
            guild=message.guild_id is not None,
            locale=locale,
            created_at=None,
            message=message,
        )

    def message_for(self, interaction: FakeInteraction) -> FakeMessage | None:
        """The interaction's original response message, if it has one."""
        mid = interaction.original_message_id
        return None if mid is None else self.messages.get(mid)

    async def _dispatch_interaction(
        self,
        itype: int,
        data: JSONObject,
        *,
        user_id: int,
        channel_id: int | None,
        guild: bool,
        locale: str,
        created_at: datetime | None,
        message: FakeMessage | None,
    ) -> FakeInteraction:
        conn = self._active_connection()
        if conn is None:
            raise AssertionError("no bot is connected and ready on the fake gateway")
        iid = self._ids.next(created_at)
        token = _interaction_token(iid)
        user = _user(user_id)
        if guild:
            cid = channel_id or self.channel_id
            self._channels.setdefault(cid, self._text_channel(cid))
        else:
            cid = channel_id or snowflake_at(self._started_at, user_id)
            self._channels.setdefault(cid, _dm_channel(cid, user))
        payload = self._interaction_payload(
            iid, token, itype, data, user=user, channel_id=cid, guild=guild, locale=locale
        )
        if message is not None:
            payload["message"] = message.payload
        inter = FakeInteraction(
            id=iid,
            token=token,
            type=itype,
            channel_id=cid,
            guild_id=self.guild_id if guild else None,
            user=user,
            payload=payload,
            message_id=message.id if message else None,
            changes=self._changes,
        )
        self.interactions[iid] = inter
        self._by_token[token] = inter
        inter.dispatched_at = time.monotonic()
        await conn.dispatch("INTERACTION_CREATE", payload)
        self._changes.notify()
        return inter

    def _command_data(
        self, name: str, subcommand: str | None, values: dict[str, str | bool | int], *, guild: bool
    ) -> JSONObject:
        command, scope = self._find_command(name, guild=guild)
        schema: list[JSONObject] = list(command.get("options") or []) if command else []
        path = subcommand.split() if subcommand else []
        for part in path:
            schema = next(
                (list(o.get("options") or []) for o in schema if o.get("name") == part), []
            )
        options: list[JSONObject] = [
            {"name": key, "type": _option_type(schema, key, value), "value": value}
            for key, value in values.items()
        ]
        for depth in range(len(path) - 1, -1, -1):
            otype = 1 if depth == len(path) - 1 else 2
            options = [{"name": path[depth], "type": otype, "options": options}]
        if command is not None:
            command_id = int(command["id"])
        else:
            command_id = self._command_id("global", 1, name)
        data: JSONObject = {"id": str(command_id), "name": name, "type": 1, "options": options}
        if scope != "global":
            data["guild_id"] = scope
        return data

    def _find_command(self, name: str, *, guild: bool) -> tuple[JSONObject | None, str]:
        scopes = [str(self.guild_id), "global"] if guild else ["global"]
        for scope in scopes:
            for command in self._commands.get(scope, []):
                if command.get("name") == name and command.get("type", 1) == 1:
                    return command, scope
        return None, "global"

    def _command_id(self, scope: str, ctype: int, name: str) -> int:
        key = (scope, ctype, name)
        if key not in self._command_ids:
            self._command_ids[key] = self._ids.next()
        return self._command_ids[key]

    # fault injection and state changes

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int,
        body: JSONObject,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` matching requests with this status and body.

        `path_pattern` is matched against the path without /api/v10 and without the query;
        `*` matches any run of characters (including `/`); method "*" matches any method.
        """
        reply = _Reply(status, body, dict(headers or {}))
        self._injections.append(_Injection(method.upper(), path_pattern, reply, times))

    def rate_limit_next(
        self, method: str, path_pattern: str, *, retry_after: float = 0.05, times: int = 1
    ) -> None:
        """Answer the next matching requests with a proper per-route 429 that discord.py retries."""
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": "user",
        }
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
        }
        self.fail_next(method, path_pattern, status=429, body=body, times=times, headers=headers)

    def expire_token(self, token: str) -> None:
        """From now on, every route with this interaction token answers 401 code 50027."""
        self._by_token[token].token_revoked = True

    def delete_message(self, message_id: int) -> None:
        """Delete a message as a user or moderator would; later edits answer 404 code 10008."""
        self._mark_deleted(self.messages[message_id])

    def revoke_channel_access(self, channel_id: int) -> None:
        """Take the bot's access to a channel away: its channel routes answer 403 code 50001."""
        self._revoked_channels.add(channel_id)

    def _mark_deleted(self, message: FakeMessage) -> None:
        message.deleted = True
        self._changes.notify()
        conn = self._active_connection()
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

    # REST plumbing

    def _build_routes(self) -> list[_Route]:
        app = r"(?P<app>\d+)"
        token = r"(?P<token>[^/]+)"
        webhook_message = rf"/webhooks/{app}/{token}/messages/(?P<mid>@original|\d+)"
        channel_message = r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("PUT", rf"/applications/{app}/commands", self._put_commands, True),
            ("GET", rf"/applications/{app}/commands", self._get_commands, True),
            (
                "PUT",
                rf"/applications/{app}/guilds/(?P<guild>\d+)/commands",
                self._put_commands,
                True,
            ),
            (
                "GET",
                rf"/applications/{app}/guilds/(?P<guild>\d+)/commands",
                self._get_commands,
                True,
            ),
            ("POST", rf"/interactions/(?P<iid>\d+)/{token}/callback", self._post_callback, False),
            ("GET", webhook_message, self._get_webhook_message, False),
            ("PATCH", webhook_message, self._patch_webhook_message, False),
            ("DELETE", webhook_message, self._delete_webhook_message, False),
            ("POST", rf"/webhooks/{app}/{token}", self._post_followup, False),
            ("GET", channel_message, self._get_channel_message, True),
            ("PATCH", channel_message, self._patch_channel_message, True),
            ("DELETE", channel_message, self._delete_channel_message, True),
            ("POST", r"/channels/(?P<cid>\d+)/messages", self._post_channel_message, True),
        ]
        return [_Route(m, re.compile(p), h, auth) for m, p, h, auth in table]

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        raw_path = "/" + request.match_info["tail"]
        in_api = raw_path.startswith(API_PREFIX + "/")
        path = raw_path.removeprefix(API_PREFIX) if in_api else raw_path
        bad_json = False
        try:
            body, uploads = await _read_body(request)
        except ValueError:
            body, uploads, bad_json = None, [], True
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            headers={k: v for k in _RECORDED_HEADERS if (v := request.headers.get(k)) is not None},
            has_authorization="Authorization" in request.headers,
            time=time.monotonic(),
            files=[u.filename for u in uploads],
        )
        self.requests.append(record)
        reply = self._injected(record)
        if reply is None:
            try:
                if bad_json:
                    raise _DiscordError(400, 50109, "The request body contains invalid JSON.")
                reply = self._route(record, uploads, in_api=in_api)
            except _DiscordError as exc:
                reply = exc.reply()
                if exc.code in _BODY_ERROR_CODES:
                    self.rejected.append(record)
        record.status = reply.status
        record.response = reply.body
        self._changes.notify()
        return _to_response(reply, _bucket_hash(record.method, path))

    def _injected(self, record: RecordedRequest) -> _Reply | None:
        for injection in self._injections:
            if injection.remaining > 0 and injection.matches(record.method, record.path):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return _Reply(
                    injection.reply.status, injection.reply.body, dict(injection.reply.headers)
                )
        return None

    def _route(self, record: RecordedRequest, uploads: list[_Upload], *, in_api: bool) -> _Reply:
        path_known = False
        for route in self._routes if in_api else ():
            match = route.pattern.fullmatch(record.path)
            if match is None:
                continue
            path_known = True
            if route.method != record.method:
                continue
            if route.bot_token and not record.has_authorization:
                raise _DiscordError(401, 0, "401: Unauthorized")
            return route.handler(_Call(record, match.groupdict(), uploads))
        self.unexpected.append(record)
        if path_known:
            raise _DiscordError(405, 0, "405: Method Not Allowed")
        raise _DiscordError(404, 0, "404: Not Found")

    # REST handlers: identity and gateway

    def _get_me(self, call: _Call) -> _Reply:
        return _Reply(200, self._bot_user())

    def _get_application(self, call: _Call) -> _Reply:
        return _Reply(
            200,
            {
                "id": str(self.application_id),
                "name": "Suno Status (fake)",
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": _user(DEFAULT_USER_ID),
                "team": None,
                "flags": 0,
                "bot": self._bot_user(),
            },
        )

    def _get_gateway(self, call: _Call) -> _Reply:
        return _Reply(200, {"url": self.gateway_url})

    def _get_gateway_bot(self, call: _Call) -> _Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _Reply(200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    # REST handlers: application commands

    def _command_scope(self, call: _Call) -> str:
        if int(call.params["app"]) != self.application_id:
            raise _DiscordError(
                403, 20012, "You are not authorized to perform this action on this application"
            )
        guild = call.params.get("guild")
        if guild is None:
            return "global"
        if int(guild) != self.guild_id:
            raise _DiscordError(403, 50001, "Missing Access")
        return guild

    def _put_commands(self, call: _Call) -> _Reply:
        scope = self._command_scope(call)
        commands = call.request.json
        if not isinstance(commands, list):
            raise _invalid_form({"_errors": [_form_error("Must be an array.")]})
        problems = _command_violations(commands)
        if problems:
            raise _invalid_form(_errors_tree(problems))
        echoed = [self._registered_command(scope, dict(c)) for c in commands]
        self.registered_commands[scope] = copy.deepcopy(commands)
        self._commands[scope] = echoed
        return _Reply(200, copy.deepcopy(echoed))

    def _registered_command(self, scope: str, command: JSONObject) -> JSONObject:
        ctype = int(command.get("type", 1))
        echoed: JSONObject = {
            "type": ctype,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "integration_types": [0],
            "contexts": None,
            "name_localizations": None,
            "description_localizations": None,
            **command,
            "id": str(self._command_id(scope, ctype, str(command["name"]))),
            "application_id": str(self.application_id),
            "version": str(self._ids.next()),
        }
        if scope != "global":
            echoed["guild_id"] = scope
        return echoed

    def _get_commands(self, call: _Call) -> _Reply:
        scope = self._command_scope(call)
        return _Reply(200, copy.deepcopy(self._commands.get(scope, [])))

    # REST handlers: interaction callback and webhooks

    def _post_callback(self, call: _Call) -> _Reply:
        inter = self.interactions.get(int(call.params["iid"]))
        if inter is None or inter.token != call.params["token"]:
            raise _DiscordError(404, 10062, "Unknown interaction")
        if inter.token_expired():
            raise _DiscordError(401, 50027, "Invalid Webhook Token")
        if inter.callback is not None:
            raise _DiscordError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - inter.dispatched_at
        if elapsed > self.ack_window:
            raise _DiscordError(404, 10062, "Unknown interaction")
        body = call.body
        ctype = body.get("type")
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9)}.get(inter.type, ())
        if not isinstance(ctype, int) or ctype not in allowed:
            raise _invalid_form(
                _errors_tree([f"type: Value must be one of {allowed} for this interaction."])
            )
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            raise _invalid_form(_errors_tree(["data: Must be an object."]))
        message = self._apply_callback(inter, ctype, data or {}, call.uploads)
        inter.callback = CallbackRecord(ctype, copy.deepcopy(data), elapsed)
        if not _truthy(call.request.query.get("with_response")):
            return _Reply(204)
        result: JSONObject = {"id": str(inter.id), "type": inter.type}
        response: JSONObject = {"interaction": result}
        if message is not None:
            result["response_message_id"] = str(message.id)
            result["response_message_loading"] = message.loading
            result["response_message_ephemeral"] = message.ephemeral
            response["resource"] = {"type": ctype, "message": message.payload}
        elif ctype in (6, 9):
            response["resource"] = {"type": ctype}
        return _Reply(200, response)

    def _apply_callback(
        self, inter: FakeInteraction, ctype: int, data: JSONObject, uploads: list[_Upload]
    ) -> FakeMessage | None:
        if ctype == 4:
            return self._create_message(
                data,
                uploads,
                via="callback",
                channel_id=inter.channel_id,
                guild_id=inter.guild_id,
                mtype=20 if inter.type == 2 else 0,
                flags_allowed=_MESSAGE_FLAGS,
                interaction=inter,
                original=True,
                problem_prefix="data.",
            )
        if ctype == 5:
            flags = data.get("flags") or 0
            if not isinstance(flags, int):
                raise _invalid_form(_errors_tree(["data.flags: Must be an integer."]))
            return self._create_message(
                {"flags": flags & EPHEMERAL},
                [],
                via="callback",
                channel_id=inter.channel_id,
                guild_id=inter.guild_id,
                mtype=20 if inter.type == 2 else 0,
                flags_allowed=EPHEMERAL,
                interaction=inter,
                original=True,
                problem_prefix="data.",
                loading=True,
            )
        if ctype in (6, 7) and inter.message_id is not None:
            target = self.messages[inter.message_id]
            if ctype == 7:
                self._edit_message(target, data, uploads, via="callback", problem_prefix="data.")
            # For a component interaction, "@original" is the message the component is on.
            inter.original_message_id = target.id
            return target
        return None

    def _webhook_interaction(self, call: _Call) -> FakeInteraction:
        if int(call.params["app"]) != self.application_id:
            raise _DiscordError(404, 10015, "Unknown Webhook")
        inter = self._by_token.get(call.params["token"])
        if inter is None or inter.token_expired():
            raise _DiscordError(401, 50027, "Invalid Webhook Token")
        return inter

    def _webhook_message(self, call: _Call) -> tuple[FakeInteraction, FakeMessage]:
        inter = self._webhook_interaction(call)
        mid = call.params["mid"]
        if mid == "@original":
            message_id = inter.original_message_id
        else:
            message_id = int(mid)
            if message_id != inter.original_message_id and message_id not in inter.followup_ids:
                message_id = None
        message = self.messages.get(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise _DiscordError(404, 10008, "Unknown Message")
        return inter, message

    def _get_webhook_message(self, call: _Call) -> _Reply:
        _, message = self._webhook_message(call)
        return _Reply(200, message.payload)

    def _patch_webhook_message(self, call: _Call) -> _Reply:
        _, message = self._webhook_message(call)
        self._edit_message(message, call.body, call.uploads, via="webhook")
        return _Reply(200, message.payload)

    def _delete_webhook_message(self, call: _Call) -> _Reply:
        _, message = self._webhook_message(call)
        self._mark_deleted(message)
        return _Reply(204)

    def _post_followup(self, call: _Call) -> _Reply:
        inter = self._webhook_interaction(call)
        if inter.callback is None:
            raise _DiscordError(404, 10015, "Unknown Webhook")
        original = self.message_for(inter)
        body = call.body
        if original is not None and original.loading and not original.deleted:
            # Discord's compatibility rule: the first followup after a deferred
            # response replaces the "thinking" message instead of posting a new one.
            self._edit_message(original, body, call.uploads, via="webhook")
            message = original
        else:
            message = self._create_message(
                body,
                call.uploads,
                via="webhook",
                channel_id=inter.channel_id,
                guild_id=inter.guild_id,
                mtype=0,
                flags_allowed=_MESSAGE_FLAGS,
                interaction=inter,
                original=False,
            )
            inter.followup_ids.append(message.id)
        if not _truthy(call.request.query.get("wait")):
            return _Reply(204)
        return _Reply(200, message.payload)

    # REST handlers: channel messages (bot token)

    def _channel(self, call: _Call) -> JSONObject:
        cid = int(call.params["cid"])
        if cid in self._revoked_channels:
            raise _DiscordError(403, 50001, "Missing Access")
        channel = self._channels.get(cid)
        if channel is None:
            raise _DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _channel_message(self, call: _Call) -> FakeMessage:
        channel = self._channel(call)
        message = self.messages.get(int(call.params["mid"]))
        if (
            message is None
            or message.deleted
            or message.ephemeral
            or message.channel_id != int(channel["id"])
        ):
            raise _DiscordError(404, 10008, "Unknown Message")
        return message

    def _get_channel_message(self, call: _Call) -> _Reply:
        return _Reply(200, self._channel_message(call).payload)

    def _patch_channel_message(self, call: _Call) -> _Reply:
        message = self._channel_message(call)
        self._edit_message(message, call.body, call.uploads, via="channel")
        return _Reply(200, message.payload)

    def _delete_channel_message(self, call: _Call) -> _Reply:
        self._mark_deleted(self._channel_message(call))
        return _Reply(204)

    def _post_channel_message(self, call: _Call) -> _Reply:
        channel = self._channel(call)
        guild_id = channel.get("guild_id")
        message = self._create_message(
            call.body,
            call.uploads,
            via="channel",
            channel_id=int(channel["id"]),
            guild_id=int(guild_id) if guild_id else None,
            mtype=0,
            flags_allowed=_CHANNEL_MESSAGE_FLAGS,
            interaction=None,
            original=False,
        )
        return _Reply(200, message.payload)

    # messages

    def _create_message(
        self,
        body: JSONObject,
        uploads: list[_Upload],
        *,
        via: EditVia,
        channel_id: int,
        guild_id: int | None,
        mtype: int,
        flags_allowed: int,
        interaction: FakeInteraction | None,
        original: bool,
        problem_prefix: str = "",
        loading: bool = False,
    ) -> FakeMessage:
        _check_body(body, uploads, problem_prefix)
        if not loading and _would_be_empty(None, body, uploads):
            raise _DiscordError(400, 50006, "Cannot send an empty message")
        flags = int(body.get("flags") or 0) & flags_allowed
        if loading:
            flags |= LOADING
        message = FakeMessage(
            id=self._ids.next(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=self._bot_user(),
            type=mtype,
            created_at=datetime.now(UTC),
            webhook_id=self.application_id if interaction else None,
            interaction_id=interaction.id if interaction else None,
            flags=flags,
            tts=bool(body.get("tts", False)),
        )
        if interaction is not None:
            message.interaction_metadata = self._interaction_metadata(interaction, original)
        self._apply_body(message, body, uploads)
        message.edits.append(EditRecord(via, copy.deepcopy(body), time.monotonic()))
        self.messages[message.id] = message
        if interaction is not None and original:
            interaction.original_message_id = message.id
        return message

    def _edit_message(
        self,
        message: FakeMessage,
        body: JSONObject,
        uploads: list[_Upload],
        *,
        via: EditVia,
        problem_prefix: str = "",
    ) -> None:
        _check_body(body, uploads, problem_prefix)
        if _would_be_empty(message, body, uploads):
            raise _DiscordError(400, 50006, "Cannot send an empty message")
        self._apply_body(message, body, uploads)
        flags = body.get("flags")
        if isinstance(flags, int):
            message.flags = (message.flags & ~SUPPRESS_EMBEDS) | (flags & SUPPRESS_EMBEDS)
        message.flags &= ~LOADING
        message.edited_at = datetime.now(UTC)
        message.edits.append(EditRecord(via, copy.deepcopy(body), time.monotonic()))

    def _apply_body(self, message: FakeMessage, body: JSONObject, uploads: list[_Upload]) -> None:
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            message.components = copy.deepcopy(body["components"] or [])
        if "attachments" in body or uploads:
            message.attachments = self._attachments(message, body.get("attachments"), uploads)

    def _attachments(
        self, message: FakeMessage, listed: list[JSONObject] | None, uploads: list[_Upload]
    ) -> list[JSONObject]:
        existing = {a["id"]: a for a in message.attachments}
        if listed is None:
            kept = list(message.attachments)
            new_uploads = list(uploads)
        else:
            items = [a for a in listed if isinstance(a, dict)]
            kept = [existing[str(a.get("id"))] for a in items if str(a.get("id")) in existing]
            new_uploads = [
                uploads[a["id"]]
                for a in items
                if isinstance(a.get("id"), int) and 0 <= a["id"] < len(uploads)
            ]
        for upload in new_uploads:
            aid = self._ids.next()
            url = f"https://cdn.discordapp.com/attachments/{message.channel_id}/{aid}/{upload.filename}"
            kept.append(
                {
                    "id": str(aid),
                    "filename": upload.filename,
                    "size": upload.size,
                    "url": url,
                    "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
                    "content_type": upload.content_type,
                }
            )
        return kept

    def _interaction_metadata(self, inter: FakeInteraction, original: bool) -> JSONObject:
        metadata: JSONObject = {
            "id": str(inter.id),
            "type": inter.type,
            "user": dict(inter.user),
            "authorizing_integration_owners": dict(inter.payload["authorizing_integration_owners"]),
        }
        if inter.type == 2:
            metadata["name"] = inter.payload["data"]["name"]
            metadata["command_type"] = 1
        if inter.message_id is not None:
            metadata["interacted_message_id"] = str(inter.message_id)
        if not original and inter.original_message_id is not None:
            metadata["original_response_message_id"] = str(inter.original_message_id)
        return metadata

    # payloads

    def _bot_user(self) -> JSONObject:
        return {
            "id": str(self.bot_user_id),
            "username": "Suno Status",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
        }

    def _text_channel(self, channel_id: int) -> JSONObject:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "general"
            if channel_id == self.channel_id
            else f"channel-{channel_id % 10_000}",
            "position": 0,
            "permission_overwrites": [],
            "parent_id": None,
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _bot_member(self) -> JSONObject:
        return {
            "user": self._bot_user(),
            "roles": [str(self._bot_role_id)],
            "joined_at": self._started_at.isoformat(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }

    def _guild_create(self) -> JSONObject:
        text_channels = [c for c in self._channels.values() if c["type"] == 0]
        return {
            "id": str(self.guild_id),
            "name": "Fake Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(DEFAULT_USER_ID),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": "en-US",
            "features": [],
            "application_id": None,
            "joined_at": self._started_at.isoformat(),
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "max_members": 500_000,
            "roles": [
                _role(self.guild_id, "@everyone", _EVERYONE_PERMISSIONS, 0),
                {
                    **_role(self._bot_role_id, "Suno Status", _BOT_PERMISSIONS, 1),
                    "managed": True,
                    "tags": {"bot_id": str(self.bot_user_id)},
                },
            ],
            "channels": copy.deepcopy(text_channels),
            "threads": [],
            "members": [self._bot_member()],
            "voice_states": [],
            "presences": [],
            "emojis": [],
            "stickers": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _interaction_payload(
        self,
        iid: int,
        token: str,
        itype: int,
        data: JSONObject,
        *,
        user: JSONObject,
        channel_id: int,
        guild: bool,
        locale: str,
    ) -> JSONObject:
        app_permissions = _BOT_PERMISSIONS
        if channel_id in self._revoked_channels:
            app_permissions &= ~discord.Permissions(view_channel=True).value
        payload: JSONObject = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "app_permissions": str(app_permissions),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "channel_id": str(channel_id),
            "channel": copy.deepcopy(self._channels[channel_id]),
        }
        if guild:
            payload["channel"]["permissions"] = str(_EVERYONE_PERMISSIONS)
            payload.update(
                guild_id=str(self.guild_id),
                guild={"id": str(self.guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                context=0,
                authorizing_integration_owners={"0": str(self.guild_id)},
                member={
                    "user": user,
                    "roles": [],
                    "joined_at": self._started_at.isoformat(),
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                    "pending": False,
                    "nick": None,
                    "avatar": None,
                    "premium_since": None,
                    "communication_disabled_until": None,
                    "permissions": str(_EVERYONE_PERMISSIONS),
                },
            )
        else:
            payload.update(
                user=user,
                context=1,
                authorizing_integration_owners={"0": "0"},
            )
        return payload

    # gateway

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _GatewayConnection(ws, dict(request.query))
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
                await self._on_gateway_frame(conn, frame)
        finally:
            conn.ready = False
            self._connections.remove(conn)
            self._changes.notify()
        return ws

    async def _on_gateway_frame(self, conn: _GatewayConnection, frame: JSONObject) -> None:
        op = frame.get("op")
        data = frame.get("d")
        recorded = copy.deepcopy(frame)
        if isinstance(recorded.get("d"), dict) and "token" in recorded["d"]:
            recorded["d"]["token"] = "<redacted>"
        self.gateway_frames.append(recorded)
        self._changes.notify()
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

    async def _identify(self, conn: _GatewayConnection, data: JSONObject) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if not data.get("token"):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        shard = data.get("shard")
        session = _GatewaySession(secrets.token_hex(16), intents, shard)
        self._sessions[session.id] = session
        conn.session = session
        ready: JSONObject = {
            "v": 10,
            "user": self._bot_user(),
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
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
            await conn.dispatch("GUILD_CREATE", self._guild_create())
        conn.ready = True
        self.ready_count += 1
        self._changes.notify()

    async def _resume(self, conn: _GatewayConnection, data: JSONObject) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or not data.get("token"):
            await conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        conn.session = session
        last_seen = int(data.get("seq") or 0)
        async with conn.lock:
            for frame in list(session.history):
                if frame["s"] > last_seen:
                    await conn.ws.send_str(_dumps(frame))
        await conn.dispatch("RESUMED", {"_trace": ["fake-gateway"]})
        conn.ready = True
        self.ready_count += 1
        self._changes.notify()

    async def _members_chunk(self, conn: _GatewayConnection, data: JSONObject) -> None:
        user_ids = {str(u) for u in data.get("user_ids") or []}
        members = [self._bot_member()]
        if user_ids:
            members = [m for m in members if m["user"]["id"] in user_ids]
        chunk: JSONObject = {
            "guild_id": str(self.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def drop_gateway(self, *, code: int = 4000) -> None:
        """Close the bot's gateway connection as Discord does on a hiccup; discord.py resumes."""
        conn = self._active_connection()
        if conn is None:
            raise AssertionError("no bot is connected to the fake gateway")
        conn.ready = False
        await conn.ws.close(code=code, message=b"fake gateway hiccup")


async def _drain_command_handlers(grace: float) -> None:
    # discord.py runs each app command in a task of this name that nobody awaits; closing the
    # client under one makes it fail on a closed session, or leaves it pending at loop close.
    handlers = [t for t in asyncio.all_tasks() if t.get_name() == "CommandTree-invoker"]
    if not handlers:
        return
    _, pending = await asyncio.wait(handlers, timeout=grace)
    for handler in pending:
        handler.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


# message body rules


def _violations(payload: JSONObject) -> list[str]:
    """Discord's rules for a message body, as `path: problem` lines; empty when valid."""
    problems = validate_message_payload(payload)
    flags = payload.get("flags")
    if flags is not None and (not isinstance(flags, int) or flags & ~_MESSAGE_FLAGS):
        problems.append(f"flags: not allowed on a message ({flags!r})")
    mentions = payload.get("allowed_mentions")
    if mentions is not None:
        _check_allowed_mentions(mentions, problems)
    return problems


def _check_allowed_mentions(mentions: Any, problems: list[str]) -> None:
    if not isinstance(mentions, dict):
        problems.append("allowed_mentions: not an object")
        return
    parse = mentions.get("parse") or []
    if not isinstance(parse, list) or not set(parse) <= {"roles", "users", "everyone"}:
        problems.append(f"allowed_mentions.parse: unknown mention types ({parse!r})")
        return
    for kind in ("users", "roles"):
        listed = mentions.get(kind) or []
        if kind in parse and listed:
            problems.append(f"allowed_mentions: parse {kind} and a {kind} list exclude each other")
        if len(listed) > 100:
            problems.append(f"allowed_mentions.{kind}: {len(listed)} ids > 100")


_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def _command_violations(commands: list[Any]) -> list[str]:
    """Discord's rules for a bulk overwrite of application commands, like `_violations`."""
    problems: list[str] = []
    if len(commands) > 100:
        problems.append("_errors: Must be 100 or fewer in length.")
    seen: set[tuple[int, str]] = set()
    for i, command in enumerate(commands):
        if not isinstance(command, dict):
            problems.append(f"{i}: Must be an object.")
            continue
        ctype = command.get("type", 1)
        name = command.get("name")
        _check_command_names(command, str(i), problems, chat_input=ctype == 1)
        if (ctype, str(name)) in seen:
            problems.append(f"{i}.name: Application command names must be unique")
        seen.add((ctype, str(name)))
        _check_command_options(command.get("options") or [], f"{i}.options", problems)
    return problems


def _check_command_names(
    item: JSONObject, path: str, problems: list[str], *, chat_input: bool
) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        problems.append(f"{path}.name: Must be between 1 and 32 in length.")
    elif chat_input and (not _COMMAND_NAME.match(name) or name != name.lower()):
        problems.append(f"{path}.name: Command name is invalid")
    if chat_input:
        description = item.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            problems.append(f"{path}.description: Must be between 1 and 100 in length.")


def _check_command_options(options: Any, path: str, problems: list[str]) -> None:
    if not isinstance(options, list):
        problems.append(f"{path}: Must be an array.")
        return
    if len(options) > 25:
        problems.append(f"{path}: Must be 25 or fewer in length.")
    optional_seen = False
    for j, option in enumerate(options):
        where = f"{path}.{j}"
        if not isinstance(option, dict):
            problems.append(f"{where}: Must be an object.")
            continue
        _check_command_names(option, where, problems, chat_input=True)
        if option.get("type") in (1, 2):
            _check_command_options(option.get("options") or [], f"{where}.options", problems)
            continue
        if option.get("required"):
            if optional_seen:
                problems.append(
                    f"{where}.required: Required options must be placed before non-required options"
                )
        else:
            optional_seen = True
        if len(option.get("choices") or []) > 25:
            problems.append(f"{where}.choices: Must be 25 or fewer in length.")


# helpers


def _check_body(body: JSONObject, uploads: list[_Upload], problem_prefix: str) -> None:
    problems = _violations(body)
    if problems:
        raise _invalid_form(_errors_tree([problem_prefix + p for p in problems]))
    if sum(u.size for u in uploads) > ATTACHMENT_SIZE_LIMIT:
        raise _DiscordError(413, 40005, "Request entity too large")


def _would_be_empty(message: FakeMessage | None, body: JSONObject, uploads: list[_Upload]) -> bool:
    def pick(key: str, current: Any) -> Any:
        return body.get(key, current)

    content = pick("content", message.content if message else "")
    embeds = pick("embeds", message.embeds if message else [])
    components = pick("components", message.components if message else [])
    attachments = pick("attachments", message.attachments if message else [])
    extras = body.get("poll") or body.get("sticker_ids")
    return not (content or embeds or components or attachments or uploads or extras)


def _form_error(message: str) -> JSONObject:
    return {"code": "BASE_TYPE_INVALID", "message": message}


def _invalid_form(errors: JSONObject) -> _DiscordError:
    return _DiscordError(400, 50035, "Invalid Form Body", errors)


def _errors_tree(problems: list[str]) -> JSONObject:
    """Nest `a.b[0].c: message` lines the way Discord nests its 50035 `errors` object."""
    tree: JSONObject = {}
    for problem in problems:
        path, sep, message = problem.partition(": ")
        if not sep or " " in path:
            path, message = "", problem
        path = re.sub(r"\[(\d+)\]", r".\1", path)
        node = tree
        for key in (k for k in path.split(".") if k and k != "_errors"):
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append(_form_error(message))
    return tree


def _option_type(schema: list[JSONObject], name: str, value: str | bool | int) -> int:
    for option in schema:
        if option.get("name") == name and isinstance(option.get("type"), int):
            return int(option["type"])
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    return 3


def _user(user_id: int) -> JSONObject:
    return {
        "id": str(user_id),
        "username": f"user{user_id % 10_000}",
        "discriminator": "0",
        "global_name": f"User {user_id % 10_000}",
        "avatar": None,
        "public_flags": 0,
    }


def _dm_channel(channel_id: int, recipient: JSONObject) -> JSONObject:
    return {
        "id": str(channel_id),
        "type": 1,
        "recipients": [recipient],
        "last_message_id": None,
        "flags": 0,
    }


def _role(role_id: int, name: str, permissions: int, position: int) -> JSONObject:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def _interaction_token(interaction_id: int) -> str:
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(96)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bucket_hash(method: str, path: str) -> str:
    template = re.sub(r"^(/(?:webhooks|interactions)/\d+/)[^/]+", r"\1{token}", path)
    template = re.sub(r"\d{15,}", "{id}", template)
    return hashlib.sha1(f"{method} {template}".encode(), usedforsecurity=False).hexdigest()[:16]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _to_response(reply: _Reply, bucket: str) -> web.Response:
    headers = {"X-RateLimit-Bucket": bucket, **reply.headers}
    if reply.status < 300:
        # Roomy limits keep discord.py from queueing requests on one route behind each other,
        # as it does (one at a time) when Discord sends no rate limit headers at all.
        headers.update(
            {
                "X-RateLimit-Limit": "50",
                "X-RateLimit-Remaining": "49",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Reset-After": "1.000",
            }
        )
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    # discord.py parses a body as JSON only when this header is exactly "application/json".
    headers["Content-Type"] = "application/json"
    return web.Response(status=reply.status, body=_dumps(reply.body).encode(), headers=headers)


async def _read_body(request: web.Request) -> tuple[Any, list[_Upload]]:
    """The JSON body (from `payload_json` for multipart) and the uploaded files."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        body: Any = None
        uploads: list[_Upload] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                data = await part.read()
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                uploads.append(_Upload(part.filename or "file", len(data), content_type))
        return body, uploads
    raw = await request.read()
    if not raw:
        return None, []
    return json.loads(raw), []
