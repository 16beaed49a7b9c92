"""What a user sees in a Components V2 message: its text, links, pictures, menus and files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.kit.discord_limits import (
    BUTTON,
    CONTAINER,
    FILE,
    IS_COMPONENTS_V2,
    LINK_STYLE,
    MEDIA_GALLERY,
    STRING_SELECT,
    TEXT_DISPLAY,
    THUMBNAIL,
)

JSONObject = dict[str, Any]


def walk(components: list[JSONObject]) -> Iterator[JSONObject]:
    """Every component, depth first in reading order (a section's accessory after its text)."""
    for component in components:
        yield component
        yield from walk(component.get("components") or [])
        accessory = component.get("accessory")
        if isinstance(accessory, Mapping):
            yield from walk([dict(accessory)])


def find_component(components: list[JSONObject], custom_id: str) -> JSONObject | None:
    return next((c for c in walk(components) if c.get("custom_id") == custom_id), None)


def texts(components: list[JSONObject]) -> list[str]:
    return [str(c.get("content", "")) for c in walk(components) if c.get("type") == TEXT_DISPLAY]


def card_text(components: list[JSONObject]) -> str:
    """All the text displays, one after another, as the reader reads them."""
    return "\n".join(texts(components))


def link_buttons(components: list[JSONObject]) -> list[tuple[str, str]]:
    return [
        (str(c.get("label")), str(c.get("url")))
        for c in walk(components)
        if c.get("type") == BUTTON and c.get("style") == LINK_STYLE
    ]


def images(components: list[JSONObject]) -> list[str]:
    """The pictures: thumbnails and gallery items, in order."""
    found: list[str] = []
    for c in walk(components):
        if c.get("type") == THUMBNAIL:
            found.append(str(c["media"]["url"]))
        elif c.get("type") == MEDIA_GALLERY:
            found += [str(item["media"]["url"]) for item in c.get("items", [])]
    return found


def files(components: list[JSONObject]) -> list[str]:
    return [str(c["file"]["url"]) for c in walk(components) if c.get("type") == FILE]


def selects(components: list[JSONObject]) -> list[JSONObject]:
    return [c for c in walk(components) if c.get("type") == STRING_SELECT]


def accent_colour(components: list[JSONObject]) -> int | None:
    return next((c.get("accent_color") for c in components if c.get("type") == CONTAINER), None)


def component_count(components: list[JSONObject]) -> int:
    return sum(1 for _ in walk(components))


def components_of(message: Any) -> list[JSONObject]:
    """The components a rendered message (anything with `view()`) sends to Discord."""
    components: list[JSONObject] = message.view().to_components()
    return components


def body_of(message: Any) -> JSONObject:
    """The edit body the bot sends for a rendered message, as Discord gets it."""
    return {"flags": IS_COMPONENTS_V2, "embeds": [], "components": components_of(message)}
