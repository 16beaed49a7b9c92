# Names vulture cannot see being used: discord.py and pydantic call them by name, and
# dataclass fields or protocol parameters exist for their callers' sake.
# ruff: noqa
from bot.app import SunoBot
from bot.config import Settings
from bot.controls import CardButton, LyricsPageButton
from bot.render.picker import ClipPicker
from bot.tree import SunoCommandTree
from cogs.buttons import Buttons
from cogs.keys import KeyGroup, KeyModal, ServerKey
from cogs.suno import ClipPicks

SunoBot.setup_hook  # called by discord.py before connecting
SunoBot.on_ready  # a discord.py event
SunoBot.on_connect  # a discord.py event
SunoBot.on_resumed  # a discord.py event
SunoBot.on_disconnect  # a discord.py event
SunoCommandTree.on_error  # called by discord.py for a failed command
Settings._shards_fit  # a pydantic model validator
CardButton.from_custom_id  # discord.py builds a pressed dynamic item through it
LyricsPageButton.from_custom_id  # likewise
Buttons.cog_load  # called by discord.py when the cog is added
Buttons.cog_unload  # called by discord.py when the cog is removed
KeyModal.on_submit  # called by discord.py when the modal is sent
KeyGroup.key_status  # an app command callback
ServerKey.key_status  # an app command callback
ClipPicker.from_custom_id  # called by discord.py when a card's picker is used
ClipPicks.on_clip_pick  # a listener for the event the picker dispatches
model_config  # pydantic and pydantic-settings read it from the class
row_factory  # aiosqlite reads it for every row
levelname  # the logging module reads it when it formats a record
guild_ready_timeout  # discord.py reads it while the bench bot starts
exc_type  # __aexit__ takes it
tb  # __aexit__ takes it
files  # a recorded request's uploads, shown when a test fails
clean_environment  # an autouse fixture
pytestmark  # read by pytest
silent  # an app command of the test bot
refresh  # a button callback of the test bot
guild_messages  # an intents flag set on the test bot
