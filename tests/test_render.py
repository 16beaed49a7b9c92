"""Rendering tasks into status messages: what users see, and that Discord always accepts it."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.i18n import Catalog
from bot.render import (
    Notice,
    RenderedMessage,
    escape,
    render_error,
    render_picked,
    render_task,
    truncate,
)
from bot.suno import errors
from bot.suno.models import Task, TaskStatus, task_from
from tests.kit.cards import (
    body_of,
    card_text,
    component_count,
    components_of,
    files,
    images,
    selects,
    walk,
)
from tests.kit.cards import link_buttons as links_in
from tests.kit.discord_limits import validate_message_payload
from tests.kit.render_cases import (
    FINISH,
    HOSTILE_TASKS,
    HUGE,
    NONE_MP3,
    START,
    STREAM,
    SUBMIT,
    TASK_ID,
    clip,
    fuzz_case,
    task,
)

SEEDS = Path("/work/shared/seeds")
FIXTURES = Path(__file__).parent / "fixtures" / "relay"


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


def assert_valid(message: RenderedMessage) -> None:
    """Discord would accept the card: every Components V2 rule, 40 components, 4 000 characters."""
    problems = validate_message_payload(body_of(message))
    assert problems == []
    # The bot's own row of up to four buttons still fits.
    assert message.components + 5 <= 40
    assert component_count(components_of(message)) == message.components


def rendered_text(message: RenderedMessage) -> str:
    return json.dumps(components_of(message), ensure_ascii=False)


def lines(message: RenderedMessage) -> list[str]:
    """The card's text as a reader reads it, line by line."""
    return card_text(components_of(message)).splitlines()


def text(message: RenderedMessage) -> str:
    return card_text(components_of(message))


def buttons(message: RenderedMessage) -> list[tuple[str, str]]:
    return links_in(components_of(message))


def labels(message: RenderedMessage) -> list[str]:
    return [label for label, _ in buttons(message)]


def rows(message: RenderedMessage) -> list[list[str]]:
    """The link buttons row by row, as labels."""
    found = []
    for component in walk_rows(components_of(message)):
        found.append([str(button.get("label")) for button in component["components"]])
    return found


def walk_rows(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in walk(components) if c.get("type") == 1]


# --- the finished song ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed", ["000_301bd34e0b881259.txt", "001_6767632a51840d81.txt", "002_deb3e9a937df534c.txt"]
)
def test_seed_tasks_render_one_block_per_song_with_its_cover(seed: str) -> None:
    source = seed_task(seed)
    message = render_task(source, locale="en-US")
    assert_valid(message)
    assert message.colour == 0x57F287
    assert images(components_of(message)) == [song.cover_url for song in source.clips]
    for number, song in enumerate(source.clips, start=1):
        assert f"`{number}` **{song.title}**" in lines(message)


def test_finished_card_shows_tags_duration_and_model() -> None:
    message = render_task(seed_task("000_301bd34e0b881259.txt"), locale="en-US")
    shown = lines(message)
    assert shown[shown.index("`1` **快乐周末**") + 1 : shown.index("`1` **快乐周末**") + 3] == [
        "2:09 · chirp-v3 (v3.5)",
        "-# heartfelt salsa",
    ]
    assert f"-# Task {TASK_ID}" in shown


def test_finished_song_gets_mp3_and_mp4_buttons_one_row_per_song() -> None:
    source = seed_task("000_301bd34e0b881259.txt")
    message = render_task(source, locale="en-US")
    assert buttons(message) == [
        ("MP3 · 1", source.clips[0].audio_url),
        ("MP4 · 1", source.clips[0].video_url),
        ("MP3 · 2", source.clips[1].audio_url),
        ("MP4 · 2", source.clips[1].video_url),
    ]
    assert rows(message) == [["MP3 · 1", "MP4 · 1"], ["MP3 · 2", "MP4 · 2"]]


