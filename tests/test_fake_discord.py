"""The fake Discord kit serves a real discord.py bot and enforces Discord's rules on it."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.kit.fake_discord import (
    IS_COMPONENTS_V2,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
    message_violations,
)

KitInteraction = discord.Interaction["KitBot"]


class SunoGroup(app_commands.Group):
    """Just enough of `/suno` to drive every REST path the real bot uses."""

    def __init__(self, bot: KitBot) -> None:
        super().__init__(name="suno", description="Follow Suno tasks")
        self.bot = bot

    @app_commands.command(description="Show a task at once")
    async def status(
        self, interaction: KitInteraction, task_id: str, ephemeral: bool = False
    ) -> None:
        self.bot.seen.append(interaction)
        embed = discord.Embed(title=f"Task {task_id}", description="Queued")
        response = await interaction.response.send_message(embed=embed, ephemeral=ephemeral)
        self.bot.callback_message_ids.append(response.message_id)

    @app_commands.command(description="Show a task after thinking")
    async def later(self, interaction: KitInteraction, task_id: str) -> None:
        self.bot.seen.append(interaction)
        await interaction.response.defer()
        embed = discord.Embed(title=f"Task {task_id}", description="Running")
        await interaction.edit_original_response(embed=embed)

    @app_commands.command(description="Never answers")
    async def silent(self, interaction: KitInteraction) -> None:
        self.bot.seen.append(interaction)

    @app_commands.command(description="Reply with a refresh button")
    async def button(self, interaction: KitInteraction) -> None:
        self.bot.seen.append(interaction)
        response = await interaction.response.send_message("stale", view=RefreshView())
        self.bot.callback_message_ids.append(response.message_id)


class RefreshView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Refresh", custom_id="refresh")
    async def refresh(
        self, interaction: KitInteraction, button: discord.ui.Button[RefreshView]
    ) -> None:
        await interaction.response.edit_message(content="refreshed")


class KitBot(commands.Bot):
    def __init__(self, guild_id: int, intents: discord.Intents | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=intents or discord.Intents.none()
        )
        self.guild_id = guild_id
        self.seen: list[KitInteraction] = []
        self.callback_message_ids: list[int | None] = []
        self.tree.add_command(SunoGroup(self))

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


class SlowBot(commands.Bot):
    """Its `/suno status` answers only once `release` is set, and records how each run ended."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.none())
        self.guild_id = guild_id
        self.release = asyncio.Event()
        self.outcomes: list[str] = []
        group = app_commands.Group(name="suno", description="Follow Suno tasks")

        @group.command(description="Show a task once released")
        async def status(interaction: discord.Interaction[SlowBot], task_id: str) -> None:
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.outcomes.append("cancelled")
                raise
            await interaction.response.send_message(f"Task {task_id}")
            self.outcomes.append("answered")

        self.tree.add_command(group)

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[KitBot]:
    bot = KitBot(fake.guild_id)
    async with fake.running(bot):
        yield bot


async def answered(
    fake: FakeDiscord, bot: KitBot, **options: str | bool | int
) -> tuple[FakeInteraction, FakeMessage, KitInteraction]:
    """Run `/suno status` and return the fake's record, the reply, and discord.py's interaction."""
    inter = await fake.interact(options={"task_id": "task-1", **options})
    await inter.wait_callback()
    await fake.wait_for(lambda: len(bot.callback_message_ids) == len(bot.seen))
    message = fake.message_for(inter)
    assert message is not None
    return inter, message, bot.seen[-1]


