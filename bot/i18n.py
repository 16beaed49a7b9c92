"""The message catalog: every user-visible string, by key and Discord locale, from JSON files."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from discord import Locale, app_commands

FALLBACK_LANGUAGE = "en"
# The languages the bot speaks: one `bot/locales/<code>.json` each, named by Discord's locale
# code. Adding a language is its catalog file plus one line here.
SUPPORTED_LOCALES = (
    FALLBACK_LANGUAGE,
    "zh-CN",
    "zh-TW",
    "ja",
    "ko",
    "es-ES",
    "pt-BR",
    "fr",
    "de",
)
# Discord locales with no catalog of their own that read another's rather than English.
_READS_AS = {"es-419": "es-es"}
# Discord has about thirty locales; the bound only guards against callers passing junk.
_MAX_CACHED_LOCALES = 256
_LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def _normalize(locale: str) -> str:
    # Discord sends "en-US"; files may be named "en_US" or "zh-cn" by hand.
    return locale.strip().replace("_", "-").lower()


class Catalog:
    """Messages per locale; a lookup walks locale → its language → English. Discord's Latin
    American Spanish (`es-419`), which has no catalog, reads the Spanish one (`es-ES`)."""

    def __init__(self, messages: Mapping[str, Mapping[str, str]]) -> None:
        self._messages: dict[str, dict[str, str]] = {
            _normalize(locale): dict(entries) for locale, entries in messages.items()
        }
        if FALLBACK_LANGUAGE not in self._messages:
            raise ValueError(f"the catalog has no {FALLBACK_LANGUAGE!r} messages")
        self._chains: dict[str, tuple[dict[str, str], ...]] = {}
        # (locale, key) → the template that serves it, for the locales whose chain is cached.
        self._templates: dict[tuple[str, str], str] = {}

    @classmethod
    def from_directory(cls, path: Path, locales: Iterable[str] | None = None) -> Catalog:
        """One `<locale>.json` file per locale (a flat object of key → text): those of
        `locales`, each of which must exist, or every file in `path`."""
        if locales is None:
            files = sorted(path.glob("*.json"))
        else:
            files = [path / f"{locale}.json" for locale in locales]
        messages: dict[str, dict[str, str]] = {}
        for file in files:
            if not file.is_file():
                raise ValueError(f"{file.name}: the catalog of a supported locale is missing")
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in data.items()
            ):
                raise ValueError(f"{file.name}: expected a flat JSON object of strings")
            messages[file.stem] = data
        return cls(messages)

    def keys(self, locale: str = FALLBACK_LANGUAGE) -> frozenset[str]:
        return frozenset(self._messages.get(_normalize(locale), {}))

    def _chain(self, locale: str) -> tuple[dict[str, str], ...]:
        chain = self._chains.get(locale)
        if chain is None:
            wanted = _normalize(str(locale))
            if wanted not in self._messages:
                wanted = _READS_AS.get(wanted, wanted)
            names = [wanted, wanted.split("-", 1)[0], FALLBACK_LANGUAGE]
            unique = dict.fromkeys(name for name in names if name in self._messages)
            chain = tuple(self._messages[name] for name in unique)
            if len(self._chains) < _MAX_CACHED_LOCALES:
                self._chains[locale] = chain
        return chain

    def text(self, locale: str, key: str, **params: object) -> str:
        """The message for `key` in `locale`, formatted with `params`.

        A key missing in every catalog raises KeyError: it is a programming error.
        """
        template = self._templates.get((locale, key))
        if template is None:
            template = self._template(locale, key)
        return template.format(**params) if params else template

    def _template(self, locale: str, key: str) -> str:
        for messages in self._chain(locale):
            template = messages.get(key)
            if template is not None:
                if locale in self._chains:  # bounded as the chains are
                    self._templates[(locale, key)] = template
                return template
        raise KeyError(key)

    def translation(self, locale: str, key: str) -> str | None:
        """The message for `key` in a language other than English that serves `locale`, or
        None where `locale` would read English anyway."""
        english = self._messages[FALLBACK_LANGUAGE]
        for messages in self._chain(locale):
            if messages is english:
                return None
            template = messages.get(key)
            if template is not None:
                return template
        return None


@functools.cache
def default_catalog() -> Catalog:
    """The catalogs of the supported locales, shipped in `bot/locales`."""
    return Catalog.from_directory(_LOCALES_DIR, SUPPORTED_LOCALES)


def command_text(key: str) -> app_commands.locale_str:
    """A command's or option's description: English as the default Discord shows, the catalog
    `key` for the translator."""
    return app_commands.locale_str(default_catalog().text(FALLBACK_LANGUAGE, key), key=key)


class CommandTranslator(app_commands.Translator):
    """Gives Discord the command descriptions in every supported language, so each client shows
    them in its own. Names carry no key and stay as they are: `/suno status task_id` is typed
    the same in every client, and the messages that mention it stay true."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        if not isinstance(key, str):
            return None
        return self._catalog.translation(locale.value, key)
