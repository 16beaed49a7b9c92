"""Discord's rules for the bodies a bot sends, and the errors Discord answers broken ones with."""

from __future__ import annotations

import re
from typing import Any

from tests.kit.discord_limits import validate_message_payload
from tests.kit.fake_discord.records import (
    ATTACHMENT_SIZE_LIMIT,
    IS_COMPONENTS_V2,
    MESSAGE_FLAGS,
    FakeMessage,
    JSONObject,
    Upload,
)

# The error codes that say the body itself was wrong (the fake records those requests).
BODY_ERROR_CODES = frozenset({50035, 50006, 50109})

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


class DiscordError(Exception):
    """An error answer: HTTP status, Discord's JSON error code and message, nested `errors`."""

    def __init__(
        self, status: int, code: int, message: str, errors: JSONObject | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> JSONObject:
        body: JSONObject = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def message_violations(payload: JSONObject, *, v2: bool = False) -> list[str]:
    """Discord's rules for a message body, as `path: problem` lines; empty when valid.
    `v2`: the body edits a message that already is a Components V2 message."""
    problems = validate_message_payload(payload, v2=v2)
    flags = payload.get("flags")
    if flags is not None and (not isinstance(flags, int) or flags & ~MESSAGE_FLAGS):
        problems.append(f"flags: not allowed on a message ({flags!r})")
    mentions = payload.get("allowed_mentions")
    if mentions is not None:
        _check_allowed_mentions(mentions, problems)
    return problems


def _check_allowed_mentions(mentions: Any, problems: list[str]) -> None:
    if not isinstance(mentions, dict):
        problems.append("allowed_mentions: not an object")
        return
    parse = mentions.get("parse") or []
    if not isinstance(parse, list) or not set(parse) <= {"roles", "users", "everyone"}:
        problems.append(f"allowed_mentions.parse: unknown mention types ({parse!r})")
        return
    for kind in ("users", "roles"):
        listed = mentions.get(kind) or []
        if kind in parse and listed:
            problems.append(f"allowed_mentions: parse {kind} and a {kind} list exclude each other")
        if len(listed) > 100:
            problems.append(f"allowed_mentions.{kind}: {len(listed)} ids > 100")


def command_violations(commands: list[Any]) -> list[str]:
    """Discord's rules for a bulk overwrite of application commands, like `message_violations`."""
    problems: list[str] = []
    if len(commands) > 100:
        problems.append("_errors: Must be 100 or fewer in length.")
    seen: set[tuple[int, str]] = set()
    for i, command in enumerate(commands):
        if not isinstance(command, dict):
            problems.append(f"{i}: Must be an object.")
            continue
        ctype = command.get("type", 1)
        name = command.get("name")
        _check_command_names(command, str(i), problems, chat_input=ctype == 1)
        if (ctype, str(name)) in seen:
            problems.append(f"{i}.name: Application command names must be unique")
        seen.add((ctype, str(name)))
        _check_command_options(command.get("options") or [], f"{i}.options", problems)
    return problems


def _check_command_names(
    item: JSONObject, path: str, problems: list[str], *, chat_input: bool
) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        problems.append(f"{path}.name: Must be between 1 and 32 in length.")
    elif chat_input and (not _COMMAND_NAME.match(name) or name != name.lower()):
        problems.append(f"{path}.name: Command name is invalid")
    if chat_input:
        description = item.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            problems.append(f"{path}.description: Must be between 1 and 100 in length.")


def _check_command_options(options: Any, path: str, problems: list[str]) -> None:
    if not isinstance(options, list):
        problems.append(f"{path}: Must be an array.")
        return
    if len(options) > 25:
        problems.append(f"{path}: Must be 25 or fewer in length.")
    optional_seen = False
    for j, option in enumerate(options):
        where = f"{path}.{j}"
        if not isinstance(option, dict):
            problems.append(f"{where}: Must be an object.")
            continue
        _check_command_names(option, where, problems, chat_input=True)
        if option.get("type") in (1, 2):
            _check_command_options(option.get("options") or [], f"{where}.options", problems)
            continue
        if option.get("required"):
            if optional_seen:
                problems.append(
                    f"{where}.required: Required options must be placed before non-required options"
                )
        else:
            optional_seen = True
        if len(option.get("choices") or []) > 25:
            problems.append(f"{where}.choices: Must be 25 or fewer in length.")


def layout_transition_violations(message: FakeMessage, body: JSONObject) -> list[str]:
    """What Discord refuses in an edit about the Components V2 flag: removing it once set, and
    setting it while the message would keep its content or embeds."""
    flags = body.get("flags")
    sets_v2 = isinstance(flags, int) and bool(flags & IS_COMPONENTS_V2)
    if message.flags & IS_COMPONENTS_V2:
        if isinstance(flags, int) and not sets_v2:
            return ["flags: the IS_COMPONENTS_V2 flag cannot be removed from a message"]
        return []
    problems = []
    if sets_v2 and message.content and "content" not in body:
        problems.append("content: must be cleared to set the IS_COMPONENTS_V2 flag")
    if sets_v2 and message.embeds and "embeds" not in body:
        problems.append("embeds: must be cleared to set the IS_COMPONENTS_V2 flag")
    return problems


def check_message_body(
    body: JSONObject, uploads: list[Upload], problem_prefix: str, *, v2: bool = False
) -> None:
    """Raise Discord's error for a message body that breaks its rules or is too large."""
    problems = message_violations(body, v2=v2)
    if problems:
        raise invalid_form(errors_tree([problem_prefix + p for p in problems]))
    if sum(u.size for u in uploads) > ATTACHMENT_SIZE_LIMIT:
        raise DiscordError(413, 40005, "Request entity too large")


def would_be_empty(message: FakeMessage | None, body: JSONObject, uploads: list[Upload]) -> bool:
    """Whether the message (new when None) would show nothing once `body` is applied."""

    def pick(key: str, current: Any) -> Any:
        return body.get(key, current)

    content = pick("content", message.content if message else "")
    embeds = pick("embeds", message.embeds if message else [])
    components = pick("components", message.components if message else [])
    attachments = pick("attachments", message.attachments if message else [])
    extras = body.get("poll") or body.get("sticker_ids")
    return not (content or embeds or components or attachments or uploads or extras)


def form_error(message: str) -> JSONObject:
    return {"code": "BASE_TYPE_INVALID", "message": message}


def invalid_form(errors: JSONObject) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def errors_tree(problems: list[str]) -> JSONObject:
    """Nest `a.b[0].c: message` lines the way Discord nests its 50035 `errors` object."""
    tree: JSONObject = {}
    for problem in problems:
        path, sep, message = problem.partition(": ")
        if not sep or " " in path:
            path, message = "", problem
        path = re.sub(r"\[(\d+)\]", r".\1", path)
        node = tree
        for key in (k for k in path.split(".") if k and k != "_errors"):
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append(form_error(message))
    return tree