async def test_patch_discord_points_discord_py_at_the_fake_and_restores_it() -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as fake:
        with fake.patch_discord():
            assert fake.api_base == Route.BASE
            assert str(DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
        assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


async def test_bot_logs_in_syncs_guild_commands_and_identifies(
    fake: FakeDiscord, bot: KitBot
) -> None:
    calls = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in calls
    assert ("GET", "/oauth2/applications/@me") in calls
    sync_path = f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
    assert calls.count(("PUT", sync_path)) == 1
    [suno] = fake.registered_commands[str(fake.guild_id)]
    assert suno["name"] == "suno"
    assert {o["name"] for o in suno["options"]} == {"status", "later", "silent", "button"}
    [identify] = [f for f in fake.gateway_frames if f["op"] == 2]
    assert identify["d"]["token"] == "<redacted>"
    assert identify["d"]["intents"] == 0
    assert bot.user is not None and bot.user.id == fake.bot_user_id
    assert all(r.has_authorization for r in fake.requests)
    assert fake.unexpected == []
    assert fake.rejected == []


async def test_status_reply_arrives_as_the_callback_and_becomes_the_original_message(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter, message, interaction = await answered(fake, bot, task_id="abc")

    assert inter.callback is not None and inter.callback.type == 4
    assert inter.callback.elapsed < 1
    assert message.embeds[0]["title"] == "Task abc"
    assert not message.ephemeral
    assert message.webhook_id == fake.application_id
    assert [e.via for e in message.edits] == ["callback"]
    assert bot.callback_message_ids == [message.id]
    assert interaction.command is not None
    assert interaction.command.qualified_name == "suno status"
    assert interaction.guild_id == fake.guild_id
    assert interaction.channel_id == fake.channel_id
    assert interaction.filesize_limit == 10 * 1024 * 1024
    [callback] = [r for r in fake.requests if r.path.endswith("/callback")]
    assert callback.query.get("with_response") in ("1", "true")


async def test_deferred_reply_is_replaced_by_the_webhook_edit(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter = await fake.interact(subcommand="later", options={"task_id": "xyz"})

    assert (await inter.wait_callback()).type == 5
    await fake.wait_for(lambda: len(fake.messages[inter.original_message_id or 0].edits) == 2)
    message = fake.message_for(inter)
    assert message is not None
    assert [e.via for e in message.edits] == ["callback", "webhook"]
    assert not message.loading
    assert message.embeds[0]["title"] == "Task xyz"
    assert message.embeds[0]["description"] == "Running"


async def test_bot_token_edits_its_own_channel_message(fake: FakeDiscord, bot: KitBot) -> None:
    _, message, _ = await answered(fake, bot)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    edited = await partial.edit(content="now running", embed=None)

    assert edited.content == "now running"
    assert message.content == "now running"
    assert message.embeds == []
    assert message.edits[-1].via == "channel"


async def test_ephemeral_reply_cannot_be_edited_with_the_bot_token(
    fake: FakeDiscord, bot: KitBot
) -> None:
    _, message, _ = await answered(fake, bot, ephemeral=True)
    assert message.ephemeral
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    with pytest.raises(discord.NotFound) as caught:
        await partial.edit(content="nope")

    assert caught.value.code == 10008


@pytest.mark.parametrize("route", ["channel", "webhook"])
async def test_a_429_is_retried_by_discord_py_and_the_edit_lands(
    fake: FakeDiscord, bot: KitBot, route: str
) -> None:
    _, message, interaction = await answered(fake, bot)
    if route == "channel":
        fake.rate_limit_next("PATCH", "/channels/*/messages/*", retry_after=0.05)
        partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)
        await partial.edit(content="after the limit")
    else:
        fake.rate_limit_next("PATCH", "/webhooks/*/messages/@original", retry_after=0.05)
        await interaction.edit_original_response(content="after the limit")

    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [429, 200]
    assert patches[1].time - patches[0].time >= 0.05
    assert message.content == "after the limit"


async def test_an_expired_token_answers_401_50027(fake: FakeDiscord, bot: KitBot) -> None:
    inter, message, interaction = await answered(fake, bot)
    fake.expire_token(inter.token)

    with pytest.raises(discord.HTTPException) as caught:
        await interaction.edit_original_response(content="too late")

    assert caught.value.status == 401
    assert caught.value.code == 50027
    assert message.content == ""


async def test_tokens_expire_fifteen_minutes_after_the_interaction_id_time(
    fake: FakeDiscord, bot: KitBot
) -> None:
    almost_expired = datetime.now(UTC) - timedelta(minutes=15) + timedelta(seconds=1)
    inter = await fake.interact(options={"task_id": "old"}, created_at=almost_expired)
    await inter.wait_callback()
    await fake.wait_for(lambda: len(bot.callback_message_ids) == 1)
    interaction = bot.seen[-1]
    assert abs((interaction.expires_at - inter.expires_at).total_seconds()) < 0.002

    await fake.wait_for(inter.token_expired, timeout=2)
    with pytest.raises(discord.HTTPException) as caught:
        await interaction.edit_original_response(content="too late")

    assert caught.value.code == 50027
    assert interaction.is_expired()


async def test_edits_of_a_deleted_message_answer_404_10008(fake: FakeDiscord, bot: KitBot) -> None:
    _, message, interaction = await answered(fake, bot)
    fake.delete_message(message.id)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    with pytest.raises(discord.NotFound) as by_webhook:
        await interaction.edit_original_response(content="gone")
    with pytest.raises(discord.NotFound) as by_channel:
        await partial.edit(content="gone")

    assert by_webhook.value.code == by_channel.value.code == 10008


async def test_lost_channel_access_answers_403_50001(fake: FakeDiscord, bot: KitBot) -> None:
    _, message, interaction = await answered(fake, bot)
    fake.revoke_channel_access(fake.channel_id)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    with pytest.raises(discord.Forbidden) as caught:
        await partial.edit(content="hidden")
    await interaction.edit_original_response(content="the token still works")

    assert caught.value.code == 50001
    assert message.content == "the token still works"


def _long_title_embed() -> discord.Embed:
    return discord.Embed.from_dict({"title": "t" * 300})


def _javascript_button() -> discord.ui.View:
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="Listen", url="javascript:alert(1)"))
    return view


