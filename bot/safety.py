"""Relay text and URLs made safe to show in Discord: escaped, cut to length, checked."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from discord.utils import escape_markdown, escape_mentions

ELLIPSIS = "…"

# Mentions, channel links, command mentions, emoji and timestamps never render from relay text.
_SPECIAL_BRACKET = re.compile(r"<(?=[@#/:]|a:|t:|id:)")
# Longer strings (lyrics) are escaped afresh each time, which bounds the cache's memory.
_CACHED_ESCAPE_LENGTH = 4096

_MAX_URL_LENGTH = 2048
# Characters a URL may not carry unencoded; Discord refuses such URLs (and one bad URL
# fails a whole message edit).
_UNSAFE_URL_CHARS = re.compile(r"[\s<>\"'`\\{}|^\x00-\x1f\x7f]")


def escape(text: str) -> str:
    """Relay text made inert: no markdown, no masked links, no mentions."""
    if len(text) <= _CACHED_ESCAPE_LENGTH:
        return _escape_cached(text)
    return _escape(text)


def _escape(text: str) -> str:
    # escape_markdown treats everything from the first "[" to the last ")" of a line as one
    # masked link and escapes only its first character, leaving markdown (and further masked
    # links) inside live; with "](" broken no such span exists and every character is escaped.
    text = escape_markdown(text.replace("](", "]\u200b("), ignore_links=False)
    text = escape_mentions(text)
    return _SPECIAL_BRACKET.sub("<\u200b", text)


# Polls repeat the same relay strings; caching keeps a render within a few dozen microseconds.
_escape_cached = functools.lru_cache(maxsize=512)(_escape)


def plain(text: str) -> str:
    """Relay text for places Discord shows without markdown (footer, author): mentions only."""
    return _SPECIAL_BRACKET.sub("<\u200b", escape_mentions(text))


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    kept = text[: limit - 1]
    # A cut escape would turn its backslash onto the ellipsis. (Counted with rstrip: a regex
    # search for trailing backslashes scans the whole text and was a quarter of a render.)
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept.rstrip() + ELLIPSIS


def safe_url(value: object) -> str | None:
    """The URL if it is an absolute http(s) URL that is safe to put in an embed or a button."""
    if not isinstance(value, str):
        return None
    return _checked_url(value)


# A task's links come back on every poll that changed it; splitting them again was a fifth of
# parsing a task.
@functools.lru_cache(maxsize=2048)
def _checked_url(value: str) -> str | None:
    url = value.strip()
    if not url or len(url) > _MAX_URL_LENGTH or _UNSAFE_URL_CHARS.search(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on an out-of-range or non-numeric port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url
