"""Payload builders: the users, channels, roles, guild and interactions Discord sends a bot."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord

from tests.kit.fake_discord.records import ATTACHMENT_SIZE_LIMIT, DEFAULT_USER_ID, JSONObject

BOT_PERMISSIONS = discord.Permissions(
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
EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value


@dataclass(frozen=True)
class Identity:
    """Who is who in the fake: the application, its bot user and role, the guild with its
    first channel, and when the fake started (which is when the bot joined the guild)."""

    application_id: int
    bot_user_id: int
    guild_id: int
    channel_id: int
    bot_role_id: int
    started_at: datetime


def to_json(value: Any) -> str:
    """Compact JSON, as Discord sends it."""
    return json.dumps(value, separators=(",", ":"))


def user_payload(user_id: int) -> JSONObject:
    """A user object for a human user."""
    return {
        "id": str(user_id),
        "username": f"user{user_id % 10_000}",
        "discriminator": "0",
        "global_name": f"User {user_id % 10_000}",
        "avatar": None,
        "public_flags": 0,
    }


def dm_channel(channel_id: int, recipient: JSONObject) -> JSONObject:
    return {
        "id": str(channel_id),
        "type": 1,
        "recipients": [recipient],
        "last_message_id": None,
        "flags": 0,
    }


def role(role_id: int, name: str, permissions: int, position: int) -> JSONObject:
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


def interaction_token(interaction_id: int) -> str:
    """A fresh token for an interaction, as long and opaque as Discord's."""
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(96)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def option_type(schema: list[JSONObject], name: str, value: str | bool | int) -> int:
    """The type of a command option: from the registered command, else guessed from the value."""
    for option in schema:
        if option.get("name") == name and isinstance(option.get("type"), int):
            return int(option["type"])
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    return 3


def bot_user(who: Identity) -> JSONObject:
    return {
        "id": str(who.bot_user_id),
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


def text_channel(who: Identity, channel_id: int) -> JSONObject:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(who.guild_id),
        "name": "general" if channel_id == who.channel_id else f"channel-{channel_id % 10_000}",
        "position": 0,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def bot_member(who: Identity) -> JSONObject:
    return {
        "user": bot_user(who),
        "roles": [str(who.bot_role_id)],
        "joined_at": who.started_at.isoformat(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "premium_since": None,
        "communication_disabled_until": None,
    }


def application(who: Identity) -> JSONObject:
    """The application object of `GET /applications/@me`."""
    return {
        "id": str(who.application_id),
        "name": "Suno Status (fake)",
        "icon": None,
        "description": "",
        "summary": "",
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user_payload(DEFAULT_USER_ID),
        "team": None,
        "flags": 0,
        "bot": bot_user(who),
    }


def guild_create(who: Identity, channels: list[JSONObject]) -> JSONObject:
    """The GUILD_CREATE event for the fake's guild with these channels."""
    text_channels = [c for c in channels if c["type"] == 0]
    return {
        "id": str(who.guild_id),
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
        "joined_at": who.started_at.isoformat(),
        "large": False,
        "unavailable": False,
        "member_count": 2,
        "max_members": 500_000,
        "roles": [
            role(who.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            {
                **role(who.bot_role_id, "Suno Status", BOT_PERMISSIONS, 1),
                "managed": True,
                "tags": {"bot_id": str(who.bot_user_id)},
            },
        ],
        "channels": copy.deepcopy(text_channels),
        "threads": [],
        "members": [bot_member(who)],
        "voice_states": [],
        "presences": [],
        "emojis": [],
        "stickers": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def interaction_payload(
    who: Identity,
    iid: int,
    token: str,
    itype: int,
    data: JSONObject,
    *,
    user: JSONObject,
    channel: JSONObject,
    guild: bool,
    locale: str,
    guild_locale: str = "en-US",
    channel_revoked: bool = False,
    member_permissions: int | None = None,
    user_install_guild_id: int | None = None,
) -> JSONObject:
    """The INTERACTION_CREATE event for an interaction in `channel` (of the guild, or a DM);
    `locale` is the user's client language, `guild_locale` the guild's (sent only in a guild).
    `member_permissions` are the member's in the channel (default: @everyone's);
    `user_install_guild_id` puts the interaction in another server, one the bot is not in,
    where the user's own install of the app runs the command."""
    app_permissions = BOT_PERMISSIONS
    if channel_revoked:
        app_permissions &= ~discord.Permissions(view_channel=True).value
    payload: JSONObject = {
        "id": str(iid),
        "application_id": str(who.application_id),
        "type": itype,
        "data": data,
        "token": token,
        "version": 1,
        "locale": locale,
        "app_permissions": str(app_permissions),
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        "channel_id": channel["id"],
        "channel": copy.deepcopy(channel),
    }
    permissions = EVERYONE_PERMISSIONS if member_permissions is None else member_permissions
    guild_id = who.guild_id if user_install_guild_id is None else user_install_guild_id
    # Installed to the server: its id; installed to the user's account: the user's id.
    owners = {"0": str(who.guild_id)} if user_install_guild_id is None else {"1": str(user["id"])}
    if guild:
        payload["channel"]["permissions"] = str(permissions)
        payload["channel"]["guild_id"] = str(guild_id)
        payload.update(
            guild_id=str(guild_id),
            guild={"id": str(guild_id), "locale": guild_locale, "features": []},
            guild_locale=guild_locale,
            context=0,
            authorizing_integration_owners=owners,
            member={
                "user": user,
                "roles": [],
                "joined_at": who.started_at.isoformat(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "pending": False,
                "nick": None,
                "avatar": None,
                "premium_since": None,
                "communication_disabled_until": None,
                "permissions": str(permissions),
            },
        )
    else:
        payload.update(
            user=user,
            context=1,
            authorizing_integration_owners={"0": "0"},
        )
    return payload
