"""Every language the bot speaks: the card and the errors each server and user see, the command
as Discord shows it in each client, and every message within Discord's limits in every language.
"""

# Chinese and Japanese are written with full-width punctuation; the tests quote them as they are.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import discord
import pytest
from discord import app_commands

from bot.app import SunoBot
from bot.config import Settings
from bot.i18n import (
    FALLBACK_LANGUAGE,
    SUPPORTED_LOCALES,
    Catalog,
    CommandTranslator,
    default_catalog,
)
from bot.render import Notice, RenderedMessage, render_error, render_task, render_unanswered
from bot.runner import assembled_bot
from bot.suno.models import task_from
from tests.kit import payloads
from tests.kit.cards import body_of, card_text, components_of, link_buttons, selects
from tests.kit.discord_limits import validate_message_payload
from tests.kit.fake_discord import FakeDiscord, FakeInteraction, FakeMessage, JSONObject
from tests.kit.fake_relay import NOT_FOUND_BODY, FakeRelay, RelayReply
from tests.kit.harness import bot_settings, text_of

LOCALES_DIR = Path(__file__).resolve().parents[1] / "bot" / "locales"
TRANSLATED = [locale for locale in SUPPORTED_LOCALES if locale != FALLBACK_LANGUAGE]
# Discord's Latin American Spanish has no catalog of its own and reads Spain's.
EVERY_LANGUAGE = [*SUPPORTED_LOCALES, "es-419"]
SLOW = 2.0  # seconds: longer than the bot waits for the relay before it defers
HUGE = 5000
TASK_ID = "2a145658-3342-4228-b779-b8323a2b77df"


def t(locale: str, key: str, **params: object) -> str:
    return default_catalog().text(locale, key, **params)


# --- every state, every language, within Discord's limits ----------------------------------------


def huge_clip(number: int, phase: payloads.ClipPhase) -> payloads.Payload:
    """A clip whose every relay text is far over Discord's limits."""
    return payloads.nested_clip(
        f"clip-{number:04d}",
        phase,
        title="Ω" * HUGE,
        tags="tag " * HUGE,
        lyrics="la " * HUGE,
        model_name="m" * HUGE,
        error_message="e" * HUGE,
    )


def clips(count: int, phase: payloads.ClipPhase) -> list[payloads.Payload]:
    ids = payloads.clip_ids_for(TASK_ID, count)
    return [payloads.clip("nested", clip_id, phase) for clip_id in ids]


def done(count: int, family: payloads.ClipFamily) -> payloads.Payload:
    return payloads.music_timeline(TASK_ID, family, clip_count=count)[-1]


RUNNING = payloads.music_timeline(TASK_ID)
STATES: dict[str, payloads.Payload] = {
    "not started": RUNNING[0],
    "submitted": RUNNING[1],
    "queued": RUNNING[2],
    "streaming": RUNNING[3],
    "streaming at 30%": payloads.task_payload(TASK_ID, "IN_PROGRESS", "30%", clips(2, "streaming")),
    "first songs ready": payloads.task_payload(
        TASK_ID, "FIRST_SUCCESS", clips=clips(2, "complete")
    ),
    "lyrics ready": payloads.task_payload(TASK_ID, "TEXT_SUCCESS", clips=clips(2, "queued")),
    "running, 30 huge songs": payloads.task_payload(
        TASK_ID, "IN_PROGRESS", "55%", [huge_clip(n, "streaming") for n in range(1, 31)]
    ),
    "done, 2 songs": done(2, "nested"),
    "done, 12 songs": done(12, "flat"),
    "done, 30 songs": done(30, "hybrid"),
    "done, 12 huge songs": payloads.task_payload(
        TASK_ID, "SUCCESS", clips=[huge_clip(n, "complete") for n in range(1, 13)]
    ),
    "done, songs failed": payloads.task_payload(TASK_ID, "SUCCESS", clips=clips(12, "error")),
    "done, no songs": payloads.task_payload(TASK_ID, "SUCCESS", clips=[]),
    "done, a result link": {
        **payloads.task_payload(TASK_ID, "SUCCESS"),
        "result_url": "https://cdn1.suno.ai/result.mp4",
    },
    "failed": payloads.failure_timeline(TASK_ID)[-1],
    "failed, huge reason": payloads.task_payload(
        TASK_ID, "FAILURE", clips=[huge_clip(1, "error")], fail_reason="x" * HUGE
    ),
    "failed, no reason": payloads.task_payload(TASK_ID, "FAILURE", clips=[]),
    "lyrics": payloads.lyrics_payload(TASK_ID),
    "lyrics, huge": payloads.lyrics_payload(TASK_ID, title="T" * HUGE, text="la " * HUGE),
    "lyrics failed": payloads.lyrics_payload(TASK_ID, "FAILURE", fail_reason="Lyrics flagged"),
}
NOTICES: list[tuple[Notice | None, int | None]] = [
    (None, None),
    (Notice.RELAY_RETRYING, None),
    (Notice.AUTO_REFRESH_STOPPED, 100_000),
    (Notice.AUTO_REFRESH_STOPPED, None),
    (Notice.LIVE_UPDATES_ENDED, None),
]
ERROR_KEYS = sorted(key for key in default_catalog().keys("en") if key.startswith("error."))