def test_mp4_button_only_when_the_video_exists() -> None:
    message = render_task(task(data=[clip(1), clip(2, video_url="")]), locale="en-US")
    assert labels(message) == ["MP3 · 1", "MP4 · 1", "MP3 · 2"]


def test_the_card_is_one_container_in_a_layout_that_never_times_out() -> None:
    view = render_task(task(), locale="en-US").view()
    assert isinstance(view, discord.ui.LayoutView)
    assert view.timeout is None
    assert view.has_components_v2()
    assert [type(item) for item in view.children] == [discord.ui.Container]
    assert components_of(render_task(task(), locale="en-US"))[0]["accent_color"] == 0x57F287


def test_a_card_without_links_has_no_buttons() -> None:
    assert buttons(render_task(task("FAILURE"), locale="en-US")) == []


def test_identical_lyrics_are_shown_once_not_under_every_song() -> None:
    message = render_task(seed_task("001_6767632a51840d81.txt"), locale="en-US")
    assert text(message).count("Walking down the streets") == 1
    assert "```" not in text(message)


def test_the_header_carries_status_and_finish_time() -> None:
    message = render_task(task(), locale="en-US")
    assert "**Status:** Done" in lines(message)
    assert f"<t:{FINISH}:f>" in text(message)


def test_success_without_songs_still_renders_a_card() -> None:
    message = render_task(task(data=[]), locale="en-US")
    assert_valid(message)
    assert "The task finished without any songs." in lines(message)
    assert buttons(message) == []


def test_success_with_null_data_still_renders_a_card() -> None:
    message = render_task(task_from({"task_id": TASK_ID, "status": "SUCCESS"}), locale="en")
    assert_valid(message)
    assert "**Status:** Done" in lines(message)


def test_success_with_only_a_result_url_offers_that_link() -> None:
    message = render_task(fixture_task("success_result_url.json"), locale="en-US")
    mp3 = "https://cdn1.suno.ai/0b6c5e1a-7d42-4f1e-9a3b-6c8d2e4f7a91.mp3"
    assert_valid(message)
    assert message.colour == 0x57F287
    assert "**Status:** Done" in lines(message)
    assert "without any songs" not in text(message)
    assert buttons(message) == [("MP3 · 1", mp3)]


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
    assert buttons(message) == [(label, url)]


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
    assert buttons(message) == []
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
    assert f"2:09 · {shown}" in lines(message)


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
    shown = lines(message)
    assert shown[shown.index("`2` **Song 2**") + 1 :][:2] == [
        "Failed · chirp-v4",
        "**Reason:** Song blocked by moderation",
    ]
    assert labels(message) == ["MP3 · 1", "MP4 · 1"]


def test_no_button_or_link_ever_points_to_none_mp3() -> None:
    broken = [
        clip(1, status="error", audio_url=NONE_MP3, video_url="https://cdn1.suno.ai/None.mp4"),
        clip(2, status="complete", audio_url=NONE_MP3, video_url=""),
    ]
    for status in ("SUCCESS", "FAILURE", "IN_PROGRESS"):
        message = render_task(task(status, broken), locale="en-US")
        assert "None.mp" not in rendered_text(message)
        assert all(url for _, url in buttons(message))


def test_button_with_a_url_longer_than_512_is_dropped() -> None:
    long_mp4 = "https://cdn1.suno.ai/" + "a" * 600 + ".mp4"
    message = render_task(task(data=[clip(1, video_url=long_mp4)]), locale="en-US")
    assert labels(message) == ["MP3 · 1"]


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
    assert buttons(message) == []
    assert images(components_of(message)) == []


# --- every clip reachable ------------------------------------------------------------------------


def many(count: int, status: str = "SUCCESS", **overrides: Any) -> Task:
    return task(status, [clip(n, **overrides) for n in range(1, count + 1)])


