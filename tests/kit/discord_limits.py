"""Discord's rules for a message create/edit body, as a checker that lists every violation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

CONTENT_LIMIT = 2000
MAX_EMBEDS = 10
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
MAX_FIELDS = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
TOTAL_EMBED_TEXT_LIMIT = 6000
EMBED_URL_LIMIT = 2048
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
CUSTOM_ID_LIMIT = 100

ACTION_ROW = 1
BUTTON = 2
LINK_STYLE = 5
PREMIUM_STYLE = 6

# Components V2 (https://discord.com/developers/docs/components/reference).
IS_COMPONENTS_V2 = 1 << 15
STRING_SELECT = 3
SELECTS = frozenset({3, 5, 6, 7, 8})
SECTION = 9
TEXT_DISPLAY = 10
THUMBNAIL = 11
MEDIA_GALLERY = 12
FILE = 13
SEPARATOR = 14
CONTAINER = 17
MAX_V2_COMPONENTS = 40
V2_TEXT_LIMIT = 4000
SELECT_OPTIONS_LIMIT = 25
SELECT_TEXT_LIMIT = 100
SELECT_PLACEHOLDER_LIMIT = 150
GALLERY_ITEMS_LIMIT = 10
# What may stand at the top of a V2 message, and inside a container.
TOP_LEVEL_TYPES = frozenset(
    {ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER}
)
CONTAINER_CHILD_TYPES = TOP_LEVEL_TYPES - {CONTAINER}


def _is_url(value: object, schemes: tuple[str, ...]) -> bool:
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        return False
    return scheme in ("attachment", "discord") or bool(parts.hostname)


def _text(
    problems: list[str], where: str, value: object, limit: int, *, required: bool = False
) -> int:
    """Check one text value; its length toward the embed total."""
    if value is None:
        if required:
            problems.append(f"{where}: required")
        return 0
    if not isinstance(value, str):
        problems.append(f"{where}: not a string ({type(value).__name__})")
        return 0
    if required and not value.strip():
        problems.append(f"{where}: empty")
    if len(value) > limit:
        problems.append(f"{where}: {len(value)} characters > {limit}")
    return len(value)


def _url(
    problems: list[str], where: str, value: object, *, images: bool = False, required: bool = False
) -> None:
    if value is None:
        if required:
            problems.append(f"{where}: required")
        return
    schemes = ("http", "https", "attachment") if images else ("http", "https")
    if not _is_url(value, schemes):
        problems.append(f"{where}: not an allowed URL ({value!r:.80})")
    elif isinstance(value, str) and len(value) > EMBED_URL_LIMIT:
        problems.append(f"{where}: URL of {len(value)} characters > {EMBED_URL_LIMIT}")


def _embed(problems: list[str], where: str, embed: object) -> int:
    if not isinstance(embed, Mapping):
        problems.append(f"{where}: not an object")
        return 0
    total = _text(problems, f"{where}.title", embed.get("title"), TITLE_LIMIT)
    total += _text(problems, f"{where}.description", embed.get("description"), DESCRIPTION_LIMIT)
    if embed.get("type", "rich") != "rich":
        problems.append(f"{where}.type: only 'rich' embeds can be sent")
    _url(problems, f"{where}.url", embed.get("url"))
    _color(problems, f"{where}.color", embed.get("color"))
    for media in ("image", "thumbnail"):
        _media(problems, f"{where}.{media}", embed.get(media))
    total += _footer(problems, f"{where}.footer", embed.get("footer"))
    total += _author(problems, f"{where}.author", embed.get("author"))
    total += _fields(problems, f"{where}.fields", embed.get("fields"))
    return total


def _color(problems: list[str], where: str, color: object) -> None:
    if color is None:
        return
    if not isinstance(color, int) or isinstance(color, bool) or not 0 <= color <= 0xFFFFFF:
        problems.append(f"{where}: not a colour ({color!r})")


def _media(problems: list[str], where: str, item: object) -> None:
    if item is None:
        return
    if not isinstance(item, Mapping):
        problems.append(f"{where}: not an object")
    else:
        _url(problems, f"{where}.url", item.get("url"), images=True, required=True)


def _footer(problems: list[str], where: str, footer: object) -> int:
    if footer is None:
        return 0
    if not isinstance(footer, Mapping):
        problems.append(f"{where}: not an object")
        return 0
    total = _text(problems, f"{where}.text", footer.get("text"), FOOTER_LIMIT, required=True)
    _url(problems, f"{where}.icon_url", footer.get("icon_url"), images=True)
    return total


def _author(problems: list[str], where: str, author: object) -> int:
    if author is None:
        return 0
    if not isinstance(author, Mapping):
        problems.append(f"{where}: not an object")
        return 0
    total = _text(problems, f"{where}.name", author.get("name"), AUTHOR_NAME_LIMIT, required=True)
    _url(problems, f"{where}.url", author.get("url"))
    _url(problems, f"{where}.icon_url", author.get("icon_url"), images=True)
    return total


def _fields(problems: list[str], where: str, fields: object) -> int:
    if fields is None:
        return 0
    if not isinstance(fields, list):
        problems.append(f"{where}: not a list")
        return 0
    if len(fields) > MAX_FIELDS:
        problems.append(f"{where}: {len(fields)} fields > {MAX_FIELDS}")
    total = 0
    for index, item in enumerate(fields):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at}: not an object")
            continue
        total += _text(problems, f"{at}.name", item.get("name"), FIELD_NAME_LIMIT, required=True)
        total += _text(problems, f"{at}.value", item.get("value"), FIELD_VALUE_LIMIT, required=True)
        inline = item.get("inline")
        if inline is not None and not isinstance(inline, bool):
            problems.append(f"{at}.inline: not a boolean")
    return total


def _button(problems: list[str], where: str, button: Mapping[str, Any]) -> None:
    style = button.get("style")
    label = button.get("label")
    if label is None and button.get("emoji") is None and style != PREMIUM_STYLE:
        problems.append(f"{where}: a button needs a label or an emoji")
    if label is not None:
        _text(problems, f"{where}.label", label, BUTTON_LABEL_LIMIT)
    if style == LINK_STYLE:
        _link_button(problems, where, button)
    elif style in (1, 2, 3, 4):
        _custom_id_button(problems, where, button)
    elif style != PREMIUM_STYLE:
        problems.append(f"{where}.style: unknown button style {style!r}")


def _link_button(problems: list[str], where: str, button: Mapping[str, Any]) -> None:
    url = button.get("url")
    if not _is_url(url, ("http", "https", "discord")):
        problems.append(f"{where}.url: a link button needs an http(s) or discord URL")
    elif isinstance(url, str) and len(url) > BUTTON_URL_LIMIT:
        problems.append(f"{where}.url: {len(url)} characters > {BUTTON_URL_LIMIT}")
    if "custom_id" in button:
        problems.append(f"{where}: a link button cannot have a custom_id")


def _custom_id_button(problems: list[str], where: str, button: Mapping[str, Any]) -> None:
    custom_id = button.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        problems.append(f"{where}.custom_id: required")
    elif len(custom_id) > CUSTOM_ID_LIMIT:
        problems.append(f"{where}.custom_id: {len(custom_id)} characters > {CUSTOM_ID_LIMIT}")
    if "url" in button:
        problems.append(f"{where}: only link buttons have a url")


def _components(problems: list[str], components: object) -> None:
    if not isinstance(components, list):
        problems.append("components: not a list")
        return
    if len(components) > MAX_ACTION_ROWS:
        problems.append(f"components: {len(components)} action rows > {MAX_ACTION_ROWS}")
    for row_index, row in enumerate(components):
        _action_row(problems, f"components[{row_index}]", row)


def _action_row(problems: list[str], where: str, row: object) -> None:
    if not isinstance(row, Mapping) or row.get("type") != ACTION_ROW:
        problems.append(f"{where}: top-level components must be action rows")
        return
    children = row.get("components")
    if not isinstance(children, list) or not children:
        problems.append(f"{where}.components: an action row needs 1 to 5 components")
        return
    if len(children) > MAX_ROW_COMPONENTS:
        problems.append(f"{where}.components: {len(children)} > {MAX_ROW_COMPONENTS}")
    kinds = {child.get("type") for child in children if isinstance(child, Mapping)}
    if kinds - {BUTTON} and len(children) > 1:
        problems.append(f"{where}: a select menu must be alone in its row")
    for index, child in enumerate(children):
        at = f"{where}.components[{index}]"
        if not isinstance(child, Mapping):
            problems.append(f"{at}: not an object")
        elif child.get("type") == BUTTON:
            _button(problems, at, child)
        elif child.get("type") in SELECTS:
            _select(problems, at, child)
        else:
            problems.append(f"{at}.type: {child.get('type')!r} cannot stand in an action row")


def _select(problems: list[str], where: str, select: Mapping[str, Any]) -> None:
    custom_id = select.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        problems.append(f"{where}.custom_id: required")
    elif len(custom_id) > CUSTOM_ID_LIMIT:
        problems.append(f"{where}.custom_id: {len(custom_id)} > {CUSTOM_ID_LIMIT}")
    _text(problems, f"{where}.placeholder", select.get("placeholder"), SELECT_PLACEHOLDER_LIMIT)
    if select.get("type") != STRING_SELECT:
        return
    options = select.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= SELECT_OPTIONS_LIMIT:
        problems.append(f"{where}.options: a string select needs 1 to {SELECT_OPTIONS_LIMIT}")
        return
    values: set[object] = set()
    for index, option in enumerate(options):
        at = f"{where}.options[{index}]"
        if not isinstance(option, Mapping):
            problems.append(f"{at}: not an object")
            continue
        for key in ("label", "value"):
            _text(problems, f"{at}.{key}", option.get(key), SELECT_TEXT_LIMIT, required=True)
        _text(problems, f"{at}.description", option.get("description"), SELECT_TEXT_LIMIT)
        if option.get("value") in values:
            problems.append(f"{at}.value: option values must be unique")
        values.add(option.get("value"))
    low, high = select.get("min_values", 1), select.get("max_values", 1)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= len(options)):
        problems.append(
            f"{where}.max_values: {low!r}..{high!r} does not fit {len(options)} options"
        )


def validate_message_payload(payload: Mapping[str, Any], *, v2: bool = False) -> list[str]:
    """Every way `payload` (a message create/edit JSON body) breaks Discord's rules; [] if none.
    `v2`: the message already is a Components V2 message (the flag, once set, stays)."""
    flags = payload.get("flags")
    if v2 or (isinstance(flags, int) and flags & IS_COMPONENTS_V2):
        return validate_layout_payload(payload)
    problems: list[str] = []
    _text(problems, "content", payload.get("content"), CONTENT_LIMIT)
    embeds = payload.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list):
            problems.append("embeds: not a list")
        else:
            if len(embeds) > MAX_EMBEDS:
                problems.append(f"embeds: {len(embeds)} embeds > {MAX_EMBEDS}")
            total = sum(
                _embed(problems, f"embeds[{index}]", embed) for index, embed in enumerate(embeds)
            )
            if total > TOTAL_EMBED_TEXT_LIMIT:
                problems.append(
                    f"embeds: {total} characters of text in all > {TOTAL_EMBED_TEXT_LIMIT}"
                )
    components = payload.get("components")
    if components is not None:
        _components(problems, components)
    return problems


def validate_layout_payload(payload: Mapping[str, Any]) -> list[str]:
    """The rules of a Components V2 message body: no content nor embeds, at most 40 components
    counted at every depth, 4 000 characters of text displays, and each component well formed."""
    problems: list[str] = []
    if payload.get("content"):
        problems.append("content: cannot be sent with the IS_COMPONENTS_V2 flag")
    if payload.get("embeds"):
        problems.append("embeds: cannot be sent with the IS_COMPONENTS_V2 flag")
    components = payload.get("components")
    if components is None:
        return problems
    if not isinstance(components, list):
        return [*problems, "components: not a list"]
    tally = _Tally()
    for index, component in enumerate(components):
        _v2_component(problems, f"components[{index}]", component, TOP_LEVEL_TYPES, tally)
    if tally.count > MAX_V2_COMPONENTS:
        problems.append(f"components: {tally.count} components > {MAX_V2_COMPONENTS}")
    if tally.text > V2_TEXT_LIMIT:
        problems.append(f"components: {tally.text} characters of text > {V2_TEXT_LIMIT}")
    return problems


class _Tally:
    """Components and text display characters seen so far in one message."""

    def __init__(self) -> None:
        self.count = 0
        self.text = 0


def _v2_component(
    problems: list[str], where: str, component: object, allowed: frozenset[int], tally: _Tally
) -> None:
    if not isinstance(component, Mapping):
        problems.append(f"{where}: not an object")
        return
    kind = component.get("type")
    tally.count += 1
    if kind not in allowed:
        problems.append(f"{where}.type: component type {kind!r} is not allowed here")
        return
    if kind == ACTION_ROW:
        _action_row(problems, where, component)
        children = component.get("components")
        tally.count += len(children) if isinstance(children, list) else 0
    elif kind == CONTAINER:
        _container(problems, where, component, tally)
    elif kind == SECTION:
        _section(problems, where, component, tally)
    else:
        _v2_leaf(problems, where, component, tally)


def _container(
    problems: list[str], where: str, container: Mapping[str, Any], tally: _Tally
) -> None:
    _color(problems, f"{where}.accent_color", container.get("accent_color"))
    children = container.get("components")
    if not isinstance(children, list) or not children:
        problems.append(f"{where}.components: a container needs components")
        return
    for index, child in enumerate(children):
        at = f"{where}.components[{index}]"
        _v2_component(problems, at, child, CONTAINER_CHILD_TYPES, tally)


def _section(problems: list[str], where: str, section: Mapping[str, Any], tally: _Tally) -> None:
    children = section.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= 3:
        problems.append(f"{where}.components: a section needs 1 to 3 text displays")
    else:
        for index, child in enumerate(children):
            at = f"{where}.components[{index}]"
            _v2_component(problems, at, child, frozenset({TEXT_DISPLAY}), tally)
    accessory = section.get("accessory")
    if not isinstance(accessory, Mapping):
        problems.append(f"{where}.accessory: required")
    elif accessory.get("type") == BUTTON:
        tally.count += 1
        _button(problems, f"{where}.accessory", accessory)
    else:
        _v2_component(problems, f"{where}.accessory", accessory, frozenset({THUMBNAIL}), tally)


def _v2_leaf(problems: list[str], where: str, leaf: Mapping[str, Any], tally: _Tally) -> None:
    kind = leaf.get("type")
    if kind == TEXT_DISPLAY:
        content = leaf.get("content")
        tally.text += _text(problems, f"{where}.content", content, V2_TEXT_LIMIT, required=True)
    elif kind == THUMBNAIL:
        _unfurled(problems, f"{where}.media", leaf.get("media"))
    elif kind == MEDIA_GALLERY:
        items = leaf.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= GALLERY_ITEMS_LIMIT:
            problems.append(f"{where}.items: a gallery needs 1 to {GALLERY_ITEMS_LIMIT} items")
            return
        for index, item in enumerate(items):
            media = item.get("media") if isinstance(item, Mapping) else None
            _unfurled(problems, f"{where}.items[{index}].media", media)
    elif kind == FILE:
        media = leaf.get("file")
        url = media.get("url") if isinstance(media, Mapping) else None
        if not (isinstance(url, str) and url.startswith("attachment://") and len(url) > 13):
            problems.append(f"{where}.file.url: a file component needs an attachment:// URL")
    elif kind == SEPARATOR and leaf.get("spacing", 1) not in (1, 2):
        problems.append(f"{where}.spacing: must be 1 or 2")


def _unfurled(problems: list[str], where: str, media: object) -> None:
    if not isinstance(media, Mapping):
        problems.append(f"{where}: required")
        return
    _url(problems, f"{where}.url", media.get("url"), images=True, required=True)
