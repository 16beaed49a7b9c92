"""Rendering tasks into status messages: what users see, and that Discord always accepts it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.i18n import Catalog
from bot.render import (
    MAX_BUTTONS,
    Notice,
    RenderedMessage,
    escape,
    render_error,
    render_task,
    truncate,
)
from bot.suno import errors
from bot.suno.models import Task, TaskStatus, task_from
from tests.kit.discord_limits import validate_message_payload

SEEDS = Path("/work/shared/seeds")
FIXTURES = Path(__file__).parent / "fixtures" / "relay"
TASK_ID = "2a145658-3342-4228-b779-b8323a2b77df"
SUBMIT, START, FINISH = 1726911801, 1726911812, 1726911897
STREAM = "https://audiopipe.suno.ai/?item_id=3435e194"
NONE_MP3 = "https://cdn1.suno.ai/None.mp3"
HUGE = 10_000


# --- payload builders ----------------------------------------------------------------------------


def seed_task(name: str) -> Task:
    """The task in a seed document (some are relay docs with the JSON example inside)."""
    text = (SEEDS / name).read_text(encoding="utf-8")
    start = re.search(r'\{\s*"code"', text)
    assert start is not None
    body, _ = json.JSONDecoder().raw_decode(text[start.start() :])
    return task_from(body["data"])


def fixture_task(name: str) -> Task:
    """The task in a relay answer stored under tests/fixtures/relay."""
    return task_from(json.loads((FIXTURES / name).read_text(encoding="utf-8"))["data"])


def clip(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """A nested-family clip, complete unless told otherwise."""
    ident = f"clip-{number:04d}"
    payload: dict[str, Any] = {
        "id": ident,
        "title": f"Song {number}",
        "status": "complete",
        "audio_url": f"https://cdn1.suno.ai/{ident}.mp3",
        "video_url": f"https://cdn1.suno.ai/{ident}.mp4",
        "image_url": f"https://cdn2.suno.ai/image_{ident}.jpeg",
        "model_name": "chirp-v4",
        "metadata": {"tags": "dream pop", "prompt": "", "duration": 128.92},
    }
    payload.update(overrides)
    return payload


def task(status: str = "SUCCESS", data: Any = None, **overrides: Any) -> Task:
    payload: dict[str, Any] = {
        "task_id": TASK_ID,
        "action": "MUSIC",
        "status": status,
        "fail_reason": "",
        "submit_time": SUBMIT,
        "start_time": START,
        "finish_time": FINISH if status in ("SUCCESS", "FAILURE") else 0,
        "progress": "100%" if status in ("SUCCESS", "FAILURE") else "0%",
        "data": [clip(1), clip(2)] if data is None else data,
    }
    payload.update(overrides)
    return task_from(payload)


def streaming_task(progress: str = "0%") -> Task:
    return task(
        "IN_PROGRESS",
        [
            clip(1, status="streaming", audio_url=STREAM, video_url="", metadata={"tags": "x"}),
            clip(2, status="queued", audio_url="", video_url="", image_url=""),
        ],
        progress=progress,
    )


def lyrics_task(text: str = "[Verse]\nHello *world*", title: str = "Night Drive") -> Task:
    return task(
        "SUCCESS",
        {"id": "lyr-1", "text": text, "title": title, "status": "complete", "tags": "synth"},
        action="LYRICS",
    )


def finished_with_result_url(url: str) -> Task:
    return task_from(
        {"task_id": TASK_ID, "status": "SUCCESS", "finish_time": FINISH, "result_url": url}
    )


def payload_of(message: RenderedMessage) -> dict[str, Any]:
    view = message.view()
    return {
        "embeds": [embed.to_dict() for embed in message.embeds],
        "components": view.to_components() if view else [],
    }


def assert_valid(message: RenderedMessage) -> None:
    problems = validate_message_payload(payload_of(message))
    assert problems == []


def rendered_text(message: RenderedMessage) -> str:
    return json.dumps(payload_of(message), ensure_ascii=False)


def description(message: RenderedMessage, index: int = 0) -> str:
    return message.embeds[index].description or ""


# --- the finished song ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed", ["000_301bd34e0b881259.txt", "001_6767632a51840d81.txt", "002_deb3e9a937df534c.txt"]
)
def test_seed_tasks_render_one_valid_card_per_song(seed: str) -> None:
    source = seed_task(seed)
    message = render_task(source, locale="en-US")
    assert_valid(message)
    assert len(message.embeds) == len(source.clips)
    for embed, song in zip(message.embeds, source.clips, strict=True):
        assert embed.title == song.title
        assert embed.url == song.audio_url
        assert embed.image.url == song.cover_url
        assert embed.colour == discord.Colour(0x57F287)


def test_finished_card_shows_tags_duration_and_model() -> None:
    message = render_task(seed_task("000_301bd34e0b881259.txt"), locale="en-US")
    fields = {field.name: field.value for field in message.embeds[0].fields}
    assert fields == {"Tags": "heartfelt salsa", "Duration": "2:09", "Model": "chirp-v3 (v3.5)"}
    assert message.embeds[0].footer.text == f"Task {TASK_ID} · song 1 of 2"


def test_finished_song_gets_mp3_and_mp4_buttons_one_row_per_song() -> None:
    source = seed_task("000_301bd34e0b881259.txt")
    message = render_task(source, locale="en-US")
    got = [(button.label, button.url, button.row) for button in message.buttons]
    assert got == [
        ("MP3 · 1", source.clips[0].audio_url, 0),
        ("MP4 · 1", source.clips[0].video_url, 0),
        ("MP3 · 2", source.clips[1].audio_url, 1),
        ("MP4 · 2", source.clips[1].video_url, 1),
    ]


def test_mp4_button_only_when_the_video_exists() -> None:
    message = render_task(task(data=[clip(1), clip(2, video_url="")]), locale="en-US")
    assert [button.label for button in message.buttons] == ["MP3 · 1", "MP4 · 1", "MP3 · 2"]


def test_view_holds_link_buttons_and_never_times_out() -> None:
    view = render_task(task(), locale="en-US").view()
    assert view is not None
    assert view.timeout is None
    assert all(
        isinstance(item, discord.ui.Button) and item.style is discord.ButtonStyle.link
        for item in view.children
    )


def test_no_buttons_means_no_view() -> None:
    assert render_task(task("FAILURE"), locale="en-US").view() is None


def test_identical_lyrics_are_shown_once_not_on_every_card() -> None:
    message = render_task(seed_task("001_6767632a51840d81.txt"), locale="en-US")
    assert "Walking down the streets" in description(message, 0)
    assert "Walking down the streets" not in description(message, 1)
    assert "```" not in description(message, 0)


def test_first_card_carries_status_and_finish_time() -> None:
    message = render_task(task(), locale="en-US")
    assert "**Status:** Done" in description(message)
    assert f"<t:{FINISH}:f>" in description(message)


def test_success_without_songs_still_renders_a_card() -> None:
    message = render_task(task(data=[]), locale="en-US")
    assert_valid(message)
    assert len(message.embeds) == 1
    assert "without any songs" in description(message)
    assert message.buttons == ()


def test_success_with_null_data_still_renders_a_card() -> None:
    message = render_task(task_from({"task_id": TASK_ID, "status": "SUCCESS"}), locale="en")
    assert_valid(message)
    assert message.embeds


def test_success_with_only_a_result_url_offers_that_link() -> None:
    message = render_task(fixture_task("success_result_url.json"), locale="en-US")
    mp3 = "https://cdn1.suno.ai/0b6c5e1a-7d42-4f1e-9a3b-6c8d2e4f7a91.mp3"
    assert_valid(message)
    assert len(message.embeds) == 1
    assert message.embeds[0].colour == discord.Colour(0x57F287)
    assert message.embeds[0].url == mp3
    assert "**Status:** Done" in description(message)
    assert "without any songs" not in description(message)
    assert [(button.label, button.url) for button in message.buttons] == [("MP3 · 1", mp3)]


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://cdn1.suno.ai/0b6c5e1a-7d42-4f1e-9a3b-6c8d2e4f7a91.mp4", "MP4 · 1"),
        ("https://relay.example/files/0b6c5e1a?download=1", "Open result"),
    ],
)
def test_result_url_button_is_labelled_by_what_it_links_to(url: str, label: str) -> None:
    message = render_task(finished_with_result_url(url), locale="en-US")
    assert_valid(message)
    assert [(button.label, button.url) for button in message.buttons] == [(label, url)]


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn1.suno.ai/None.mp3",
        "javascript:alert(1)",
        "https://cdn1.suno.ai/" + "a" * 600 + ".mp3",
    ],
)
def test_result_url_that_cannot_be_a_button_is_never_offered(url: str) -> None:
    message = render_task(finished_with_result_url(url), locale="en-US")
    assert_valid(message)
    assert message.buttons == ()
    assert "None.mp3" not in rendered_text(message)
    assert "javascript" not in rendered_text(message)


@pytest.mark.parametrize(
    ("model_name", "shown"),
    [
        ("chirp-fenix", "chirp-fenix (v5.5)"),
        ("chirp-auk-turbo", "chirp-auk-turbo (v4.5-all)"),
        ("chirp_hawk*", "chirp\\_hawk\\*"),
    ],
)
def test_finished_card_shows_the_public_model_version_or_the_name_escaped(
    model_name: str, shown: str
) -> None:
    message = render_task(task(data=[clip(1, model_name=model_name)]), locale="en-US")
    fields = {field.name: field.value for field in message.embeds[0].fields}
    assert fields["Model"] == shown


def test_failed_song_in_a_finished_task_shows_its_error_and_no_links() -> None:
    broken = clip(
        2,
        status="error",
        audio_url=NONE_MP3,
        video_url="",
        metadata={"error_message": "Song blocked by moderation"},
    )
    message = render_task(task(data=[clip(1), broken]), locale="en-US")
    assert_valid(message)
    card = message.embeds[1]
    assert card.url is None
    assert card.colour == discord.Colour(0xED4245)
    assert any("moderation" in field.value for field in card.fields if field.value)
    assert [button.label for button in message.buttons] == ["MP3 · 1", "MP4 · 1"]


def test_no_button_or_link_ever_points_to_none_mp3() -> None:
    broken = [
        clip(1, status="error", audio_url=NONE_MP3, video_url="https://cdn1.suno.ai/None.mp4"),
        clip(2, status="complete", audio_url=NONE_MP3, video_url=""),
    ]
    for status in ("SUCCESS", "FAILURE", "IN_PROGRESS"):
        message = render_task(task(status, broken), locale="en-US")
        assert "None.mp" not in rendered_text(message)
        assert all(button.url for button in message.buttons)


def test_more_than_ten_songs_get_ten_cards_and_at_most_25_buttons() -> None:
    message = render_task(task(data=[clip(n) for n in range(1, 16)]), locale="en-US")
    assert_valid(message)
    assert len(message.embeds) == 10
    assert len(message.buttons) <= MAX_BUTTONS
    rows = [button.row for button in message.buttons]
    assert max(rows) <= 4
    assert all(rows.count(row) <= 5 for row in set(rows))


def test_button_with_a_url_longer_than_512_is_dropped() -> None:
    long_mp4 = "https://cdn1.suno.ai/" + "a" * 600 + ".mp4"
    message = render_task(task(data=[clip(1, video_url=long_mp4)]), locale="en-US")
    assert [button.label for button in message.buttons] == ["MP3 · 1"]


def test_urls_that_bypassed_the_models_are_still_dropped() -> None:
    base = task(data=[clip(1)])
    hostile = dataclasses.replace(
        base.clips[0],
        audio_url="javascript:alert(1)",
        video_url="data:text/html,<b>x</b>",
        cover_url="ftp://example.com/a.jpg",
    )
    message = render_task(dataclasses.replace(base, clips=(hostile,)), locale="en-US")
    assert_valid(message)
    assert message.buttons == ()
    assert message.embeds[0].url is None
    assert message.embeds[0].image.url is None


# --- lyrics tasks --------------------------------------------------------------------------------


def test_lyrics_task_shows_title_and_escaped_lyrics_outside_a_code_block() -> None:
    message = render_task(lyrics_task(), locale="en-US")
    assert_valid(message)
    assert message.embeds[0].title == "Night Drive"
    text = description(message)
    assert "[Verse]\nHello \\*world\\*" in text
    assert "```" not in text


def test_lyrics_task_without_text_says_so() -> None:
    message = render_task(lyrics_task(text=""), locale="en-US")
    assert "without any lyrics" in description(message)


def test_huge_lyrics_are_cut_to_the_description_limit() -> None:
    message = render_task(lyrics_task(text="la " * HUGE, title="t" * HUGE), locale="en-US")
    assert_valid(message)
    assert len(description(message)) <= 4096
    assert description(message).endswith("…")
    assert len(message.embeds[0].title or "") == 256


# --- while it runs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "word", "colour"),
    [
        ("NOT_START", "Not started", 0x95A5A6),
        ("SUBMITTED", "Submitted", 0x95A5A6),
        ("QUEUED", "Queued", 0x5865F2),
        ("IN_PROGRESS", "Generating", 0xF1C40F),
        ("processing", "Generating", 0xF1C40F),
        ("PENDING", "Queued", 0x5865F2),
        ("TEXT_SUCCESS", "Generating · lyrics ready", 0xF1C40F),
        ("FIRST_SUCCESS", "Generating · first songs ready", 0xF1C40F),
        ("UNKNOWN", "UNKNOWN", 0x95A5A6),
    ],
)
def test_running_card_shows_status_in_words_and_colour(status: str, word: str, colour: int) -> None:
    message = render_task(task(status, [clip(1, status="queued")]), locale="en-US")
    assert_valid(message)
    assert f"**Status:** {word}" in description(message)
    assert message.embeds[0].colour == discord.Colour(colour)


def test_unknown_raw_status_is_shown_as_is_but_escaped() -> None:
    message = render_task(task("Mystery_*State*", []), locale="en-US")
    assert "**Status:** Mystery\\_\\*State\\*" in description(message)
    assert not message.buttons


@pytest.mark.parametrize(
    ("status", "current"),
    [
        ("NOT_START", "Not started"),
        ("SUBMITTED", "Submitted"),
        ("QUEUED", "Queued"),
        ("IN_PROGRESS", "Generating"),
        ("PENDING", "Queued"),
        ("TEXT_SUCCESS", "Generating"),
        ("FIRST_SUCCESS", "Generating"),
    ],
)
def test_stage_indicator_marks_the_current_stage_when_progress_says_nothing(
    status: str, current: str
) -> None:
    message = render_task(task(status, []), locale="en-US")
    assert f"**▶ {current}**" in description(message)
    assert "%" not in description(message)


def test_progress_bar_when_the_relay_reports_real_progress() -> None:
    message = render_task(streaming_task(progress="30%"), locale="en-US")
    assert "**Progress:** ▰▰▰▱▱▱▱▱▱▱ 30%" in description(message)
    assert "▶" not in description(message)


@pytest.mark.parametrize("progress", ["0%", "100%", "", None])
def test_progress_of_0_or_100_falls_back_to_the_stage(progress: str | None) -> None:
    message = render_task(streaming_task(progress=progress or ""), locale="en-US")
    assert "**▶ Generating**" in description(message)
    assert "▰" not in description(message)


def test_running_card_shows_elapsed_time_as_discord_timestamps() -> None:
    text = description(render_task(streaming_task(), locale="en-US"))
    assert f"<t:{SUBMIT}:R>" in text
    assert f"<t:{START}:f>" in text
    assert f"<t:{FINISH}" not in text


def test_running_card_lists_what_is_known_of_each_song() -> None:
    message = render_task(streaming_task(), locale="en-US")
    embed = message.embeds[0]
    assert embed.title == "Song 1"
    assert embed.thumbnail.url == "https://cdn2.suno.ai/image_clip-0001.jpeg"
    assert [(field.name, field.value) for field in embed.fields] == [
        ("Song 1 · Song 1", "Streaming\nx"),
        ("Song 2 · Song 2", "Queued · 2:09\ndream pop"),
    ]
    assert embed.footer.text == f"Task {TASK_ID}"


def test_streaming_song_offers_a_listen_live_button() -> None:
    message = render_task(streaming_task(), locale="en-US")
    assert [(button.label, button.url) for button in message.buttons] == [
        ("Listen live · 1", STREAM)
    ]
    assert_valid(message)


def test_completed_song_has_no_listen_live_button() -> None:
    message = render_task(task("IN_PROGRESS", [clip(1, audio_url=STREAM)]), locale="en-US")
    assert all("Listen live" not in button.label for button in message.buttons)


def test_song_finished_before_the_task_already_offers_its_mp3() -> None:
    songs = [clip(1), clip(2, status="streaming", audio_url=STREAM, video_url="")]
    message = render_task(task("IN_PROGRESS", songs), locale="en-US")
    assert [(button.label, button.row) for button in message.buttons] == [
        ("MP3 · 1", 0),
        ("Listen live · 2", 1),
    ]


def test_first_success_card_keeps_running_and_offers_the_finished_songs_mp3() -> None:
    source = fixture_task("status_first_success.json")
    message = render_task(source, locale="en-US")
    assert_valid(message)
    embed = message.embeds[0]
    assert len(message.embeds) == 1
    assert embed.colour == discord.Colour(0xF1C40F)
    assert embed.title == "Paper Lanterns"
    assert "**Status:** Generating · first songs ready" in description(message)
    assert "✓ Queued → **▶ Generating** → Done" in description(message)
    assert [field.value.split("\n")[0] for field in embed.fields if field.value] == [
        "Ready · 3:18",
        "Streaming",
    ]
    assert [(button.label, button.url, button.row) for button in message.buttons] == [
        ("MP3 · 1", source.clips[0].audio_url, 0),
        ("Listen live · 2", source.clips[1].stream_url, 1),
    ]


def test_lyrics_ready_card_says_so_under_the_song_title() -> None:
    message = render_task(fixture_task("status_text_success.json"), locale="en-US")
    assert_valid(message)
    assert message.embeds[0].title == "Paper Lanterns"
    assert "**Status:** Generating · lyrics ready" in description(message)
    assert message.buttons == ()


def test_task_without_clips_yet_uses_a_generic_title() -> None:
    fresh = task_from({"task_id": TASK_ID, "status": "SUBMITTED", "data": None})
    message = render_task(fresh, locale="en-US")
    assert_valid(message)
    assert message.embeds[0].title == "Suno task"


def test_many_running_songs_stay_within_25_fields() -> None:
    message = render_task(
        task("IN_PROGRESS", [clip(n, status="streaming") for n in range(1, 40)]), locale="en"
    )
    assert_valid(message)
    assert len(message.embeds[0].fields) == 10
    assert description(message).endswith("\n…and 29 more")


# --- failure -------------------------------------------------------------------------------------


def reason_of(message: RenderedMessage) -> str | None:
    return next(field.value for field in message.embeds[0].fields if field.name == "Reason")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("status_create_task_failed.json", "CREATE\\_TASK\\_FAILED"),
        ("status_generate_lyrics_failed.json", "GENERATE\\_LYRICS\\_FAILED"),
        ("status_callback_exception.json", "CALLBACK\\_EXCEPTION"),
        ("status_sensitive_word_error.json", "SENSITIVE\\_WORD\\_ERROR"),
        (
            "status_generate_audio_failed.json",
            "Audio generation failed: the upstream model returned no audio. "
            "Credits have been refunded.",
        ),
    ],
)
def test_named_failure_shows_its_name_as_the_reason_when_no_other_is_given(
    name: str, reason: str
) -> None:
    message = render_task(fixture_task(name), locale="en-US")
    assert_valid(message)
    assert message.embeds[0].colour == discord.Colour(0xED4245)
    assert "**Status:** Failed" in description(message)
    assert reason_of(message) == reason


def test_a_song_error_wins_over_the_failure_name() -> None:
    broken = clip(1, status="error", audio_url=NONE_MP3, metadata={"error_message": "Too long"})
    message = render_task(task("SENSITIVE_WORD_ERROR", [broken]), locale="en-US")
    assert reason_of(message) == "Too long"


def test_failure_name_with_markdown_is_shown_escaped() -> None:
    message = render_task(task("*_<@&42>_*_ERROR", []), locale="en-US")
    assert_valid(message)
    reason = reason_of(message)
    assert reason is not None
    assert reason.startswith("\\*\\_")
    assert "<@&42>" not in reason


def test_failure_is_a_red_card_with_the_relay_reason() -> None:
    message = render_task(
        task("FAILURE", [clip(1, status="error")], fail_reason="Insufficient credits"),
        locale="en-US",
    )
    assert_valid(message)
    assert message.embeds[0].colour == discord.Colour(0xED4245)
    assert reason_of(message) == "Insufficient credits"
    assert "**Status:** Failed" in description(message)
    assert "▰" not in description(message)
    assert message.buttons == ()


def test_failure_reason_falls_back_to_the_clip_error() -> None:
    songs = [
        clip(1, status="error", audio_url=NONE_MP3),
        clip(2, status="error", metadata={"error_message": "Lyrics flagged"}),
    ]
    assert reason_of(render_task(task("FAILURE", songs), locale="en")) == "Lyrics flagged"


def test_failure_reason_falls_back_to_the_flat_clip_msg() -> None:
    songs = [{"id": "a", "state": "failed", "msg": "Upstream timeout", "audio_url": NONE_MP3}]
    assert reason_of(render_task(task("FAILURE", songs), locale="en")) == "Upstream timeout"


def test_failure_without_any_reason_says_none_was_given() -> None:
    assert reason_of(render_task(task("FAILURE", []), locale="en")) == "No reason given."


# --- notices and fingerprints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notice", "minutes", "text"),
    [
        (Notice.RELAY_RETRYING, None, "Relay unreachable — retrying…"),
        (Notice.AUTO_REFRESH_STOPPED, 30, "Auto-refresh stopped after 30 min"),
        (Notice.AUTO_REFRESH_STOPPED, None, "Auto-refresh stopped — run `/suno status`"),
        (Notice.LIVE_UPDATES_ENDED, None, "Live updates ended"),
    ],
)
def test_notice_is_shown_at_the_top_and_changes_the_fingerprint(
    notice: Notice, minutes: int | None, text: str
) -> None:
    for source in (streaming_task(), task(), task("FAILURE", [])):
        plain = render_task(source, locale="en-US")
        noticed = render_task(source, locale="en-US", notice=notice, watch_timeout_minutes=minutes)
        assert_valid(noticed)
        assert description(noticed).startswith("⚠️ **")
        assert text in description(noticed).splitlines()[0]
        assert noticed.fingerprint != plain.fingerprint


def test_same_task_gives_the_same_fingerprint() -> None:
    first = render_task(streaming_task(), locale="en-US")
    second = render_task(streaming_task(), locale="en-US")
    assert first.fingerprint == second.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint)


def test_fingerprint_does_not_depend_on_payload_key_order() -> None:
    songs = [clip(1), clip(2)]
    payload: dict[str, Any] = {"task_id": TASK_ID, "status": "SUCCESS", "data": songs}
    backwards = {key: payload[key] for key in reversed(payload)}
    backwards["data"] = [dict(reversed(song.items())) for song in songs]
    assert (
        render_task(task_from(payload), locale="en").fingerprint
        == render_task(task_from(backwards), locale="en").fingerprint
    )


def test_different_progress_gives_a_different_fingerprint() -> None:
    at_30 = render_task(streaming_task("30%"), locale="en-US")
    at_40 = render_task(streaming_task("40%"), locale="en-US")
    assert at_30.fingerprint != at_40.fingerprint


def test_status_change_gives_a_different_fingerprint() -> None:
    queued = render_task(task("QUEUED", []), locale="en-US")
    running = render_task(task("IN_PROGRESS", []), locale="en-US")
    assert queued.fingerprint != running.fingerprint


def test_a_changed_button_changes_the_fingerprint() -> None:
    without = render_task(task(data=[clip(1, video_url="")]), locale="en-US")
    with_video = render_task(task(data=[clip(1)]), locale="en-US")
    assert without.fingerprint != with_video.fingerprint


# --- locales -------------------------------------------------------------------------------------


def test_unknown_locale_renders_in_english() -> None:
    assert "**Status:** Generating" in description(render_task(streaming_task(), locale="tr"))


def test_a_catalog_language_changes_only_its_translated_words(tmp_path: Path) -> None:
    english = (Path(__file__).parents[1] / "bot" / "locales" / "en.json").read_text("utf-8")
    (tmp_path / "en.json").write_text(english, encoding="utf-8")
    (tmp_path / "fr.json").write_text('{"status.IN_PROGRESS": "Génération"}', encoding="utf-8")
    catalog = Catalog.from_directory(tmp_path)
    french = render_task(streaming_task(), locale="fr", catalog=catalog)
    assert "**Status:** Génération" in description(french)
    assert "**Progress:**" in description(french)
    assert (
        render_task(streaming_task(), locale="en-GB", catalog=catalog).fingerprint
        == render_task(streaming_task(), locale="en-US").fingerprint
    )


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (errors.InvalidTaskId("x"), "doesn't look like a task id"),
        (errors.TaskNotFound("x"), "No task with that id"),
        (errors.RelayKeyRejected("x"), "relay key is not accepted"),
        (errors.RelayUnavailable("x"), "can't be reached right now"),
        (errors.RelayProtocolError("x"), "can't read"),
    ],
)
def test_error_message_for_each_relay_error(error: errors.RelayError, text: str) -> None:
    message = render_error(error.message_key, locale="en-US")
    assert_valid(message)
    assert text in description(message)
    assert message.embeds[0].colour == discord.Colour(0xED4245)
    assert message.buttons == ()


def test_an_unknown_error_key_shows_the_generic_error() -> None:
    message = render_error("error.nope", locale="en-US")
    assert "went wrong on the bot's side" in description(message)


# --- hostile relays ------------------------------------------------------------------------------

_HOSTILE_TEXT = "@everyone <@&123> <@12345678901234567> [click](http://evil.example) **bold** `x`"


def hostile_clips(count: int) -> list[dict[str, Any]]:
    return [
        clip(
            n,
            title=_HOSTILE_TEXT + "T" * HUGE,
            status="streaming" if n % 3 else "complete",
            audio_url="javascript:alert(1)" if n % 2 else f"https://cdn1.suno.ai/c{n}.mp3",
            video_url="data:text/html;base64,PHNjcmlwdD4=",
            image_url="javascript:alert(1)" if n % 2 else "https://cdn2.suno.ai/i.jpeg",
            model_name="m" * HUGE,
            metadata={
                "tags": _HOSTILE_TEXT + "tag " * HUGE,
                "prompt": f"{n} {_HOSTILE_TEXT} " + "la " * HUGE,
                "duration": 10**9,
                "error_message": _HOSTILE_TEXT + "e" * HUGE,
            },
        )
        for n in range(1, count + 1)
    ]


HOSTILE_TASKS = {
    "success, 12 huge clips": task("SUCCESS", hostile_clips(12)),
    "running, 12 huge clips": task("IN_PROGRESS", hostile_clips(12), progress="55%"),
    "failure, huge reason": task("FAILURE", hostile_clips(3), fail_reason=_HOSTILE_TEXT * 500),
    "unknown status, huge": task(_HOSTILE_TEXT * 200, hostile_clips(2)),
    "success, zero clips": task("SUCCESS", []),
    "running, zero clips": task("QUEUED", []),
    "lyrics, huge": task(
        "SUCCESS",
        {"title": _HOSTILE_TEXT * 100, "text": _HOSTILE_TEXT * 300, "tags": "t" * HUGE},
    ),
    "huge task id": task("SUCCESS", hostile_clips(2), task_id="@everyone" + "i" * HUGE),
    "errored clips in success": task(
        "SUCCESS", [clip(n, status="error", audio_url=NONE_MP3) for n in range(1, 12)]
    ),
    "escapes at every cut": task(
        "SUCCESS", [clip(n, title="\\" * HUGE, metadata={"tags": "_" * HUGE}) for n in (1, 2)]
    ),
}


@pytest.mark.parametrize("notice", [None, Notice.RELAY_RETRYING])
@pytest.mark.parametrize("name", list(HOSTILE_TASKS))
def test_hostile_tasks_always_render_a_message_discord_accepts(
    name: str, notice: Notice | None
) -> None:
    message = render_task(HOSTILE_TASKS[name], locale="en-US", notice=notice)
    assert_valid(message)
    text = rendered_text(message)
    assert "@everyone" not in text
    assert "<@&123>" not in text
    assert "<@12345678901234567>" not in text
    assert "[click](" not in text
    assert "**bold**" not in text
    assert "javascript:" not in text
    assert "data:" not in text


def test_over_budget_message_trims_later_songs_lyrics_first() -> None:
    songs = [
        clip(n, metadata={"prompt": f"verse {n} " + "la " * 1000, "tags": "pop"})
        for n in range(1, 4)
    ]
    message = render_task(task("SUCCESS", songs), locale="en-US")
    assert_valid(message)
    lengths = [len(description(message, index)) for index in range(3)]
    assert lengths[0] > lengths[2]
    assert "verse 1" in description(message, 0)
    assert all(field.value == "pop" for embed in message.embeds for field in embed.fields[:1])


def test_huge_titles_are_cut_to_256_with_an_ellipsis() -> None:
    message = render_task(task(data=[clip(1, title="x" * HUGE)]), locale="en-US")
    title = message.embeds[0].title or ""
    assert len(title) == 256
    assert title.endswith("…")


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("@everyone", "@\u200beveryone"),
        ("@here", "@\u200bhere"),
        ("<@&123>", "<\u200b@&123>"),
        ("<#123>", "<\u200b#123>"),
        ("</suno status:1>", "<\u200b/suno status:1>"),
        ("[x](http://evil)", "[x]\u200b(http://evil)"),
        ("[a](b) **c** [d](http://evil)", "[a]\u200b(b) \\*\\*c\\*\\* [d]\u200b(http://evil)"),
        (
            "**bold** _it_ ~~s~~ ||spoiler|| `code`",
            "\\*\\*bold\\*\\* \\_it\\_ \\~\\~s\\~\\~ \\|\\|spoiler\\|\\| \\`code\\`",
        ),
        ("# heading", "\\# heading"),
        ("> quote", "\\> quote"),
    ],
)
def test_escape_defuses_markdown_and_mentions(raw: str, safe: str) -> None:
    assert escape(raw) == safe


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("this is too long", 8, "this is…"),
        ("abc\\*def", 5, "abc…"),
        ("ab\\\\cd", 5, "ab\\\\…"),
    ],
)
def test_truncate_cuts_with_an_ellipsis_and_never_leaves_half_an_escape(
    text: str, limit: int, expected: str
) -> None:
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= limit


# --- the validator itself (reused by the fake Discord) --------------------------------------------


def test_validator_accepts_a_plain_message() -> None:
    assert validate_message_payload({"content": "hi", "embeds": [{"title": "t"}]}) == []


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"embeds": [{}] * 11}, "11 embeds"),
        ({"embeds": [{"title": "x" * 257}]}, "title"),
        ({"embeds": [{"description": "x" * 4097}]}, "description"),
        ({"embeds": [{"fields": [{"name": "n", "value": ""}]}]}, "value: empty"),
        ({"embeds": [{"fields": [{"name": " ", "value": "v"}]}]}, "name: empty"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "26 fields"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, "value"),
        ({"embeds": [{"footer": {"text": "x" * 2049}}]}, "footer"),
        ({"embeds": [{"author": {"name": "x" * 257}}]}, "author"),
        ({"embeds": [{"description": "x" * 4000}, {"description": "x" * 2001}]}, "6001"),
        ({"embeds": [{"url": "javascript:alert(1)"}]}, "url"),
        ({"embeds": [{"image": {"url": "data:image/png;base64,AAAA"}}]}, "image"),
        ({"components": [{"type": 1, "components": []}] * 6}, "6 action rows"),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [{"type": 2, "style": 5, "label": "a", "url": "https://a.b"}]
                        * 6,
                    }
                ]
            },
            "6 > 5",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 5, "label": "a" * 81, "url": "https://a.b"}
                        ],
                    }
                ]
            },
            "label",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 5, "label": "a", "url": "https://a.b/" + "x" * 512}
                        ],
                    }
                ]
            },
            "url",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 5, "label": "a", "url": "javascript:alert(1)"}
                        ],
                    }
                ]
            },
            "url",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 1, "label": "a", "custom_id": "x" * 101}
                        ],
                    }
                ]
            },
            "custom_id",
        ),
    ],
)
def test_validator_reports_each_broken_rule(payload: dict[str, Any], problem: str) -> None:
    problems = validate_message_payload(payload)
    assert any(problem in line for line in problems), problems


def test_validator_allows_attachment_images() -> None:
    payload = {"embeds": [{"image": {"url": "attachment://cover.png"}}]}
    assert validate_message_payload(payload) == []


def test_status_enum_covers_every_renderable_status() -> None:
    for status in TaskStatus:
        assert_valid(render_task(task(status.value, []), locale="en-US"))