def picker_of(message: RenderedMessage) -> dict[str, Any] | None:
    found = selects(components_of(message))
    return found[0] if found else None


@pytest.mark.parametrize("count", [2, 3, 4, 12])
def test_up_to_twelve_songs_are_all_on_the_card_with_their_links(count: int) -> None:
    message = render_task(many(count), locale="en-US")
    assert_valid(message)
    assert picker_of(message) is None
    for number in range(1, count + 1):
        assert f"`{number}` **Song {number}**" in text(message)
        assert f"MP3 · {number}" in labels(message)
    assert len(buttons(message)) == 2 * count


@pytest.mark.parametrize("count", [13, 30, 37])
def test_beyond_twelve_songs_a_picker_offers_every_other_one(count: int) -> None:
    message = render_task(many(count), locale="en-US")
    assert_valid(message)
    picker = picker_of(message)
    assert picker is not None
    assert picker["custom_id"] == f"suno:clips:{TASK_ID}"
    on_card = {int(label.split(" · ")[1]) for label in labels(message)}
    offered = [option["value"] for option in picker["options"]]
    covered = set(on_card)
    for value in offered:
        first, last = (int(part) for part in value.split("-"))
        covered |= set(range(first + 1, last + 2))
    assert covered == set(range(1, count + 1))
    assert min(on_card) == 1 and len(on_card) <= 12


def test_more_songs_than_a_menu_holds_are_offered_in_pages_of_twelve() -> None:
    message = render_task(many(400, video_url=""), locale="en-US")
    assert_valid(message)
    picker = picker_of(message)
    assert picker is not None
    assert len(picker["options"]) == 25
    assert picker["options"][0]["label"] == "Songs 13\u201324"
    assert picker["max_values"] == 1


def test_a_task_id_too_long_for_a_custom_id_is_named_by_a_digest() -> None:
    message = render_task(
        task("SUCCESS", [clip(n) for n in range(1, 21)], task_id="t" * 128), locale="en-US"
    )
    picker = picker_of(message)
    assert picker is not None
    assert re.fullmatch(r"suno:clips:~[0-9a-f]{24}", picker["custom_id"])