@pytest.mark.parametrize("bad", ["long embed title", "javascript: link button"])
async def test_invalid_bodies_are_rejected_with_50035_and_recorded(
    fake: FakeDiscord, bot: KitBot, bad: str
) -> None:
    _, message, interaction = await answered(fake, bot)

    with pytest.raises(discord.HTTPException) as caught:
        if bad == "long embed title":
            await interaction.edit_original_response(embed=_long_title_embed())
        else:
            await interaction.edit_original_response(view=_javascript_button())

    assert caught.value.status == 400
    assert caught.value.code == 50035
    [rejected] = fake.rejected
    assert rejected.method == "PATCH"
    assert rejected.path.endswith("/messages/@original")
    assert message.embeds[0]["title"] == "Task task-1"
    assert len(message.edits) == 1


async def test_a_second_callback_is_rejected_with_40060(fake: FakeDiscord, bot: KitBot) -> None:
    inter, _, _ = await answered(fake, bot)
    url = f"{fake.api_base}/interactions/{inter.id}/{inter.token}/callback"

    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": 4, "data": {"content": "again"}}) as response,
    ):
        body = await response.json()

    assert response.status == 400
    assert body["code"] == 40060


async def test_a_callback_after_the_ack_window_is_an_unknown_interaction(
    fake: FakeDiscord, bot: KitBot
) -> None:
    fake.ack_window = 0.1
    inter = await fake.interact(subcommand="silent", options={})
    await fake.wait_for(lambda: len(bot.seen) == 1)
    await fake.wait_for(lambda: time.monotonic() - inter.dispatched_at > fake.ack_window)

    with pytest.raises(discord.NotFound) as caught:
        await bot.seen[0].response.send_message("late")

    assert caught.value.code == 10062
    assert inter.callback is None


async def test_unknown_routes_answer_404_and_are_recorded(fake: FakeDiscord, bot: KitBot) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{fake.api_base}/guilds/{fake.guild_id}/members") as response,
    ):
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/json"

    [unexpected] = fake.unexpected
    assert unexpected.path == f"/guilds/{fake.guild_id}/members"


