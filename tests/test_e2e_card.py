"""The song card end to end: the real bot against the fake Discord, which checks every
Components V2 rule, for 2, 12 and 30 songs; the picker that opens the rest, also after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.cards import card_text, link_buttons, selects
from tests.kit.fake_discord import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
)
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import bot_settings, running_bot
from tests.kit.payloads import audio_url_for, clip_ids_for, music_timeline


async def finished_card(fake: FakeDiscord, task_id: str) -> FakeMessage:
    """Runs `/suno status` for `task_id` until its card says Done."""
    interaction = await fake.interact(options={"task_id": task_id})
    await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    await fake.wait_for(lambda: "**Status:** Done" in card_text(message.components))
    return message


def mp3s(components: list[dict[str, object]]) -> set[str]:
    return {url for label, url in link_buttons(components) if label.startswith("MP3")}


async def open_every_option(fake: FakeDiscord, card: FakeMessage) -> list[FakeMessage]:
    """Chooses every option of the card's picker, as many at a time as the menu allows; the
    private cards the bot answers with."""
    (picker,) = selects(card.components)
    values = [str(option["value"]) for option in picker["options"]]
    most = int(picker.get("max_values", 1))
    answers = []
    for start in range(0, len(values), most):
        chosen = values[start : start + most]
        interaction = await fake.choose(card.id, str(picker["custom_id"]), chosen)
        await interaction.wait_callback()
        await wait_answered(fake, interaction)
        answer = fake.message_for(interaction)
        assert answer is not None and answer.ephemeral
        answers.append(answer)
    return answers


async def wait_answered(fake: FakeDiscord, interaction: FakeInteraction) -> None:
    """Until the interaction's answer shows more than "thinking"."""

    def answered() -> bool:
        message = fake.message_for(interaction)
        return message is not None and not message.loading

    await fake.wait_for(answered)


@pytest.mark.parametrize("count", [2, 12, 30])
async def test_every_song_of_a_task_is_reachable_from_its_card(
    fake: FakeDiscord, relay: FakeRelay, database: Path, count: int
) -> None:
    task_id = f"songs-{count}"
    relay.add_task(task_id, music_timeline(task_id, clip_count=count))
    every_mp3 = {audio_url_for(c, "complete") for c in clip_ids_for(task_id, count)}
    async with running_bot(fake, bot_settings(relay, database)):
        card = await finished_card(fake, task_id)
        reachable = mp3s(card.components)
        if count > 12:
            for answer in await open_every_option(fake, card):
                assert answer.flags & IS_COMPONENTS_V2
                reachable |= mp3s(answer.components)
        else:
            assert selects(card.components) == []
    assert fake.rejected == []
    assert reachable == every_mp3
    assert card.flags & IS_COMPONENTS_V2 and card.embeds == [] and card.content == ""


async def test_the_picker_answers_from_the_relay_after_a_restart(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("restarted", music_timeline("restarted", clip_count=30))
    settings = bot_settings(relay, database)
    async with running_bot(fake, settings):
        card = await finished_card(fake, "restarted")
    (picker,) = selects(card.components)
    last = str(picker["options"][-1]["value"])
    async with running_bot(fake, settings):
        interaction = await fake.choose(card.id, str(picker["custom_id"]), [last])
        callback = await interaction.wait_callback()
        await wait_answered(fake, interaction)
    answer = fake.message_for(interaction)
    assert callback.type == 5  # not followed any more: the relay is asked, behind "thinking"
    assert answer is not None and answer.ephemeral
    last_clip = clip_ids_for("restarted", 30)[-1]
    assert mp3s(answer.components) == {audio_url_for(last_clip, "complete")}
    assert "`30`" in card_text(answer.components)
    assert fake.rejected == []


async def test_a_picker_whose_task_the_relay_forgot_says_so_privately(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("forgotten", music_timeline("forgotten", clip_count=14))
    settings = bot_settings(relay, database)
    async with running_bot(fake, settings):
        card = await finished_card(fake, "forgotten")
    relay.remove_task("forgotten")
    (picker,) = selects(card.components)
    async with running_bot(fake, settings):
        interaction = await fake.choose(card.id, str(picker["custom_id"]), ["12-12"])
        await interaction.wait_callback()
        await wait_answered(fake, interaction)
    answer = fake.message_for(interaction)
    assert answer is not None and answer.flags & EPHEMERAL
    assert "no longer knows this card's task" in card_text(answer.components)
    assert fake.rejected == []


async def test_a_followed_task_answers_the_picker_at_once_without_the_relay(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    timeline = music_timeline("live", clip_count=20)
    relay.add_task("live", timeline[:-1])  # streams for as long as the test runs
    async with running_bot(fake, bot_settings(relay, database)):
        interaction = await fake.interact(options={"task_id": "live"})
        await interaction.wait_callback()
        card = fake.message_for(interaction)
        assert card is not None
        await fake.wait_for(lambda: "**Status:** Generating" in card_text(card.components))
        (picker,) = selects(card.components)
        chosen = await fake.choose(card.id, str(picker["custom_id"]), ["19-19"])
        callback = await chosen.wait_callback()
    assert callback.type == 4  # answered straight from what the tracker knows
    answer = fake.message_for(chosen)
    assert answer is not None and answer.ephemeral
    assert "`20`" in card_text(answer.components)
    assert "Streaming" in card_text(answer.components)


async def test_a_stem_split_reads_as_its_song_with_the_stems_under_it(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    song = music_timeline("split", clip_count=1)[-1]
    source = song["data"][0]
    parts = ["Vocals", "Backing Vocals", "Drums", "Bass", "Guitar", "Keyboard", "Synth"]
    stems = [
        {
            **source,
            "id": f"stem-{n}",
            "title": f"{source['title']} ({part})",
            "model_name": "chirp-stem",
            "video_url": "",
            "audio_url": f"https://cdn1.suno.ai/stem-{n}.mp3",
            "metadata": {**source["metadata"], "stem_from_id": source["id"]},
        }
        for n, part in enumerate(parts)
    ]
    relay.add_task("split", {**song, "task_id": "split", "data": [*stems[:3], source, *stems[3:]]})
    async with running_bot(fake, bot_settings(relay, database)):
        card = await finished_card(fake, "split")
    lines = card_text(card.components).splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("`1` "))
    assert lines[first].startswith(f"`1` **{source['title']}**")
    assert lines[first + 2] == f"**Stems of {source['title']}**"
    assert [line.split(" · ")[0] for line in lines[first + 3 :]] == [
        f"`{n + 2}` **{part}**" for n, part in enumerate(parts)
    ]
    assert {f"https://cdn1.suno.ai/stem-{n}.mp3" for n in range(7)} <= mp3s(card.components)
    assert fake.rejected == []


async def test_a_message_sent_as_embeds_before_an_upgrade_becomes_a_card_when_resumed(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    timeline = music_timeline("upgraded")
    relay.add_task("upgraded", [timeline[3]])  # still streaming while the old version runs
    settings = bot_settings(relay, database)
    async with running_bot(fake, settings):
        interaction = await fake.interact(options={"task_id": "upgraded"})
        await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    # What the bot's earlier version left: embeds and a row of link buttons, no V2 flag.
    message.flags &= ~IS_COMPONENTS_V2
    message.embeds = [{"type": "rich", "title": "City Lights", "description": "Generating"}]
    message.components = []
    relay.add_task("upgraded", timeline[-1])
    async with running_bot(fake, settings):
        await fake.wait_for(lambda: "**Status:** Done" in card_text(message.components))
    assert message.embeds == [] and message.flags & IS_COMPONENTS_V2
    assert fake.rejected == []