def test_the_private_card_shows_the_picked_songs_with_their_links() -> None:
    source = many(30)
    message = render_picked(source, ["12-12", "20-29", "nonsense", "99-120"], locale="en-US")
    assert message is not None
    assert_valid(message)
    shown = {int(label.split(" · ")[1]) for label in labels(message)}
    assert shown == {13, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
    assert "11 of 30 songs" in lines(message)
    assert picker_of(message) is None
    assert render_picked(source, ["x", "300-301"], locale="en-US") is None


def test_audio_attached_to_the_message_plays_in_the_card() -> None:
    source = task()
    message = render_task(source, locale="en-US", audio={source.clips[0].id: "song-1.mp3"})
    assert_valid(message)
    assert files(components_of(message)) == ["attachment://song-1.mp3"]
    assert message.fingerprint != render_task(source, locale="en-US").fingerprint


def test_the_bots_own_buttons_fit_in_a_row_at_the_foot_of_the_card() -> None:
    message = render_task(many(12), locale="en-US")
    controls: list[discord.ui.Item[Any]] = [
        discord.ui.Button(label=f"b{n}", custom_id=f"suno:test:{n}") for n in range(4)
    ]
    with_controls = message.with_controls(controls, "state")
    assert with_controls.components <= 40
    components = components_of(with_controls)
    assert validate_message_payload({"flags": 1 << 15, "components": components}) == []
    assert components[0]["components"][-1]["components"][0]["custom_id"] == "suno:test:0"
    assert with_controls.fingerprint != message.fingerprint


# --- stems ---------------------------------------------------------------------------------------

STEM_PARTS = [
    "Vocals",
    "Backing Vocals",
    "Drums",
    "Bass",
    "Guitar",
    "Keyboard",
    "Percussion",
    "Strings",
    "Synth",
    "FX",
    "Brass",
    "Woodwinds",
]


def stem_task(with_source: bool = True) -> Task:
    source = clip(1, id="song-1", title="Paper Lanterns")
    stems = [
        clip(
            n + 2,
            title=f"Paper Lanterns ({part})",
            model_name="chirp-stem",
            video_url="",
            metadata={"duration": 200, "stem_from_id": "song-1", "stem_type_group_name": part},
        )
        for n, part in enumerate(STEM_PARTS[:11])
    ]
    songs = [stems[0], source, *stems[1:]] if with_source else stems
    return task("SUCCESS", songs)


def test_stems_are_grouped_under_the_song_they_were_split_from() -> None:
    message = render_task(stem_task(), locale="en-US")
    assert_valid(message)
    shown = lines(message)
    song = shown.index("`1` **Paper Lanterns** · 2:09 · chirp-v4")
    assert shown[song + 2] == "**Stems of Paper Lanterns**"
    assert shown[song + 3] == "`2` **Vocals** · 3:20 · chirp-stem"
    assert shown[song + 4] == "`3` **Backing Vocals** · 3:20 · chirp-stem"
    assert labels(message)[:3] == ["MP3 · 1", "MP4 · 1", "MP3 · 2"]
    assert len(buttons(message)) == 13  # every stem's MP3, the song's MP3 and MP4
    assert picker_of(message) is None


def test_stems_without_their_song_still_read_as_its_stems() -> None:
    message = render_task(stem_task(with_source=False), locale="en-US")
    assert_valid(message)
    assert lines(message)[lines(message).index("**Stems of Paper Lanterns**") + 1] == (
        "`1` **Vocals** · 3:20 · chirp-stem"
    )
    assert picker_of(message) is None


# --- lyrics tasks --------------------------------------------------------------------------------


def test_lyrics_task_shows_title_and_escaped_lyrics_outside_a_code_block() -> None:
    message = render_task(lyrics_task(), locale="en-US")
    assert_valid(message)
    assert "### Night Drive" in lines(message)
    assert "[Verse]\nHello \\*world\\*" in text(message)
    assert "```" not in text(message)


def test_lyrics_task_without_text_says_so() -> None:
    message = render_task(lyrics_task(text=""), locale="en-US")
    assert "The task finished without any lyrics." in lines(message)


def test_huge_lyrics_are_cut_to_the_text_limit() -> None:
    message = render_task(lyrics_task(text="la " * HUGE, title="t" * HUGE), locale="en-US")
    assert_valid(message)
    assert message.text_length <= 4000
    assert "la la la…" in text(message)
    title = next(line for line in lines(message) if line.startswith("### "))
    assert len(title) <= 4 + 256 and title.endswith("…")


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
    assert f"**Status:** {word}" in lines(message)
    assert components_of(message)[0]["accent_color"] == colour


def test_unknown_raw_status_is_shown_as_is_but_escaped() -> None:
    message = render_task(task("Mystery_*State*", []), locale="en-US")
    assert "**Status:** Mystery\\_\\*State\\*" in lines(message)
    assert not buttons(message)


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
    assert f"**▶ {current}**" in text(message)
    assert "%" not in text(message)


def test_progress_bar_when_the_relay_reports_real_progress() -> None:
    message = render_task(streaming_task(progress="30%"), locale="en-US")
    assert "**Progress:** ▰▰▰▱▱▱▱▱▱▱ 30%" in lines(message)
    assert "▶" not in text(message)


@pytest.mark.parametrize("progress", ["0%", "100%", "", None])
def test_progress_of_0_or_100_falls_back_to_the_stage(progress: str | None) -> None:
    message = render_task(streaming_task(progress=progress or ""), locale="en-US")
    assert "**▶ Generating**" in text(message)
    assert "▰" not in text(message)


def test_running_card_shows_elapsed_time_as_discord_timestamps() -> None:
    shown = text(render_task(streaming_task(), locale="en-US"))
    assert f"<t:{SUBMIT}:R>" in shown
    assert f"<t:{START}:f>" in shown
    assert f"<t:{FINISH}" not in shown


def test_running_card_lists_what_is_known_of_each_song() -> None:
    message = render_task(streaming_task(), locale="en-US")
    shown = lines(message)
    assert shown[0] == "### Song 1"
    assert images(components_of(message)) == ["https://cdn2.suno.ai/image_clip-0001.jpeg"]
    start = shown.index("`1` **Song 1**")
    assert shown[start:] == [
        "`1` **Song 1**",
        "Streaming · chirp-v4",
        "-# x",
        "`2` **Song 2**",
        "Queued · 2:09 · chirp-v4",
        "-# dream pop",
    ]
    assert f"-# Task {TASK_ID}" in shown


def test_streaming_song_offers_a_listen_live_button() -> None:
    message = render_task(streaming_task(), locale="en-US")
    assert buttons(message) == [("Listen live · 1", STREAM)]
    assert_valid(message)


def test_completed_song_has_no_listen_live_button() -> None:
    message = render_task(task("IN_PROGRESS", [clip(1, audio_url=STREAM)]), locale="en-US")
    assert all("Listen live" not in label for label in labels(message))


def test_song_finished_before_the_task_already_offers_its_mp3() -> None:
    songs = [clip(1), clip(2, status="streaming", audio_url=STREAM, video_url="")]
    message = render_task(task("IN_PROGRESS", songs), locale="en-US")
    assert rows(message) == [["MP3 · 1"], ["Listen live · 2"]]
    assert "✓ Ready · 2:09 · chirp-v4" in lines(message)


def test_first_success_card_keeps_running_and_shows_the_finished_song_as_done() -> None:
    source = fixture_task("status_first_success.json")
    message = render_task(source, locale="en-US")
    assert_valid(message)
    assert message.colour == 0xF1C40F
    shown = lines(message)
    assert shown[0] == "### Paper Lanterns"
    assert "**Status:** Generating · first songs ready" in shown
    assert "✓ Queued → **▶ Generating** → Done" in text(message)
    assert any(line.startswith("✓ Ready · 3:18") for line in shown)
    assert any(line.startswith("Streaming") for line in shown)
    assert buttons(message) == [
        ("MP3 · 1", source.clips[0].audio_url),
        ("Listen live · 2", source.clips[1].stream_url),
    ]


def test_lyrics_ready_card_says_so_under_the_song_title() -> None:
    message = render_task(fixture_task("status_text_success.json"), locale="en-US")
    assert_valid(message)
    assert lines(message)[0] == "### Paper Lanterns"
    assert "**Status:** Generating · lyrics ready" in lines(message)
    assert buttons(message) == []


def test_task_without_clips_yet_uses_a_generic_title() -> None:
    fresh = task_from({"task_id": TASK_ID, "status": "SUBMITTED", "data": None})
    message = render_task(fresh, locale="en-US")
    assert_valid(message)
    assert lines(message)[0] == "### Suno task"


def test_many_running_songs_show_twelve_and_offer_the_rest() -> None:
    message = render_task(
        task("IN_PROGRESS", [clip(n, status="streaming") for n in range(1, 40)]), locale="en"
    )
    assert_valid(message)
    assert "`12` **Song 12** · Streaming · 2:09 · chirp-v4" in lines(message)
    assert "`13` **Song 13**" not in text(message)
    picker = picker_of(message)
    assert picker is not None
    assert picker["placeholder"] == "More songs (27) — pick to open them privately"


# --- failure -------------------------------------------------------------------------------------


def reason_of(message: RenderedMessage) -> str | None:
    line = next((line for line in lines(message) if line.startswith("**Reason:** ")), None)
    return line.removeprefix("**Reason:** ") if line is not None else None


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
    assert message.colour == 0xED4245
    assert "**Status:** Failed" in lines(message)
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
    assert components_of(message)[0]["accent_color"] == 0xED4245
    assert reason_of(message) == "Insufficient credits"
    assert "**Status:** Failed" in lines(message)
    assert "▰" not in text(message)
    assert buttons(message) == []


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
    ("notice", "minutes", "wording"),
    [
        (Notice.RELAY_RETRYING, None, "Relay unreachable — retrying…"),
        (Notice.AUTO_REFRESH_STOPPED, 30, "Auto-refresh stopped after 30 min"),
        (Notice.AUTO_REFRESH_STOPPED, None, "Auto-refresh stopped — run `/suno status`"),
        (Notice.LIVE_UPDATES_ENDED, None, "Live updates ended"),
    ],
)
def test_notice_is_shown_at_the_top_and_changes_the_fingerprint(
    notice: Notice, minutes: int | None, wording: str
) -> None:
    for source in (streaming_task(), task(), task("FAILURE", [])):
        plain = render_task(source, locale="en-US")
        noticed = render_task(source, locale="en-US", notice=notice, watch_timeout_minutes=minutes)
        assert_valid(noticed)
        assert lines(noticed)[0].startswith("⚠️ **")
        assert wording in lines(noticed)[0]
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


