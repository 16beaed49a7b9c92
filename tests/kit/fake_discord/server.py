"""The fake Discord itself: REST API and gateway served on 127.0.0.1, and what tests do with it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.kit.cards import find_component
from tests.kit.fake_discord.builders import Identity
from tests.kit.fake_discord.gateway import FakeGateway
from tests.kit.fake_discord.handlers import CommandHandlers
from tests.kit.fake_discord.records import (
    ACK_WINDOW_SECONDS,
    DEFAULT_APPLICATION_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_USER_ID,
    FAKE_BOT_TOKEN,
    CallbackRecord,
    Changes,
    FakeInteraction,
    FakeMessage,
    JSONObject,
    RecordedRequest,
)
from tests.kit.fake_discord.rest import API_PREFIX, RestApi
from tests.kit.fake_discord.state import FakeState, MessageListener
from tests.kit.snowflakes import SnowflakeSource

# The interaction types discord.py hands to the command tree: commands and autocomplete.
_TREE_INTERACTION_TYPES = (2, 4)


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
        ids = SnowflakeSource()
        self.identity = Identity(
            application_id=application_id,
            bot_user_id=bot_user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            bot_role_id=ids.next(),
            started_at=datetime.now(UTC),
        )
        self._changes = Changes()
        self.state = FakeState(self.identity, ids, self._changes)
        self.rest = RestApi(self.state, gateway_url=lambda: self.gateway_url, ack_window=ack_window)
        self.gateway = FakeGateway(self.state, url=lambda: self.gateway_url)
        self.state.deletion_listeners.append(self.gateway.message_deleted)
        self._dispatched: list[FakeInteraction] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # what the fake holds and has seen

    @property
    def application_id(self) -> int:
        return self.identity.application_id

    @property
    def bot_user_id(self) -> int:
        return self.identity.bot_user_id

    @property
    def guild_id(self) -> int:
        return self.identity.guild_id

    @property
    def channel_id(self) -> int:
        return self.identity.channel_id

    @property
    def ack_window(self) -> float:
        """Seconds after dispatch in which an interaction callback is still accepted."""
        return self.rest.ack_window

    @ack_window.setter
    def ack_window(self, seconds: float) -> None:
        self.rest.ack_window = seconds

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST request, in the order they arrived."""
        return self.rest.requests

    @property
    def rejected(self) -> list[RecordedRequest]:
        """Requests whose body Discord would have refused (codes 50035, 50006, 50109)."""
        return self.rest.rejected

    @property
    def unexpected(self) -> list[RecordedRequest]:
        """Requests for routes the fake does not serve."""
        return self.rest.unexpected

    @property
    def messages(self) -> dict[int, FakeMessage]:
        return self.state.messages

    @property
    def interactions(self) -> dict[int, FakeInteraction]:
        return self.state.interactions

    @property
    def registered_commands(self) -> dict[str, list[JSONObject]]:
        """The command lists the bot bulk-overwrote, by scope (a guild id or "global")."""
        return self.state.registered_commands

    @property
    def gateway_frames(self) -> list[JSONObject]:
        """Every frame the bot sent on the gateway (tokens redacted)."""
        return self.gateway.frames

    @property
    def ready_count(self) -> int:
        """How often a bot got READY or RESUMED."""
        return self.gateway.ready_count

    def add_request_listener(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call `listener` with every REST request once it has been answered."""
        self.rest.listeners.append(listener)

    def add_edit_listener(self, listener: MessageListener) -> None:
        """Call `listener` with a message each time an edit of it was accepted."""
        self.state.edit_listeners.append(listener)

    # lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        await self.gateway.close()
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

        Use inside `patch_discord()`. On exit, the app commands of the interactions dispatched
        in the block get `drain_timeout` seconds to start and finish; those still running are
        then cancelled, and the client is closed and its task awaited.
        """
        ready_before = self.ready_count
        dispatched_before = len(self._dispatched)
        with CommandHandlers(client) as handlers:
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
                expected = [
                    i.id
                    for i in self._dispatched[dispatched_before:]
                    if i.type in _TREE_INTERACTION_TYPES
                ]
                await handlers.drain(drain_timeout, expected)
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
        return self.gateway.active_connection() is not None

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
        attachment_size_limit: int | None = None,
        member_permissions: int | None = None,
        user_install_guild_id: int | None = None,
    ) -> FakeInteraction:
        """Dispatch a slash command (INTERACTION_CREATE, type 2) to the connected bot.

        `subcommand` may be "group sub" for a command inside a subcommand group.
        `created_at` sets the interaction id's time, which is when its token starts to age.
        `attachment_size_limit` is the upload limit Discord grants the interaction.
        `member_permissions` are the member's (default: @everyone's); `user_install_guild_id`
        sends it from a server the bot is not in, through the user's install of the app.
        """
        data = self.state.command_data(name, subcommand, options or {}, guild=guild)
        return await self._dispatch_interaction(
            2,
            data,
            user_id=user_id,
            channel_id=channel_id,
            guild=guild,
            locale=locale,
            created_at=created_at,
            message=None,
            attachment_size_limit=attachment_size_limit,
            member_permissions=member_permissions,
            user_install_guild_id=user_install_guild_id,
        )

    async def submit_modal(
        self,
        opened_by: FakeInteraction,
        values: dict[str, str],
        *,
        member_permissions: int | None = None,
    ) -> FakeInteraction:
        """Dispatch a modal submission (INTERACTION_CREATE, type 5): the modal the bot opened
        as its answer to `opened_by` (a type 9 callback), with `values` typed into its text
        inputs by custom id (the only input when `values` has one value under any name)."""
        callback = opened_by.callback
        if callback is None or callback.type != 9 or callback.data is None:
            raise AssertionError(f"interaction {opened_by.id} was not answered with a modal")
        inputs = _text_input_ids(callback.data)
        if len(values) == 1 and len(inputs) == 1:
            values = {inputs[0]: next(iter(values.values()))}
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": cid, "value": value}]}
            for cid, value in values.items()
        ]
        data = {"custom_id": callback.data["custom_id"], "components": rows}
        return await self._dispatch_interaction(
            5,
            data,
            user_id=int(opened_by.user["id"]),
            channel_id=opened_by.channel_id if opened_by.guild_id is not None else None,
            guild=opened_by.guild_id is not None,
            locale=str(opened_by.payload.get("locale", "en-US")),
            created_at=None,
            message=None,
            member_permissions=member_permissions,
        )

    async def press_button(
        self,
        message_id: int,
        custom_id: str,
        *,
        locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
        permissions: int | None = None,
    ) -> FakeInteraction:
        """Dispatch a button press (INTERACTION_CREATE, type 3) on a stored message, by
        `user_id` with `permissions` in the channel (an ordinary member's by default)."""
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
            member_permissions=permissions,
        )

    async def choose(
        self,
        message_id: int,
        custom_id: str,
        values: list[str],
        *,
        locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
    ) -> FakeInteraction:
        """Dispatch a choice in a string select menu (INTERACTION_CREATE, type 3) of a stored
        message; Discord refuses a select or values the message does not show."""
        message = self.messages[message_id]
        select = find_component(message.components, custom_id)
        if select is None or select.get("type") != 3:
            raise AssertionError(f"message {message_id} shows no select menu {custom_id!r}")
        offered = {str(option.get("value")) for option in select.get("options", [])}
        if not values or not set(values) <= offered or len(values) > select.get("max_values", 1):
            raise AssertionError(f"{values!r} cannot be chosen in {custom_id!r}")
        return await self._dispatch_interaction(
            3,
            {"custom_id": custom_id, "component_type": 3, "values": list(values)},
            user_id=user_id,
            channel_id=message.channel_id,
            guild=message.guild_id is not None,
            locale=locale,
            created_at=None,
            message=message,
        )

    def custom_ids(self, message_id: int) -> list[str]:
        """The custom ids of the buttons and selects on a stored message, in order."""
        found: list[str] = []

        def walk(components: list[JSONObject]) -> None:
            for component in components:
                if "custom_id" in component:
                    found.append(str(component["custom_id"]))
                walk(list(component.get("components") or []))
                accessory = component.get("accessory")
                if isinstance(accessory, dict):
                    walk([accessory])

        walk(self.messages[message_id].components)
        return found

    def replies_to(self, message_id: int) -> list[FakeMessage]:
        """The messages posted as replies to `message_id`."""
        return [
            message
            for message in self.messages.values()
            if (message.message_reference or {}).get("message_id") == str(message_id)
        ]

    def command(
        self,
        *,
        name: str = "suno",
        subcommand: str | None = "status",
        options: dict[str, str | bool | int] | None = None,
        locale: str = "en-US",
        guild_locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
        guild: bool = True,
    ) -> FakeInteraction:
        """A slash command recorded as sent now but not dispatched over the gateway: for a
        test that builds a `discord.Interaction` from its `.payload` and runs it in-process.
        `locale` is the user's client language; `guild_locale` the server's."""
        data = self.state.command_data(name, subcommand, options or {}, guild=guild)
        inter = self.state.new_interaction(
            2,
            data,
            user_id=user_id,
            channel_id=None,
            guild=guild,
            locale=locale,
            guild_locale=guild_locale,
            created_at=None,
            message=None,
        )
        inter.dispatched_at = time.monotonic()
        return inter

    def answered_interaction(
        self,
        body: JSONObject,
        *,
        name: str = "suno",
        subcommand: str | None = "status",
        options: dict[str, str | bool | int] | None = None,
        locale: str = "en-US",
        user_id: int = DEFAULT_USER_ID,
    ) -> FakeInteraction:
        """A slash command in the guild's channel, already answered with a message showing
        `body` (a type 4 callback), recorded without going through the gateway: for a bot
        that gets the interaction's payload (`.payload`) some other way."""
        inter = self.command(
            name=name, subcommand=subcommand, options=options, locale=locale, user_id=user_id
        )
        self.state.apply_callback(inter, 4, copy.deepcopy(body), [])
        inter.callback = CallbackRecord(4, copy.deepcopy(body), 0.0)
        return inter

    def message_for(self, interaction: FakeInteraction) -> FakeMessage | None:
        """The interaction's original response message, if it has one."""
        return self.state.message_for(interaction)

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
        member_permissions: int | None = None,
        user_install_guild_id: int | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        conn = self.gateway.active_connection()
        if conn is None:
            raise AssertionError("no bot is connected and ready on the fake gateway")
        inter = self.state.new_interaction(
            itype,
            data,
            user_id=user_id,
            channel_id=channel_id,
            guild=guild,
            locale=locale,
            created_at=created_at,
            message=message,
            member_permissions=member_permissions,
            user_install_guild_id=user_install_guild_id,
        )
        if attachment_size_limit is not None:
            inter.payload["attachment_size_limit"] = attachment_size_limit
        self._dispatched.append(inter)
        inter.dispatched_at = time.monotonic()
        await conn.dispatch("INTERACTION_CREATE", inter.payload)
        self._changes.notify()
        return inter

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
        self.rest.fail_next(
            method, path_pattern, status=status, body=body, times=times, headers=headers
        )

    def rate_limit_next(
        self, method: str, path_pattern: str, *, retry_after: float = 0.05, times: int = 1
    ) -> None:
        """Answer the next matching requests with a proper per-route 429 that discord.py retries."""
        self.rest.rate_limit_next(method, path_pattern, retry_after=retry_after, times=times)

    def expire_token(self, token: str) -> None:
        """From now on, every route with this interaction token answers 401 code 50027."""
        inter = self.state.interaction_by_token(token)
        if inter is None:
            raise KeyError(token)
        inter.token_revoked = True

    def delete_message(self, message_id: int) -> None:
        """Delete a message as a user or moderator would; later edits answer 404 code 10008."""
        self.state.mark_deleted(self.messages[message_id])

    def revoke_channel_access(self, channel_id: int) -> None:
        """Take the bot's access to a channel away: its channel routes answer 403 code 50001."""
        self.state.revoked_channels.add(channel_id)

    async def drop_gateway(self, *, code: int = 4000) -> None:
        """Close the bot's gateway connection as Discord does on a hiccup; discord.py resumes."""
        await self.gateway.drop(code=code)

    def refuse_gateway(self, *, times: int = 1) -> None:
        """Answer the next `times` gateway connection attempts with HTTP 503, as during an
        outage; with `drop_gateway()` the bot's reconnects fail until the refusals run out."""
        self.gateway.refusals_left += times

    @property
    def gateway_refusals(self) -> int:
        """How many gateway connection attempts were refused."""
        return self.gateway.refused


def _text_input_ids(modal: JSONObject) -> list[str]:
    """The custom ids of a modal's text inputs, in action rows or labels."""
    found: list[str] = []
    for row in modal.get("components") or []:
        children = row.get("components") or ([row["component"]] if "component" in row else [])
        found += [str(c["custom_id"]) for c in children if c.get("type") == 4]
    return found