def problems(message: RenderedMessage) -> list[str]:
    return validate_message_payload(body_of(message))


def everything_in(message: RenderedMessage) -> str:
    return card_text(components_of(message))


def lines_of(message: RenderedMessage) -> list[str]:
    return everything_in(message).splitlines()


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("locale", EVERY_LANGUAGE)
def test_every_state_with_every_notice_fits_discords_limits_in_every_language(
    locale: str, state: str
) -> None:
    task = task_from(STATES[state])
    for notice, minutes in NOTICES:
        message = render_task(task, locale=locale, notice=notice, watch_timeout_minutes=minutes)
        assert problems(message) == [], (notice, minutes)
        assert t(locale, "label.status") in everything_in(message)


@pytest.mark.parametrize("locale", EVERY_LANGUAGE)
def test_a_task_the_relay_has_not_answered_about_fits_in_every_language(locale: str) -> None:
    for notice in Notice:
        for task_id in (TASK_ID, "i" * 128):
            message = render_unanswered(
                task_id, locale=locale, notice=notice, watch_timeout_minutes=100_000
            )
            assert problems(message) == []
            assert "### " + t(locale, "title.task") in lines_of(message)


@pytest.mark.parametrize("key", ERROR_KEYS)
@pytest.mark.parametrize("locale", EVERY_LANGUAGE)
def test_every_error_fits_and_reads_in_every_language(locale: str, key: str) -> None:
    message = render_error(key, locale=locale)
    assert problems(message) == []
    assert lines_of(message) == ["### " + t(locale, "title.error"), t(locale, key)]


# --- what a server sees in its language ----------------------------------------------------------


def test_a_japanese_server_sees_the_running_card_in_japanese() -> None:
    message = render_task(task_from(RUNNING[3]), locale="ja")
    lines = lines_of(message)
    assert "**ステータス：**生成中" in lines
    assert "**進行状況：**✓ 未開始 → ✓ 送信済み → ✓ 順番待ち → **▶ 生成中** → 完了" in lines
    assert "`1` **City Lights**" in lines and "`2` **City Lights**" in lines
    assert lines.count("試聴できます · chirp-v3 (v3.5)") == 2
    assert [label for label, _ in link_buttons(components_of(message))] == ["試聴 · 1", "試聴 · 2"]
    assert f"-# タスク {TASK_ID}" in lines


def test_a_brazilian_server_sees_the_finished_songs_in_portuguese() -> None:
    message = render_task(task_from(RUNNING[-1]), locale="pt-BR")
    lines = lines_of(message)
    assert "**Status:** Concluída" in lines
    assert "3:39 · chirp-v3 (v3.5)" in lines
    assert "-# emotional punk" in lines
    assert f"-# Tarefa {TASK_ID}" in lines
    assert [label for label, _ in link_buttons(components_of(message))] == [
        "MP3 · 1",
        "MP4 · 1",
        "MP3 · 2",
        "MP4 · 2",
    ]


def test_a_chinese_server_sees_a_failure_in_chinese() -> None:
    message = render_task(task_from(payloads.failure_timeline(TASK_ID)[-1]), locale="zh-CN")
    assert "**状态：**失败" in lines_of(message)
    assert any(line.startswith("**原因：**") for line in lines_of(message))
    traditional = render_task(task_from(payloads.failure_timeline(TASK_ID)[-1]), locale="zh-TW")
    assert "**狀態：**失敗" in lines_of(traditional)