def test_the_fingerprint_is_equal_exactly_when_the_payload_is() -> None:
    sources = [streaming_task(), task(), many(13), many(30), stem_task(), task("FAILURE", [])]
    messages = [render_task(source, locale="en-US") for source in sources]
    payloads = [rendered_text(message) for message in messages]
    for a, b in zip(messages, payloads, strict=True):
        for c, d in zip(messages, payloads, strict=True):
            assert (a.fingerprint == c.fingerprint) == (b == d)


# --- locales -------------------------------------------------------------------------------------


def test_unknown_locale_renders_in_english() -> None:
    assert "**Status:** Generating" in lines(render_task(streaming_task(), locale="tr"))


def test_a_catalog_language_changes_only_its_translated_words(tmp_path: Path) -> None:
    english = (Path(__file__).parents[1] / "bot" / "locales" / "en.json").read_text("utf-8")
    (tmp_path / "en.json").write_text(english, encoding="utf-8")
    (tmp_path / "fr.json").write_text('{"status.IN_PROGRESS": "Génération"}', encoding="utf-8")
    catalog = Catalog.from_directory(tmp_path)
    french = render_task(streaming_task(), locale="fr", catalog=catalog)
    assert "**Status:** Génération" in lines(french)
    assert "**Progress:**" in text(french)
    assert (
        render_task(streaming_task(), locale="en-GB", catalog=catalog).fingerprint
        == render_task(streaming_task(), locale="en-US").fingerprint
    )


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "wording"),
    [
        (errors.InvalidTaskId("x"), "doesn't look like a task id"),
        (errors.TaskNotFound("x"), "No task with that id"),
        (errors.RelayKeyRejected("x"), "relay key is not accepted"),
        (errors.RelayUnavailable("x"), "can't be reached right now"),
        (errors.RelayProtocolError("x"), "can't read"),
    ],
)
def test_error_message_for_each_relay_error(error: errors.RelayError, wording: str) -> None:
    message = render_error(error.message_key, locale="en-US")
    assert_valid(message)
    assert lines(message)[0] == "### Can't show that task"
    assert wording in text(message)
    assert message.colour == 0xED4245
    assert buttons(message) == []


