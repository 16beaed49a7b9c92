"""The message catalog: loading, locale fallback, and that every key the bot uses exists."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

import bot.render
from bot.i18n import Catalog, default_catalog
from bot.render import Notice
from bot.suno import errors
from bot.suno.models import ClipState, TaskStatus

LOCALES_DIR = Path(bot.__file__).resolve().parent / "locales"
RENDER_DIR = Path(bot.render.__file__).resolve().parent


def write_catalogs(directory: Path, **catalogs: dict[str, str]) -> Path:
    for name, messages in catalogs.items():
        (directory / f"{name}.json").write_text(json.dumps(messages), encoding="utf-8")
    return directory


@pytest.fixture
def small_catalog_dir(tmp_path: Path) -> Path:
    return write_catalogs(
        tmp_path,
        en={"status.IN_PROGRESS": "Generating", "status.SUCCESS": "Done", "greet": "Hi {name}"},
    )


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_english_catalog_ships_inside_the_package() -> None:
    assert (LOCALES_DIR / "en.json").is_file()
    assert default_catalog().text("en", "status.SUCCESS") == "Done"


def test_default_catalog_is_loaded_once() -> None:
    assert default_catalog() is default_catalog()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("status.NOT_START", "Not started"),
        ("status.SUBMITTED", "Submitted"),
        ("status.QUEUED", "Queued"),
        ("status.IN_PROGRESS", "Generating"),
        ("status.LYRICS_READY", "Generating · lyrics ready"),
        ("status.FIRST_CLIPS_READY", "Generating · first songs ready"),
        ("status.SUCCESS", "Done"),
        ("status.FAILURE", "Failed"),
        ("status.UNKNOWN", "Unknown"),
        ("button.result", "Open result"),
        ("notice.relay_retrying", "Relay unreachable — retrying…"),
        (
            "notice.live_updates_ended",
            "Live updates ended — run `/suno status` again to refresh.",
        ),
        (
            "error.invalid_task_id",
            "That doesn't look like a task id: use 1\u2013128 letters, digits, `_` or `-`.",
        ),
        (
            "error.task_not_found",
            "No task with that id — it may not exist or may belong to another key.",
        ),
        ("error.key_rejected", "The bot's relay key is not accepted — ask the bot's operator."),
        (
            "error.relay_unavailable",
            "The relay can't be reached right now — try again in a minute.",
        ),
        (
            "error.relay_protocol",
            "The relay sent an answer the bot can't read — try again later.",
        ),
        ("error.internal", "Something went wrong on the bot's side — try again."),
    ],
)
def test_english_wording_is_what_users_are_promised(key: str, expected: str) -> None:
    assert default_catalog().text("en-US", key) == expected


def test_params_are_formatted_into_the_message() -> None:
    text = default_catalog().text("en-US", "notice.auto_refresh_stopped", minutes=30)
    assert text == ("Auto-refresh stopped after 30 min — run `/suno status` again to refresh.")


@pytest.mark.parametrize("locale", ["en-GB", "en-US", "en", "EN_gb"])
def test_english_variants_fall_back_to_english(locale: str) -> None:
    assert default_catalog().text(locale, "status.QUEUED") == "Queued"


@pytest.mark.parametrize("locale", ["zh-CN", "pt-BR", "fr", "", "xx-nonsense"])
def test_a_locale_without_a_catalog_falls_back_to_english(locale: str) -> None:
    assert default_catalog().text(locale, "status.FAILURE") == "Failed"


def test_a_language_catalog_overrides_only_its_own_keys(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, fr={"status.IN_PROGRESS": "Génération"})
    catalog = Catalog.from_directory(small_catalog_dir)
    assert catalog.text("fr", "status.IN_PROGRESS") == "Génération"
    assert catalog.text("fr", "status.SUCCESS") == "Done"
    assert catalog.text("en-US", "status.IN_PROGRESS") == "Generating"


def test_a_regional_locale_falls_back_to_its_language(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, pt={"status.SUCCESS": "Concluído"})
    catalog = Catalog.from_directory(small_catalog_dir)
    assert catalog.text("pt-BR", "status.SUCCESS") == "Concluído"


def test_a_new_regional_catalog_file_needs_no_code_change(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, **{"zh-CN": {"status.SUCCESS": "完成"}})
    catalog = Catalog.from_directory(small_catalog_dir)
    assert catalog.text("zh-CN", "status.SUCCESS") == "完成"
    assert catalog.text("zh-CN", "status.IN_PROGRESS") == "Generating"
    assert catalog.text("zh-TW", "status.SUCCESS") == "Done"


def test_params_work_through_the_fallback(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, fr={})
    assert Catalog.from_directory(small_catalog_dir).text("fr", "greet", name="Ana") == "Hi Ana"


def test_a_key_missing_everywhere_is_a_programming_error(small_catalog_dir: Path) -> None:
    catalog = Catalog.from_directory(small_catalog_dir)
    with pytest.raises(KeyError):
        catalog.text("fr", "no.such.key")


def test_a_catalog_without_english_is_refused(tmp_path: Path) -> None:
    write_catalogs(tmp_path, fr={"status.SUCCESS": "Terminé"})
    with pytest.raises(ValueError, match="'en'"):
        Catalog.from_directory(tmp_path)


def test_a_catalog_file_that_is_not_flat_strings_is_refused(tmp_path: Path) -> None:
    (tmp_path / "en.json").write_text('{"status": {"SUCCESS": "Done"}}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"en\.json"):
        Catalog.from_directory(tmp_path)


# --- every key the code asks for exists --------------------------------------------------------

_KEY_LITERAL = re.compile(
    r"""["']((?:status|clip|stage|label|title|text|footer|button|notice|error)\.[A-Za-z_]+)["']"""
)


def keys_render_can_ask_for() -> set[str]:
    source = "\n".join(path.read_text(encoding="utf-8") for path in RENDER_DIR.glob("*.py"))
    keys = set(_KEY_LITERAL.findall(source))
    keys |= {f"status.{status.value}" for status in TaskStatus}
    keys |= {f"stage.{status.value}" for status in bot.render.STAGES}
    keys |= {f"clip.{state.value}" for state in ClipState}
    keys |= {f"notice.{notice.value}" for notice in Notice}
    keys |= {cls.message_key for cls in relay_error_classes()}
    return keys


def relay_error_classes() -> list[type[errors.RelayError]]:
    found: list[type[errors.RelayError]] = []
    pending: list[type[errors.RelayError]] = [errors.RelayError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_key_render_uses_exists_in_english() -> None:
    missing = keys_render_can_ask_for() - default_catalog().keys("en")
    assert not missing


def test_every_relay_error_has_a_message() -> None:
    catalog = default_catalog()
    for cls in relay_error_classes():
        assert catalog.text("en-US", cls.message_key)


def test_every_shipped_catalog_matches_english_keys_and_placeholders() -> None:
    english = json.loads((LOCALES_DIR / "en.json").read_text(encoding="utf-8"))
    for file in LOCALES_DIR.glob("*.json"):
        messages = json.loads(file.read_text(encoding="utf-8"))
        for key, template in messages.items():
            assert key in english, f"{file.name}: {key} is not an English key"
            assert placeholders(template) == placeholders(english[key]), f"{file.name}: {key}"
