"""Discord's REST API as far as the bot uses it: routes, handlers, recording, injected faults."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import aiohttp
from aiohttp import web

from tests.kit.fake_discord import builders
from tests.kit.fake_discord.records import (
    CHANNEL_MESSAGE_FLAGS,
    MESSAGE_FLAGS,
    CallbackRecord,
    FakeInteraction,
    FakeMessage,
    JSONObject,
    RecordedRequest,
    Upload,
)
from tests.kit.fake_discord.state import FakeState
from tests.kit.fake_discord.validation import (
    BODY_ERROR_CODES,
    DiscordError,
    command_violations,
    errors_tree,
    form_error,
    invalid_form,
)

API_PREFIX = "/api/v10"
_RECORDED_HEADERS = ("Content-Type", "User-Agent", "X-Audit-Log-Reason")

RequestListener = Callable[[RecordedRequest], None]


@dataclass
class Reply:
    """What the fake answers a request with."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Injection:
    method: str
    path_pattern: str
    reply: Reply
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatchcase(path, self.path_pattern)


@dataclass(frozen=True)
class _Call:
    request: RecordedRequest
    params: dict[str, str]
    uploads: list[Upload]

    @property
    def body(self) -> JSONObject:
        body = self.request.json
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise invalid_form({"_errors": [form_error("Must be an object.")]})
        return body