async def test_the_bot_resumes_after_a_gateway_drop_and_still_gets_interactions(
    fake: FakeDiscord, bot: KitBot
) -> None:
    await fake.drop_gateway()
    await fake.wait_for(lambda: fake.ready_count == 2)

    _, message, _ = await answered(fake, bot, task_id="after-resume")

    ops = [f["op"] for f in fake.gateway_frames]
    assert ops.count(2) == 1
    assert ops.count(6) == 1
    assert message.embeds[0]["title"] == "Task after-resume"


async def test_a_restarted_bot_finds_its_old_messages(fake: FakeDiscord) -> None:
    first = KitBot(fake.guild_id)
    async with fake.running(first):
        _, message, _ = await answered(fake, first)

    second = KitBot(fake.guild_id)
    async with fake.running(second):
        partial = second.get_partial_messageable(fake.channel_id).get_partial_message(message.id)
        await partial.edit(content="finished after a restart")
        _, fresh, _ = await answered(fake, second, task_id="new")

    assert message.content == "finished after a restart"
    assert fresh.embeds[0]["title"] == "Task new"
    assert [f["op"] for f in fake.gateway_frames].count(2) == 2


async def test_a_dm_interaction_has_a_user_and_no_guild(fake: FakeDiscord, bot: KitBot) -> None:
    inter = await fake.interact(options={"task_id": "dm"}, guild=False)

    await inter.wait_callback()
    await fake.wait_for(lambda: len(bot.callback_message_ids) == 1)

    interaction = bot.seen[-1]
    assert interaction.guild_id is None
    assert isinstance(interaction.user, discord.User)
    message = fake.message_for(inter)
    assert message is not None and message.guild_id is None


async def test_with_the_guilds_intent_the_guild_and_channel_are_cached(fake: FakeDiscord) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    bot = KitBot(fake.guild_id, intents)
    async with fake.running(bot):
        _, message, interaction = await answered(fake, bot)
        deleted = bot.wait_for("raw_message_delete", timeout=2)
        fake.delete_message(message.id)
        event = await deleted

    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.me is not None
    assert isinstance(bot.get_channel(fake.channel_id), discord.TextChannel)
    assert interaction.channel is bot.get_channel(fake.channel_id)
    assert event.message_id == message.id


