"""The message catalog: loading, locale fallback, and that every key the bot uses exists."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import discord
import pytest

import bot.render
import cogs
from bot.i18n import FALLBACK_LANGUAGE, SUPPORTED_LOCALES, Catalog, default_catalog
from bot.render import Notice
from bot.suno import errors
from bot.suno.models import ClipState, TaskStatus

LOCALES_DIR = Path(bot.__file__).resolve().parent / "locales"
RENDER_DIR = Path(bot.render.__file__).resolve().parent
COGS_DIR = Path(cogs.__file__).resolve().parent
TRANSLATED = [locale for locale in SUPPORTED_LOCALES if locale != FALLBACK_LANGUAGE]


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


@pytest.mark.parametrize("locale", ["tr", "ru", "", "xx-nonsense"])
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
    r"""["']((?:status|clip|stage|label|title|text|footer|button|notice|error|format|command)"""
    r"""\.[A-Za-z_.]+)["']"""
)


def keys_render_can_ask_for() -> set[str]:
    sources = [*RENDER_DIR.glob("*.py"), *COGS_DIR.glob("*.py")]
    source = "\n".join(path.read_text(encoding="utf-8") for path in sources)
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


# --- the shipped languages ----------------------------------------------------------------------


def shipped(locale: str) -> dict[str, str]:
    messages: dict[str, str] = json.loads((LOCALES_DIR / f"{locale}.json").read_text("utf-8"))
    return messages


def test_the_bot_speaks_the_languages_of_suno_communities() -> None:
    assert set(SUPPORTED_LOCALES) == {
        "en",
        "zh-CN",
        "zh-TW",
        "ja",
        "ko",
        "es-ES",
        "pt-BR",
        "fr",
        "de",
    }


def test_every_catalog_file_is_a_supported_locale_and_every_supported_locale_has_one() -> None:
    assert sorted(file.stem for file in LOCALES_DIR.glob("*.json")) == sorted(SUPPORTED_LOCALES)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_supported_locales_are_named_by_discords_locale_codes(locale: str) -> None:
    assert discord.Locale(locale).value == locale


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_catalog_has_every_english_key_and_no_other(locale: str) -> None:
    english, messages = shipped("en"), shipped(locale)
    assert sorted(set(english) - set(messages)) == [], f"{locale}.json lacks these keys"
    assert sorted(set(messages) - set(english)) == [], f"{locale}.json has keys English lacks"


_CODE_SPAN = re.compile(r"`[^`]*`")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_translation_keeps_placeholders_markdown_and_commands(locale: str) -> None:
    english, messages = shipped("en"), shipped(locale)
    for key, template in messages.items():
        assert placeholders(template) == placeholders(english[key]), f"{locale}: {key}"
        assert template.count("**") == english[key].count("**"), f"{locale}: {key}"
        spans = sorted(_CODE_SPAN.findall(template))
        assert spans == sorted(_CODE_SPAN.findall(english[key])), f"{locale}: {key}"
        assert template == template.strip() and template, f"{locale}: {key}"


# Words and sentences a reader must not meet in English; labels like "Status" or "MP3" may
# rightly read the same in some languages.
_ALWAYS_TRANSLATED = ("status.", "stage.", "text.", "notice.", "error.", "title.", "command.")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_no_sentence_is_left_in_english(locale: str) -> None:
    english, messages = shipped("en"), shipped(locale)
    untranslated = [
        key
        for key, template in messages.items()
        if key.startswith(_ALWAYS_TRANSLATED) and template == english[key]
    ]
    assert untranslated == []


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("zh-CN", "已完成"),
        ("zh-TW", "已完成"),
        ("ja", "完了"),
        ("ko", "완료"),
        ("es-ES", "Terminada"),
        ("es-419", "Terminada"),
        ("pt-BR", "Concluída"),
        ("fr", "Terminée"),
        ("de", "Fertig"),
        ("en-GB", "Done"),
    ],
)
def test_each_discord_locale_reads_its_language(locale: str, expected: str) -> None:
    assert default_catalog().text(locale, "status.SUCCESS") == expected


def test_traditional_chinese_is_its_own_catalog_not_simplified() -> None:
    catalog = default_catalog()
    assert catalog.text("zh-TW", "label.progress") == "進度"
    assert catalog.text("zh-CN", "label.progress") == "进度"


def test_a_key_missing_in_a_regional_catalog_reads_english_not_another_region(
    small_catalog_dir: Path,
) -> None:
    write_catalogs(
        small_catalog_dir,
        **{"zh-CN": {"status.SUCCESS": "完成", "status.IN_PROGRESS": "生成中"}},
        **{"zh-TW": {"status.SUCCESS": "完成"}},
    )
    catalog = Catalog.from_directory(small_catalog_dir)
    assert catalog.text("zh-TW", "status.IN_PROGRESS") == "Generating"


def test_latin_american_spanish_reads_the_spanish_catalog(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, **{"es-ES": {"status.SUCCESS": "Terminada"}})
    catalog = Catalog.from_directory(small_catalog_dir)
    assert catalog.text("es-419", "status.SUCCESS") == "Terminada"
    assert catalog.text("es-419", "status.IN_PROGRESS") == "Generating"


def test_a_supported_locale_without_its_file_is_refused(small_catalog_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"ja\.json"):
        Catalog.from_directory(small_catalog_dir, ["en", "ja"])


def test_only_the_supported_locales_are_loaded(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, fr={"status.SUCCESS": "Terminée"})
    catalog = Catalog.from_directory(small_catalog_dir, ["en"])
    assert catalog.text("fr", "status.SUCCESS") == "Done"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ja", "完了"),
        ("es-419", "Terminada"),
        ("en-US", None),
        ("en-GB", None),
        ("tr", None),
    ],
)
def test_a_translation_is_only_given_where_a_client_would_not_read_english(
    locale: str, expected: str | None
) -> None:
    assert default_catalog().translation(locale, "status.SUCCESS") == expected


def test_a_key_a_language_lacks_has_no_translation(small_catalog_dir: Path) -> None:
    write_catalogs(small_catalog_dir, fr={"status.SUCCESS": "Terminée"})
    assert Catalog.from_directory(small_catalog_dir).translation("fr", "status.QUEUED") is None