def test_french_and_german_space_the_colon_and_the_percent_sign_as_they_write_them() -> None:
    running = task_from(STATES["streaming at 30%"])
    assert "**Progression\u00a0:** ▰▰▰▱▱▱▱▱▱▱ 30\u202f%" in lines_of(
        render_task(running, locale="fr")
    )
    assert "**Fortschritt:** ▰▰▰▱▱▱▱▱▱▱ 30\u00a0%" in lines_of(render_task(running, locale="de"))
    assert "**Progress:** ▰▰▰▱▱▱▱▱▱▱ 30%" in lines_of(render_task(running, locale="en-US"))


@pytest.mark.parametrize("locale", EVERY_LANGUAGE)
def test_durations_read_as_minutes_and_seconds_in_every_language(locale: str) -> None:
    message = render_task(task_from(RUNNING[-1]), locale=locale)
    assert "3:39 · chirp-v3 (v3.5)" in lines_of(message)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_notices_speak_the_cards_language_and_keep_the_command_to_run(locale: str) -> None:
    message = render_task(
        task_from(RUNNING[2]),
        locale=locale,
        notice=Notice.AUTO_REFRESH_STOPPED,
        watch_timeout_minutes=30,
    )
    first_line = lines_of(message)[0]
    assert first_line == f"⚠️ **{t(locale, 'notice.auto_refresh_stopped', minutes=30)}**"
    assert "30" in first_line and "`/suno status`" in first_line


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_menu_of_further_songs_and_its_pages_speak_the_cards_language(locale: str) -> None:
    thirty = render_task(task_from(STATES["done, 30 songs"]), locale=locale)
    (menu,) = selects(components_of(thirty))
    hidden = len(menu["options"])  # one option per song not on the card
    assert menu["placeholder"] == t(locale, "picker.placeholder", count=hidden)
    many = payloads.task_payload(TASK_ID, "SUCCESS", clips=clips(100, "complete"))
    (pages,) = selects(components_of(render_task(task_from(many), locale=locale)))
    first = int(pages["options"][0]["value"].split("-")[0]) + 1
    assert pages["options"][0]["label"] == t(locale, "picker.page", first=first, last=first + 11)


# --- the command in each client's language ------------------------------------------------------

# Discord's rule for a slash command's or option's name, in any locale:
# ^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$, and lowercase where the script has case.


def _name_character(char: str) -> bool:
    if char in "-_" or unicodedata.category(char)[0] in "LN":
        return True
    return unicodedata.name(char, "").startswith(("DEVANAGARI", "THAI"))


def name_problems(name: object) -> list[str]:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return [f"{name!r}: 1 to 32 characters"]
    found = [f"{name!r}: {char!r} not allowed" for char in name if not _name_character(char)]
    if name != name.lower():
        found.append(f"{name!r}: not lowercase")
    return found


def command_rule_problems(item: JSONObject, where: str) -> list[str]:
    """Discord's rules for the names and descriptions of a command or option, translations too."""
    found = [f"{where}.name {p}" for p in name_problems(item.get("name"))]
    locales = {locale.value for locale in discord.Locale}
    for locale, name in (item.get("name_localizations") or {}).items():
        found += [f"{where}.name[{locale}] {p}" for p in name_problems(name)]
        if locale not in locales:
            found.append(f"{where}.name_localizations: {locale!r} is no Discord locale")
    descriptions = {"": item.get("description"), **(item.get("description_localizations") or {})}
    for locale, description in descriptions.items():
        if locale and locale not in locales:
            found.append(f"{where}.description_localizations: {locale!r} is no Discord locale")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            found.append(f"{where}.description[{locale}]: 1 to 100 characters")
    for index, option in enumerate(item.get("options") or []):
        found += command_rule_problems(option, f"{where}.options[{index}]")
    return found


async def sync_globally(settings: Settings, translator: CommandTranslator | None = None) -> None:
    """One start of the bot that logs in (and so syncs its commands if they changed)."""
    async with assembled_bot(settings) as bot:
        if translator is not None:
            bot.command_translator = translator
        await bot.login(settings.discord_token.get_secret_value())


@pytest.fixture
async def synced(fake: FakeDiscord, relay: FakeRelay, database: Path) -> JSONObject:
    """`/suno` as the bot's global sync registered it with Discord."""
    await sync_globally(bot_settings(relay, database))
    [suno] = fake.registered_commands["global"]
    return suno


def descriptions(suno: JSONObject) -> dict[str, dict[str, str]]:
    """Each part of the command (by catalog key) and its description in each Discord locale."""
    [status] = suno["options"]
    options = {option["name"]: option for option in status["options"]}
    parts = {
        "command.suno": suno,
        "command.status": status,
        "command.status.task_id": options["task_id"],
        "command.status.private": options["private"],
    }
    return {key: part.get("description_localizations") or {} for key, part in parts.items()}