async def test_a_button_press_edits_the_message_through_the_callback(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter = await fake.interact(subcommand="button", options={})
    await inter.wait_callback()
    message = fake.message_for(inter)
    assert message is not None
    assert message.components[0]["components"][0]["custom_id"] == "refresh"

    press = await fake.press_button(message.id, "refresh")

    assert (await press.wait_callback()).type == 7
    assert message.content == "refreshed"
    assert [e.via for e in message.edits] == ["callback", "callback"]


async def test_followups_post_new_messages_but_first_replace_a_deferred_reply(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter = await fake.interact(subcommand="silent", options={})
    await fake.wait_for(lambda: len(bot.seen) == 1)
    interaction = bot.seen[0]

    await interaction.response.defer(ephemeral=True)
    first = await interaction.followup.send("first", wait=True)
    second = await interaction.followup.send("second", wait=True)

    original = fake.message_for(inter)
    assert original is not None
    assert first.id == original.id
    assert original.ephemeral and not original.loading
    assert original.content == "first"
    assert inter.followup_ids == [second.id]
    assert fake.messages[second.id].edits[0].via == "webhook"


async def test_leaving_the_block_lets_the_commands_dispatched_in_it_finish(
    fake: FakeDiscord,
) -> None:
    bot = SlowBot(fake.guild_id)
    async with fake.running(bot):
        inter = await fake.interact(options={"task_id": "slow"})
        asyncio.get_running_loop().call_later(0.2, bot.release.set)

    assert bot.outcomes == ["answered"]
    assert inter.callback is not None and inter.callback.type == 4
    assert "interaction_check" not in vars(bot.tree)


async def test_a_command_still_running_after_the_drain_timeout_is_cancelled(
    fake: FakeDiscord,
) -> None:
    bot = SlowBot(fake.guild_id)
    async with fake.running(bot, drain_timeout=0.2):
        inter = await fake.interact(options={"task_id": "stuck"})

    assert bot.outcomes == ["cancelled"]
    assert inter.callback is None


# --- Components V2 ------------------------------------------------------------------------------


def _card(text: str = "Queued") -> discord.ui.LayoutView:
    view = discord.ui.LayoutView()
    view.add_item(discord.ui.Container(discord.ui.TextDisplay(text), accent_colour=0x5865F2))
    return view


async def test_an_embed_message_becomes_a_card_only_when_its_embeds_are_cleared(
    fake: FakeDiscord, bot: KitBot
) -> None:
    _, message, interaction = await answered(fake, bot)

    with pytest.raises(discord.HTTPException) as kept_embeds:
        await interaction.edit_original_response(view=_card())
    edit: Any = interaction.edit_original_response
    await edit(embeds=[], view=_card("Running"))

    assert kept_embeds.value.code == 50035
    assert message.flags & IS_COMPONENTS_V2
    assert message.embeds == []
    assert message.components[0]["components"][0]["content"] == "Running"


async def test_a_card_never_takes_content_embeds_again_nor_loses_its_flag(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter, message, interaction = await answered(fake, bot)
    edit: Any = interaction.edit_original_response
    await edit(embeds=[], view=_card())
    url = f"{fake.api_base}/webhooks/{fake.application_id}/{inter.token}/messages/@original"

    async with aiohttp.ClientSession() as http:
        answers = []
        for body in (
            {"content": "plain text again"},
            {"embeds": [{"title": "an embed again"}]},
            {"flags": 0, "components": []},
        ):
            async with http.patch(url, json=body) as response:
                answers.append((response.status, (await response.json())["code"]))

    assert answers == [(400, 50035)] * 3
    assert message.flags & IS_COMPONENTS_V2
    assert message.components[0]["components"][0]["content"] == "Queued"


async def test_a_deferred_reply_cannot_carry_the_components_v2_flag(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter = await fake.interact(subcommand="silent", options={})
    await fake.wait_for(lambda: len(bot.seen) == 1)
    url = f"{fake.api_base}/interactions/{inter.id}/{inter.token}/callback"

    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": 5, "data": {"flags": IS_COMPONENTS_V2}}) as response,
    ):
        body = await response.json()

    assert response.status == 400
    assert body["code"] == 50035
    assert inter.callback is None


def _v2(*components: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"flags": IS_COMPONENTS_V2, "components": list(components), **extra}


def _text(content: str = "hi") -> dict[str, Any]:
    return {"type": 10, "content": content}


def _container(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 17, "components": list(children)}


_LINK = {"type": 2, "style": 5, "label": "MP3", "url": "https://cdn1.suno.ai/a.mp3"}
_THUMB = {"type": 11, "media": {"url": "https://cdn2.suno.ai/a.jpeg"}}


def test_a_well_formed_card_is_accepted() -> None:
    section = {"type": 9, "components": [_text()], "accessory": _THUMB}
    row = {"type": 1, "components": [_LINK]}
    gallery = {"type": 12, "items": [{"media": {"url": "https://cdn2.suno.ai/b.jpeg"}}]}
    file = {"type": 13, "file": {"url": "attachment://song.mp3"}}
    select = {
        "type": 1,
        "components": [
            {"type": 3, "custom_id": "x", "options": [{"label": "a", "value": "a"}]},
        ],
    }
    body = _v2(_container(section, {"type": 14}, row, gallery, file, select), embeds=[])
    assert message_violations(body) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_v2(_text(), content="hello"), "content: cannot be sent"),
        (_v2(_text(), embeds=[{"title": "t"}]), "embeds: cannot be sent"),
        (_v2(_container(*[_text()] * 40)), "41 components > 40"),
        (_v2(_text("x" * 2000), _container(_text("y" * 2001))), "4001 characters of text"),
        (_v2({"type": 99}), "component type 99 is not allowed"),
        (_v2(_container(_container(_text()))), "type 17 is not allowed here"),
        (_v2(_container()), "a container needs components"),
        (_v2({"type": 9, "components": [_text()]}), "accessory: required"),
        (_v2({"type": 9, "components": [], "accessory": _THUMB}), "1 to 3 text displays"),
        (_v2({"type": 10}), "content: required"),
        (_v2({"type": 11, "media": {"url": "https://a.b/c.png"}}), "type 11 is not allowed"),
        (_v2({"type": 13, "file": {"url": "https://a.b/song.mp3"}}), "attachment:// URL"),
        (_v2({"type": 1, "components": [_LINK] * 6}), "6 > 5"),
        (
            _v2(
                {
                    "type": 1,
                    "components": [
                        {
                            "type": 3,
                            "custom_id": "x",
                            "options": [{"label": str(n), "value": str(n)} for n in range(26)],
                        }
                    ],
                }
            ),
            "needs 1 to 25",
        ),
        (
            _v2({"type": 1, "components": [{"type": 3, "custom_id": "c" * 101, "options": []}]}),
            "custom_id: 101 > 100",
        ),
    ],
)
def test_each_broken_components_v2_rule_is_reported(body: dict[str, Any], problem: str) -> None:
    problems = message_violations(body)
    assert any(problem in line for line in problems), problems


