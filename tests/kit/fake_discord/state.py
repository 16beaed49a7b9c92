"""The fake's stored world: channels, commands, interactions, messages, and how messages change."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tests.kit.fake_discord import builders
from tests.kit.fake_discord.builders import Identity
from tests.kit.fake_discord.records import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    MESSAGE_FLAGS,
    SUPPRESS_EMBEDS,
    Changes,
    EditRecord,
    EditVia,
    FakeInteraction,
    FakeMessage,
    JSONObject,
    Upload,
)
from tests.kit.fake_discord.validation import (
    DiscordError,
    check_message_body,
    errors_tree,
    invalid_form,
    layout_transition_violations,
    would_be_empty,
)
from tests.kit.snowflakes import SnowflakeSource, snowflake_at

MessageListener = Callable[[FakeMessage], None]


class FakeState:
    """Everything the fake knows, shared by its REST API, its gateway and the tests."""

    def __init__(self, identity: Identity, ids: SnowflakeSource, changes: Changes) -> None:
        self.identity = identity
        self.ids = ids
        self.changes = changes
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        # What the bot sent to bulk-overwrite commands, and the commands as the fake echoed them.
        self.registered_commands: dict[str, list[JSONObject]] = {}
        self.commands: dict[str, list[JSONObject]] = {}
        self.revoked_channels: set[int] = set()
        self.channels: dict[int, JSONObject] = {
            identity.channel_id: builders.text_channel(identity, identity.channel_id)
        }
        # Called after a message was deleted, and after an existing message was changed.
        self.deletion_listeners: list[MessageListener] = []
        self.edit_listeners: list[MessageListener] = []
        self._command_ids: dict[tuple[str, int, str], int] = {}
        self._by_token: dict[str, FakeInteraction] = {}

    # channels

    def guild_channel(self, channel_id: int | None) -> JSONObject:
        """A text channel of the guild (the first one by default), made on first use."""
        cid = channel_id or self.identity.channel_id
        return self.channels.setdefault(cid, builders.text_channel(self.identity, cid))

    def dm_channel(self, channel_id: int | None, user: JSONObject) -> JSONObject:
        """The DM channel with `user` (one per user by default), made on first use."""
        cid = channel_id or snowflake_at(self.identity.started_at, int(user["id"]))
        return self.channels.setdefault(cid, builders.dm_channel(cid, user))

    # application commands

    def find_command(self, name: str, *, guild: bool) -> tuple[JSONObject | None, str]:
        """The registered chat input command of this name (guild first), and its scope."""
        scopes = [str(self.identity.guild_id), "global"] if guild else ["global"]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command.get("name") == name and command.get("type", 1) == 1:
                    return command, scope
        return None, "global"

    def command_id(self, scope: str, ctype: int, name: str) -> int:
        key = (scope, ctype, name)
        if key not in self._command_ids:
            self._command_ids[key] = self.ids.next()
        return self._command_ids[key]

    def command_data(
        self, name: str, subcommand: str | None, values: dict[str, str | bool | int], *, guild: bool
    ) -> JSONObject:
        """The `data` of a slash command interaction for these option values."""
        command, scope = self.find_command(name, guild=guild)
        schema: list[JSONObject] = list(command.get("options") or []) if command else []
        path = subcommand.split() if subcommand else []
        for part in path:
            schema = next(
                (list(o.get("options") or []) for o in schema if o.get("name") == part), []
            )
        options: list[JSONObject] = [
            {"name": key, "type": builders.option_type(schema, key, value), "value": value}
            for key, value in values.items()
        ]
        for depth in range(len(path) - 1, -1, -1):
            otype = 1 if depth == len(path) - 1 else 2
            options = [{"name": path[depth], "type": otype, "options": options}]
        if command is not None:
            command_id = int(command["id"])
        else:
            command_id = self.command_id("global", 1, name)
        data: JSONObject = {"id": str(command_id), "name": name, "type": 1, "options": options}
        if scope != "global":
            data["guild_id"] = scope
        return data

    def register_commands(self, scope: str, commands: list[JSONObject]) -> list[JSONObject]:
        """Replace the scope's commands (a bulk overwrite); returns them as Discord echoes them."""
        echoed = [self._registered_command(scope, dict(c)) for c in commands]
        self.registered_commands[scope] = copy.deepcopy(commands)
        self.commands[scope] = echoed
        return copy.deepcopy(echoed)

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
            "id": str(self.command_id(scope, ctype, str(command["name"]))),
            "application_id": str(self.identity.application_id),
            "version": str(self.ids.next()),
        }
        if scope != "global":
            echoed["guild_id"] = scope
        return echoed

    # interactions

    def new_interaction(
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
        guild_locale: str = "en-US",
        member_permissions: int | None = None,
        user_install_guild_id: int | None = None,
    ) -> FakeInteraction:
        """Record a new interaction (not yet dispatched) with its token and payload."""
        iid = self.ids.next(created_at)
        token = builders.interaction_token(iid)
        user = builders.user_payload(user_id)
        if user_install_guild_id is not None:
            # A channel of a server the bot is not in: never in the bot's guild.
            channel = builders.text_channel(self.identity, channel_id or self.ids.next())
            channel["guild_id"] = str(user_install_guild_id)
        elif guild:
            channel = self.guild_channel(channel_id)
        else:
            channel = self.dm_channel(channel_id, user)
        cid = int(channel["id"])
        payload = builders.interaction_payload(
            self.identity,
            iid,
            token,
            itype,
            data,
            user=user,
            channel=channel,
            guild=guild,
            locale=locale,
            guild_locale=guild_locale,
            channel_revoked=cid in self.revoked_channels,
            member_permissions=member_permissions,
            user_install_guild_id=user_install_guild_id,
        )
        if message is not None:
            payload["message"] = message.payload
        inter = FakeInteraction(
            id=iid,
            token=token,
            type=itype,
            channel_id=cid,
            guild_id=(user_install_guild_id or self.identity.guild_id) if guild else None,
            user=user,
            payload=payload,
            message_id=message.id if message else None,
            changes=self.changes,
        )
        self.interactions[iid] = inter
        self._by_token[token] = inter
        return inter

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        return self._by_token.get(token)

    def message_for(self, interaction: FakeInteraction) -> FakeMessage | None:
        """The interaction's original response message, if it has one."""
        mid = interaction.original_message_id
        return None if mid is None else self.messages.get(mid)

    def apply_callback(
        self, inter: FakeInteraction, ctype: int, data: JSONObject, uploads: list[Upload]
    ) -> FakeMessage | None:
        """What an accepted callback of type `ctype` does to the messages; returns the message
        it made or changed."""
        if ctype == 4:
            return self.create_message(
                data,
                uploads,
                via="callback",
                channel_id=inter.channel_id,
                guild_id=inter.guild_id,
                mtype=20 if inter.type == 2 else 0,
                flags_allowed=MESSAGE_FLAGS,
                interaction=inter,
                original=True,
                problem_prefix="data.",
            )
        if ctype == 5:
            flags = data.get("flags") or 0
            if not isinstance(flags, int):
                raise invalid_form(errors_tree(["data.flags: Must be an integer."]))
            if flags & IS_COMPONENTS_V2:
                # A deferred reply has no components yet: the flag comes with the first edit.
                raise invalid_form(
                    errors_tree(["data.flags: IS_COMPONENTS_V2 cannot be set on a deferred reply"])
                )
            return self.create_message(
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
                self.edit_message(target, data, uploads, via="callback", problem_prefix="data.")
            # For a component interaction, "@original" is the message the component is on.
            inter.original_message_id = target.id
            return target
        return None

    # messages

    def create_message(
        self,
        body: JSONObject,
        uploads: list[Upload],
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
        check_message_body(body, uploads, problem_prefix)
        if not loading and would_be_empty(None, body, uploads):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        flags = int(body.get("flags") or 0) & flags_allowed
        if loading:
            flags |= LOADING
        message = FakeMessage(
            id=self.ids.next(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=builders.bot_user(self.identity),
            type=mtype,
            created_at=datetime.now(UTC),
            webhook_id=self.identity.application_id if interaction else None,
            interaction_id=interaction.id if interaction else None,
            flags=flags,
            tts=bool(body.get("tts", False)),
        )
        if interaction is not None:
            message.interaction_metadata = self._interaction_metadata(interaction, original)
        message.message_reference = self._reference(body, channel_id)
        if isinstance(body.get("allowed_mentions"), dict):
            message.allowed_mentions = copy.deepcopy(body["allowed_mentions"])
        self._apply_body(message, body, uploads)
        message.edits.append(EditRecord(via, copy.deepcopy(body), time.monotonic()))
        self.messages[message.id] = message
        if interaction is not None and original:
            interaction.original_message_id = message.id
        return message

    def _reference(self, body: JSONObject, channel_id: int) -> JSONObject | None:
        """The replied-to message, which must exist in the same channel (as Discord checks)."""
        reference = body.get("message_reference")
        if reference is None:
            return None
        target = self.messages.get(int(reference.get("message_id") or 0))
        if target is None or target.deleted or target.channel_id != channel_id:
            if reference.get("fail_if_not_exists", True):
                raise invalid_form(errors_tree(["message_reference: Unknown message"]))
            return None
        return {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(channel_id),
            **({"guild_id": str(target.guild_id)} if target.guild_id else {}),
        }

    def edit_message(
        self,
        message: FakeMessage,
        body: JSONObject,
        uploads: list[Upload],
        *,
        via: EditVia,
        problem_prefix: str = "",
    ) -> None:
        v2 = bool(message.flags & IS_COMPONENTS_V2)
        check_message_body(body, uploads, problem_prefix, v2=v2)
        transition = layout_transition_violations(message, body)
        if transition:
            raise invalid_form(errors_tree([problem_prefix + p for p in transition]))
        if would_be_empty(message, body, uploads):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        self._apply_body(message, body, uploads)
        flags = body.get("flags")
        if isinstance(flags, int):
            message.flags = (message.flags & ~SUPPRESS_EMBEDS) | (flags & SUPPRESS_EMBEDS)
            message.flags |= flags & IS_COMPONENTS_V2
        message.flags &= ~LOADING
        message.edited_at = datetime.now(UTC)
        message.edits.append(EditRecord(via, copy.deepcopy(body), time.monotonic()))
        for listener in self.edit_listeners:
            listener(message)

    def mark_deleted(self, message: FakeMessage) -> None:
        message.deleted = True
        self.changes.notify()
        for listener in self.deletion_listeners:
            listener(message)

    def _apply_body(self, message: FakeMessage, body: JSONObject, uploads: list[Upload]) -> None:
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            message.components = copy.deepcopy(body["components"] or [])
        if "attachments" in body or uploads:
            message.attachments = self._attachments(message, body.get("attachments"), uploads)

    def _attachments(
        self, message: FakeMessage, listed: list[JSONObject] | None, uploads: list[Upload]
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
            aid = self.ids.next()
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