async def test_the_command_is_described_in_every_supported_language(synced: JSONObject) -> None:
    for key, translations in descriptions(synced).items():
        expected = {locale: t(locale, key) for locale in [*TRANSLATED, "es-419"]}
        assert translations == expected, key
    [status] = synced["options"]
    assert status["description"] == "Show a Suno task and keep it up to date"
    assert status["description_localizations"]["ja"] == (
        "Suno のタスクを表示して、最新の状態に更新し続けます"
    )
    assert status["description_localizations"]["pt-BR"] == (
        "Mostra uma tarefa do Suno e mantém ela atualizada"
    )
    assert status["description_localizations"]["zh-CN"] == "查看 Suno 任务，并持续更新它的状态"


async def test_suno_status_task_id_is_typed_the_same_in_every_client(synced: JSONObject) -> None:
    [status] = synced["options"]
    parts = [synced, status, *status["options"]]
    assert [part["name"] for part in parts] == ["suno", "status", "task_id", "private", "notify"]
    assert all(not part.get("name_localizations") for part in parts)


async def test_every_name_and_description_follows_discords_rules_in_every_locale(
    synced: JSONObject,
) -> None:
    assert command_rule_problems(synced, "suno") == []


async def test_the_translator_leaves_names_and_english_clients_alone() -> None:
    translator = CommandTranslator(default_catalog())
    context: app_commands.TranslationContextTypes = app_commands.TranslationContext(
        app_commands.TranslationContextLocation.other, None
    )
    name = app_commands.locale_str("status")
    described = app_commands.locale_str("Follow Suno songs", key="command.suno")
    assert await translator.translate(name, discord.Locale.japanese, context) is None
    assert await translator.translate(described, discord.Locale.british_english, context) is None
    assert await translator.translate(described, discord.Locale.japanese, context) == (
        "Suno の曲づくりを見守る"
    )


def test_the_name_rule_checker_knows_discords_rule() -> None:
    assert name_problems("task_id") == []
    assert name_problems("任务") == []
    assert name_problems("สถานะ") == []
    assert name_problems("स्थिति") == []
    assert name_problems("Task") != []
    assert name_problems("task id") != []
    assert name_problems("x" * 33) != []


def catalog_with(locale: str, key: str, text: str) -> Catalog:
    files = {locale: LOCALES_DIR / f"{locale}.json" for locale in SUPPORTED_LOCALES}
    messages = {name: json.loads(path.read_text("utf-8")) for name, path in files.items()}
    messages[locale][key] = text
    return Catalog(messages)


