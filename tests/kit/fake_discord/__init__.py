"""A fake Discord (REST API and gateway on 127.0.0.1) that the real discord.py bot runs against.

`records` holds what the fake stores and records, `validation` Discord's rules for request
bodies, `builders` the payloads Discord sends, `state` the stored world, `rest` and `gateway`
the two APIs, `handlers` the client's app command tasks, and `server` the `FakeDiscord` itself.
"""

from tests.kit.fake_discord.builders import (
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    Identity,
    interaction_token,
    user_payload,
)
from tests.kit.fake_discord.gateway import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
)
from tests.kit.fake_discord.handlers import CommandHandlers
from tests.kit.fake_discord.records import (
    ACK_WINDOW_SECONDS,
    ATTACHMENT_SIZE_LIMIT,
    CHANNEL_MESSAGE_FLAGS,
    DEFAULT_APPLICATION_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_USER_ID,
    EPHEMERAL,
    FAKE_BOT_TOKEN,
    IS_COMPONENTS_V2,
    LOADING,
    MESSAGE_FLAGS,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    TOKEN_LIFETIME,
    CallbackRecord,
    EditRecord,
    EditVia,
    FakeInteraction,
    FakeMessage,
    JSONObject,
    RecordedRequest,
)
from tests.kit.fake_discord.rest import API_PREFIX
from tests.kit.fake_discord.server import FakeDiscord
from tests.kit.fake_discord.validation import command_violations, message_violations

__all__ = [
    "ACK_WINDOW_SECONDS",
    "API_PREFIX",
    "ATTACHMENT_SIZE_LIMIT",
    "BOT_PERMISSIONS",
    "CHANNEL_MESSAGE_FLAGS",
    "DEFAULT_APPLICATION_ID",
    "DEFAULT_BOT_USER_ID",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_GUILD_ID",
    "DEFAULT_USER_ID",
    "EPHEMERAL",
    "EVERYONE_PERMISSIONS",
    "FAKE_BOT_TOKEN",
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MESSAGES",
    "IS_COMPONENTS_V2",
    "LOADING",
    "MESSAGE_FLAGS",
    "SUPPRESS_EMBEDS",
    "SUPPRESS_NOTIFICATIONS",
    "TOKEN_LIFETIME",
    "CallbackRecord",
    "CommandHandlers",
    "EditRecord",
    "EditVia",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "Identity",
    "JSONObject",
    "RecordedRequest",
    "command_violations",
    "interaction_token",
    "message_violations",
    "user_payload",
]