async def test_a_reply_records_what_it_replies_to_and_whom_it_may_ping(
    fake: FakeDiscord, bot: KitBot
) -> None:
    _, message, _ = await answered(fake, bot)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)
    allowed = discord.AllowedMentions(users=[discord.Object(id=42)], replied_user=False)

    await partial.reply("<@42> done", allowed_mentions=allowed)

    [reply] = fake.replies_to(message.id)
    assert reply.content == "<@42> done"
    assert reply.allowed_mentions is not None and reply.allowed_mentions["users"] == [42]
    assert reply.payload["message_reference"]["message_id"] == str(message.id)


async def test_a_reply_to_a_deleted_message_is_refused(fake: FakeDiscord, bot: KitBot) -> None:
    _, message, _ = await answered(fake, bot)
    fake.delete_message(message.id)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    with pytest.raises(discord.HTTPException) as caught:
        await partial.reply("too late")

    assert caught.value.code == 50035
    assert fake.replies_to(message.id) == []


async def test_an_edit_with_a_file_attaches_it_typed_by_its_extension(
    fake: FakeDiscord, bot: KitBot
) -> None:
    _, message, _ = await answered(fake, bot)
    partial = bot.get_partial_messageable(fake.channel_id).get_partial_message(message.id)

    await partial.edit(attachments=[discord.File(io.BytesIO(b"ID3" * 100), "song-1.mp3")])

    [attachment] = message.attachments
    assert (attachment["filename"], attachment["size"]) == ("song-1.mp3", 300)
    assert attachment["content_type"] == "audio/mpeg"
    assert message.edits[-1].payload["attachments"] == [{"id": 0, "filename": "song-1.mp3"}]


async def test_a_press_carries_the_member_permissions_it_is_given(
    fake: FakeDiscord, bot: KitBot
) -> None:
    inter = await fake.interact(subcommand="button", options={})
    await inter.wait_callback()
    message = fake.message_for(inter)
    assert message is not None
    moderator = discord.Permissions(manage_messages=True).value

    press = await fake.press_button(message.id, "refresh", user_id=7, permissions=moderator)

    assert press.payload["member"]["permissions"] == str(moderator)
    assert press.payload["member"]["user"]["id"] == "7"
    assert fake.custom_ids(message.id) == ["refresh"]