def test_an_unknown_error_key_shows_the_generic_error() -> None:
    message = render_error("error.nope", locale="en-US")
    assert "went wrong on the bot's side" in text(message)


# --- hostile relays ------------------------------------------------------------------------------


@pytest.mark.parametrize("notice", [None, Notice.RELAY_RETRYING])
@pytest.mark.parametrize("name", list(HOSTILE_TASKS))
def test_hostile_tasks_always_render_a_message_discord_accepts(
    name: str, notice: Notice | None
) -> None:
    message = render_task(HOSTILE_TASKS[name], locale="en-US", notice=notice)
    assert_valid(message)
    shown = text(message)
    assert "@everyone" not in shown
    assert "<@&123>" not in shown
    assert "<@12345678901234567>" not in shown
    assert "[click](" not in shown
    assert "**bold**" not in shown
    assert "\n# heading" not in shown
    assert "javascript:" not in rendered_text(message)
    assert "data:" not in rendered_text(message)


def test_over_budget_message_trims_lyrics_first_and_keeps_every_title() -> None:
    songs = [
        clip(
            n,
            title=f"Song {n} " + "t" * 200,
            metadata={"prompt": "la " * 1000, "tags": "pop " * 300},
        )
        for n in range(1, 13)
    ]
    message = render_task(task("SUCCESS", songs), locale="en-US")
    assert_valid(message)
    assert message.text_length <= 4000
    for n in range(1, 13):
        assert f"`{n}` **Song {n} t" in text(message)


