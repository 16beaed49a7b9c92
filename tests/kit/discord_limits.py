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
        else:
            custom_id = child.get("custom_id")
            if isinstance(custom_id, str) and len(custom_id) > CUSTOM_ID_LIMIT:
                problems.append(f"{at}.custom_id: {len(custom_id)} > {CUSTOM_ID_LIMIT}")


def validate_message_payload(payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` (a message create/edit JSON body) breaks Discord's rules; [] if none."""
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