_Handler = Callable[[_Call], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler
    bot_token: bool


class RestApi:
    """Answers the bot's REST requests from the state, and records every one of them."""

    def __init__(
        self, state: FakeState, *, gateway_url: Callable[[], str], ack_window: float
    ) -> None:
        self.state = state
        self.ack_window = ack_window
        self.requests: list[RecordedRequest] = []
        self.rejected: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        # Called with each request once it has been answered.
        self.listeners: list[RequestListener] = []
        self._gateway_url = gateway_url
        self._injections: list[_Injection] = []
        self._routes = self._build_routes()

    # faults

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
        reply = Reply(status, body, dict(headers or {}))
        self._injections.append(_Injection(method.upper(), path_pattern, reply, times))

    def rate_limit_next(
        self, method: str, path_pattern: str, *, retry_after: float = 0.05, times: int = 1
    ) -> None:
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

    # plumbing

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

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler for every path that is not the gateway."""
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
                    raise DiscordError(400, 50109, "The request body contains invalid JSON.")
                reply = self._route(record, uploads, in_api=in_api)
            except DiscordError as exc:
                reply = Reply(exc.status, exc.body())
                if exc.code in BODY_ERROR_CODES:
                    self.rejected.append(record)
        record.status = reply.status
        record.response = reply.body
        self.state.changes.notify()
        response = _to_response(reply, _bucket_hash(record.method, path))
        for listener in self.listeners:
            listener(record)
        return response

    def _injected(self, record: RecordedRequest) -> Reply | None:
        for injection in self._injections:
            if injection.remaining > 0 and injection.matches(record.method, record.path):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return Reply(
                    injection.reply.status, injection.reply.body, dict(injection.reply.headers)
                )
        return None

    def _route(self, record: RecordedRequest, uploads: list[Upload], *, in_api: bool) -> Reply:
        path_known = False
        for route in self._routes if in_api else ():
            match = route.pattern.fullmatch(record.path)
            if match is None:
                continue
            path_known = True
            if route.method != record.method:
                continue
            if route.bot_token and not record.has_authorization:
                raise DiscordError(401, 0, "401: Unauthorized")
            return route.handler(_Call(record, match.groupdict(), uploads))
        self.unexpected.append(record)
        if path_known:
            raise DiscordError(405, 0, "405: Method Not Allowed")
        raise DiscordError(404, 0, "404: Not Found")

    # identity and gateway

    def _get_me(self, call: _Call) -> Reply:
        return Reply(200, builders.bot_user(self.state.identity))

    def _get_application(self, call: _Call) -> Reply:
        return Reply(200, builders.application(self.state.identity))

    def _get_gateway(self, call: _Call) -> Reply:
        return Reply(200, {"url": self._gateway_url()})

    def _get_gateway_bot(self, call: _Call) -> Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return Reply(200, {"url": self._gateway_url(), "shards": 1, "session_start_limit": limit})

    # application commands

    def _command_scope(self, call: _Call) -> str:
        if int(call.params["app"]) != self.state.identity.application_id:
            raise DiscordError(
                403, 20012, "You are not authorized to perform this action on this application"
            )
        guild = call.params.get("guild")
        if guild is None:
            return "global"
        if int(guild) != self.state.identity.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return guild

    def _put_commands(self, call: _Call) -> Reply:
        scope = self._command_scope(call)
        commands = call.request.json
        if not isinstance(commands, list):
            raise invalid_form({"_errors": [form_error("Must be an array.")]})
        problems = command_violations(commands)
        if problems:
            raise invalid_form(errors_tree(problems))
        return Reply(200, self.state.register_commands(scope, commands))

    def _get_commands(self, call: _Call) -> Reply:
        scope = self._command_scope(call)
        return Reply(200, copy.deepcopy(self.state.commands.get(scope, [])))

    # interaction callback and webhooks

    def _post_callback(self, call: _Call) -> Reply:
        inter = self.state.interactions.get(int(call.params["iid"]))
        if inter is None or inter.token != call.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if inter.token_expired():
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if inter.callback is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - inter.dispatched_at
        if elapsed > self.ack_window:
            raise DiscordError(404, 10062, "Unknown interaction")
        body = call.body
        ctype = body.get("type")
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9), 5: (4, 5, 6, 7)}.get(inter.type, ())
        if not isinstance(ctype, int) or ctype not in allowed:
            raise invalid_form(
                errors_tree([f"type: Value must be one of {allowed} for this interaction."])
            )
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            raise invalid_form(errors_tree(["data: Must be an object."]))
        message = self.state.apply_callback(inter, ctype, data or {}, call.uploads)
        inter.callback = CallbackRecord(ctype, copy.deepcopy(data), elapsed)
        if not _truthy(call.request.query.get("with_response")):
            return Reply(204)
        result: JSONObject = {"id": str(inter.id), "type": inter.type}
        response: JSONObject = {"interaction": result}
        if message is not None:
            result["response_message_id"] = str(message.id)
            result["response_message_loading"] = message.loading
            result["response_message_ephemeral"] = message.ephemeral
            response["resource"] = {"type": ctype, "message": message.payload}
        elif ctype in (6, 9):
            response["resource"] = {"type": ctype}
        return Reply(200, response)

    def _webhook_interaction(self, call: _Call) -> FakeInteraction:
        if int(call.params["app"]) != self.state.identity.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        inter = self.state.interaction_by_token(call.params["token"])
        if inter is None or inter.token_expired():
            raise DiscordError(401, 50027, "Invalid Webhook Token")
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
        message = self.state.messages.get(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return inter, message

    def _get_webhook_message(self, call: _Call) -> Reply:
        _, message = self._webhook_message(call)
        return Reply(200, message.payload)

    def _patch_webhook_message(self, call: _Call) -> Reply:
        _, message = self._webhook_message(call)
        self.state.edit_message(message, call.body, call.uploads, via="webhook")
        return Reply(200, message.payload)

    def _delete_webhook_message(self, call: _Call) -> Reply:
        _, message = self._webhook_message(call)
        self.state.mark_deleted(message)
        return Reply(204)

    def _post_followup(self, call: _Call) -> Reply:
        inter = self._webhook_interaction(call)
        if inter.callback is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        original = self.state.message_for(inter)
        body = call.body
        if original is not None and original.loading and not original.deleted:
            # Discord's compatibility rule: the first followup after a deferred
            # response replaces the "thinking" message instead of posting a new one.
            self.state.edit_message(original, body, call.uploads, via="webhook")
            message = original
        else:
            message = self.state.create_message(
                body,
                call.uploads,
                via="webhook",
                channel_id=inter.channel_id,
                guild_id=inter.guild_id,
                mtype=0,
                flags_allowed=MESSAGE_FLAGS,
                interaction=inter,
                original=False,
            )
            inter.followup_ids.append(message.id)
        if not _truthy(call.request.query.get("wait")):
            return Reply(204)
        return Reply(200, message.payload)

    # channel messages (bot token)

    def _channel(self, call: _Call) -> JSONObject:
        cid = int(call.params["cid"])
        if cid in self.state.revoked_channels:
            raise DiscordError(403, 50001, "Missing Access")
        channel = self.state.channels.get(cid)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _channel_message(self, call: _Call) -> FakeMessage:
        channel = self._channel(call)
        message = self.state.messages.get(int(call.params["mid"]))
        if (
            message is None
            or message.deleted
            or message.ephemeral
            or message.channel_id != int(channel["id"])
        ):
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _get_channel_message(self, call: _Call) -> Reply:
        return Reply(200, self._channel_message(call).payload)

    def _patch_channel_message(self, call: _Call) -> Reply:
        message = self._channel_message(call)
        self.state.edit_message(message, call.body, call.uploads, via="channel")
        return Reply(200, message.payload)

    def _delete_channel_message(self, call: _Call) -> Reply:
        self.state.mark_deleted(self._channel_message(call))
        return Reply(204)

    def _post_channel_message(self, call: _Call) -> Reply:
        channel = self._channel(call)
        guild_id = channel.get("guild_id")
        message = self.state.create_message(
            call.body,
            call.uploads,
            via="channel",
            channel_id=int(channel["id"]),
            guild_id=int(guild_id) if guild_id else None,
            mtype=0,
            flags_allowed=CHANNEL_MESSAGE_FLAGS,
            interaction=None,
            original=False,
        )
        return Reply(200, message.payload)


def _bucket_hash(method: str, path: str) -> str:
    template = re.sub(r"^(/(?:webhooks|interactions)/\d+/)[^/]+", r"\1{token}", path)
    template = re.sub(r"\d{15,}", "{id}", template)
    return hashlib.sha1(f"{method} {template}".encode(), usedforsecurity=False).hexdigest()[:16]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def _to_response(reply: Reply, bucket: str) -> web.Response:
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
    body = builders.to_json(reply.body).encode()
    return web.Response(status=reply.status, body=body, headers=headers)


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON body (from `payload_json` for multipart) and the uploaded files."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        body: Any = None
        uploads: list[Upload] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                data = await part.read()
                filename = part.filename or "file"
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                if content_type == "application/octet-stream":
                    # Discord names the type from the file's extension, as browsers do.
                    content_type = mimetypes.guess_type(filename)[0] or content_type
                uploads.append(Upload(filename, len(data), content_type))
        return body, uploads
    raw = await request.read()
    if not raw:
        return None, []
    return json.loads(raw), []