async def test_a_changed_translation_is_synced_and_an_unchanged_tree_is_not(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    settings = bot_settings(relay, database)
    await sync_globally(settings)
    await sync_globally(settings)

    def puts() -> list[Any]:
        return [r.json for r in fake.requests if r.method == "PUT" and r.path.endswith("commands")]

    assert len(puts()) == 1
    reworded = "Affiche une tâche Suno et la suit jusqu'au bout"
    await sync_globally(settings, CommandTranslator(catalog_with("fr", "command.status", reworded)))
    assert len(puts()) == 2
    [suno] = fake.registered_commands["global"]
    assert descriptions(suno)["command.status"]["fr"] == reworded


# --- which language a reply speaks ---------------------------------------------------------------


@pytest.fixture
async def bot(fake: FakeDiscord, relay: FakeRelay, database: Path) -> AsyncIterator[SunoBot]:
    settings = bot_settings(relay, database, SUNO_API_TIMEOUT_SECONDS=5)
    async with assembled_bot(settings) as bot:
        await bot.login(settings.discord_token.get_secret_value())
        yield bot


async def run(
    fake: FakeDiscord,
    bot: SunoBot,
    *,
    locale: str,
    guild_locale: str = "en-US",
    guild: bool = True,
    **options: str | bool | int,
) -> tuple[FakeInteraction, FakeMessage | None]:
    """Runs `/suno status` sent from a client in `locale` (in a server of `guild_locale`)."""
    sent = fake.command(options=options, locale=locale, guild_locale=guild_locale, guild=guild)
    # The fake builds the payload Discord sends; discord.py types it as a TypedDict.
    payload = cast(Any, sent.payload)
    await bot.tree._call(discord.Interaction(data=payload, state=bot._connection))
    return sent, fake.message_for(sent)


def stored_locales(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT locale FROM watches ORDER BY id").fetchall()
    return [locale for (locale,) in rows]


def private_text(fake: FakeDiscord, sent: FakeInteraction) -> str:
    replies = [fake.message_for(sent), *(fake.messages[i] for i in sent.followup_ids)]
    private = [m for m in replies if m is not None and m.ephemeral and not m.deleted]
    assert len(private) == 1, "expected exactly one private message"
    return text_of(private[0])


async def test_a_public_card_speaks_the_servers_language_in_every_edit(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("shared", payloads.music_timeline("shared")[2:])
    _, message = await run(fake, bot, task_id="shared", locale="ja", guild_locale="pt-BR")
    assert message is not None and not message.ephemeral
    assert "**Status:** Na fila" in text_of(message)
    assert stored_locales(database) == ["pt-BR"]
    await fake.wait_for(lambda: "**Status:** Concluída" in text_of(message), timeout=10)
    assert "-# Tarefa shared" in text_of(message).splitlines()


async def test_a_private_card_speaks_the_users_language(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("mine", payloads.music_timeline("mine")[2:])
    _, message = await run(
        fake, bot, task_id="mine", private=True, locale="ja", guild_locale="pt-BR"
    )
    assert message is not None and message.ephemeral
    assert "**ステータス：**順番待ち" in text_of(message)
    assert stored_locales(database) == ["ja"]


async def test_a_slow_answer_is_shown_in_the_servers_language(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    steps = payloads.music_timeline("slow")
    relay.add_task("slow", [RelayReply(body=payloads.envelope(steps[2]), delay=SLOW), steps[2]])
    _, message = await run(fake, bot, task_id="slow", locale="en-US", guild_locale="zh-CN")
    assert message is not None
    assert "**状态：**排队中" in text_of(message)
    assert stored_locales(database) == ["zh-CN"]


async def test_outside_a_server_the_card_speaks_the_users_language(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("dm", payloads.music_timeline("dm")[2:])
    _, message = await run(fake, bot, task_id="dm", locale="ko", guild=False)
    assert message is not None and message.guild_id is None
    assert "**상태:** 대기 중" in text_of(message)
    assert stored_locales(database) == ["ko"]


async def test_a_server_language_the_bot_does_not_speak_reads_english(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("turkish", payloads.music_timeline("turkish")[2:])
    _, message = await run(fake, bot, task_id="turkish", locale="ja", guild_locale="tr")
    assert message is not None
    assert "**Status:** Queued" in text_of(message)


ERRORS = {
    "invalid id": ("../../v1/keys", None, "error.invalid_task_id"),
    "not found": ("missing", RelayReply(status=404, body=NOT_FOUND_BODY), "error.task_not_found"),
    "key rejected": (
        "rejected",
        RelayReply(status=401, body={"error": {"message": "invalid token"}}),
        "error.key_rejected",
    ),
    "slow not found": (
        "slow-missing",
        RelayReply(status=404, body=NOT_FOUND_BODY, delay=SLOW),
        "error.task_not_found",
    ),
}


@pytest.mark.parametrize(
    ("locale", "guild_locale"), [("zh-CN", "de"), ("ja", "fr"), ("pt-BR", "ko")]
)
@pytest.mark.parametrize("error", list(ERRORS))
async def test_every_error_speaks_the_users_language_not_the_servers(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, error: str, locale: str, guild_locale: str
) -> None:
    task_id, reply, key = ERRORS[error]
    if reply is not None:
        relay.add_task(task_id, [reply])
    sent, _ = await run(fake, bot, task_id=task_id, locale=locale, guild_locale=guild_locale)
    text = private_text(fake, sent)
    assert t(locale, "title.error") in text
    assert t(locale, key) in text


async def test_a_card_resumed_after_a_restart_keeps_its_language(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    settings = bot_settings(relay, database)
    steps = payloads.music_timeline("restart")
    relay.add_task("restart", [steps[2]])  # queued until the bot has restarted
    async with assembled_bot(settings) as first:
        await first.login(settings.discord_token.get_secret_value())
        _, message = await run(fake, first, task_id="restart", locale="ja", guild_locale="de")
    assert message is not None and "**Status:** In der Warteschlange" in text_of(message)

    relay.add_task("restart", [steps[-1]])
    async with assembled_bot(settings) as second:
        await second.login(settings.discord_token.get_secret_value())
        assert await second.tracker.resume() == 1
        await fake.wait_for(lambda: "**Status:** Fertig" in text_of(message), timeout=10)