def test_huge_titles_are_cut_to_256_with_an_ellipsis() -> None:
    message = render_task(task(data=[clip(1, title="x" * HUGE)]), locale="en-US")
    title = lines(message)[0].removeprefix("### ")
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


_TITLE_BITS = ["word", " ", "  ", "\n", "\t", "\u3000", "*", "\\", "_", "@everyone", "歌", "x" * 40]


@pytest.mark.parametrize("seed", range(40))
def test_a_long_title_reads_as_the_whole_title_on_one_line_then_cut(seed: int) -> None:
    rng = random.Random(seed)
    # Around the length where only the start of a title is looked at, whitespace runs included.
    title = "Song"
    while len(title) < rng.choice([200, 500, 514, 515, 520, 1200, 6000]):
        title += rng.choice(_TITLE_BITS) * rng.choice([1, 1, 1, 30, 300])
    heading = lines(render_task(task("SUCCESS", [clip(1, title=title)]), locale="en-US"))[0]
    expected = truncate(escape(truncate(" ".join(title.split()), 256)), 256)
    assert heading == "### " + expected


@pytest.mark.parametrize(
    "title",
    [
        # The start alone fills the heading exactly; what follows a long gap still counts.
        "a" * 256 + " " * 300 + "b" * 10,
        "a" * 255 + "\n" * 300 + "b",
        "a " * 128 + "\t" * 400,
        " " * 5000 + "late " * 100,
        "\\" * 300 + " " * 300 + "x",
    ],
)
def test_a_title_after_a_long_gap_is_still_part_of_it(title: str) -> None:
    heading = lines(render_task(task("SUCCESS", [clip(1, title=title)]), locale="en-US"))[0]
    assert heading == "### " + truncate(escape(truncate(" ".join(title.split()), 256)), 256)


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


# --- fuzz: random tasks, every limit ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(500))
def test_random_tasks_always_render_within_every_limit(seed: int) -> None:
    case = fuzz_case(seed)
    source, count = case.task, case.clips
    message = render_task(source, locale=case.locale, notice=case.notice, audio=case.audio)
    assert_valid(message)
    shown = text(message)
    assert "@everyone" not in shown and "<@&1>" not in shown and "<t:0:R>" not in shown
    if source.status is TaskStatus.FAILURE:
        return  # a failed task shows its reason, not its songs
    # Every song is on the card or one pick away.
    reachable = {int(m[1]) for m in re.finditer(r"^`(\d+)` ", shown, re.MULTILINE)}
    picker = picker_of(message)
    if picker is not None:
        for option in picker["options"]:
            first, last = (int(part) for part in option["value"].split("-"))
            reachable |= set(range(first + 1, last + 2))
    assert reachable == set(range(1, count + 1))
