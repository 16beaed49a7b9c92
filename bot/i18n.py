"""The message catalog: every user-visible string, by key and Discord locale, from JSON files."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

FALLBACK_LANGUAGE = "en"
# Discord has about thirty locales; the bound only guards against callers passing junk.
_MAX_CACHED_LOCALES = 256
_LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def _normalize(locale: str) -> str:
    # Discord sends "en-US"; files may be named "en_US" or "zh-cn" by hand.
    return locale.strip().replace("_", "-").lower()


class Catalog:
    """Messages per locale; a lookup walks locale → its language → English."""

    def __init__(self, messages: Mapping[str, Mapping[str, str]]) -> None:
        self._messages: dict[str, dict[str, str]] = {
            _normalize(locale): dict(entries) for locale, entries in messages.items()
        }
        if FALLBACK_LANGUAGE not in self._messages:
            raise ValueError(f"the catalog has no {FALLBACK_LANGUAGE!r} messages")
        self._chains: dict[str, tuple[dict[str, str], ...]] = {}

    @classmethod
    def from_directory(cls, path: Path) -> Catalog:
        """One `<locale>.json` file per locale (a flat object of key → text)."""
        messages: dict[str, dict[str, str]] = {}
        for file in sorted(path.glob("*.json")):
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
        for messages in self._chain(locale):
            template = messages.get(key)
            if template is not None:
                return template.format(**params) if params else template
        raise KeyError(key)


@functools.cache
def default_catalog() -> Catalog:
    """The catalogs shipped in `bot/locales`."""
    return Catalog.from_directory(_LOCALES_DIR)
