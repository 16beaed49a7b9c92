"""Pure rendering of a task or an error into Discord embeds and link buttons, within limits."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.i18n import Catalog, default_catalog
from bot.suno.models import Clip, ClipState, Lyrics, Task, TaskStatus, safe_url

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits),
# counted in code points like Python's len().
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
MAX_FIELDS = 25
MAX_EMBEDS = 10
TOTAL_TEXT_LIMIT = 6000
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
BUTTONS_PER_ROW = 5
MAX_ROWS = 5
MAX_BUTTONS = BUTTONS_PER_ROW * MAX_ROWS

ELLIPSIS = "…"
# Discord rejects empty or blank field names and values.
_BLANK = "—"

# Clips listed as fields on the running card; the rest are summarized in one line.
_MAX_CLIP_FIELDS = 10
# A raw status nobody recognizes is shown as-is, but it must not swamp the card.
_RAW_STATUS_LIMIT = 64
_TAGS_LIMIT = 512
_PROGRESS_CELLS = 10
# Longer strings (lyrics) are escaped afresh each time, which bounds the cache's memory.
_CACHED_ESCAPE_LENGTH = 4096

# What to trim first when a message is over the total budget: lyrics, then tags, then other
# relay details, then titles; later cards before earlier ones within a rank.
_RANK_LYRICS = 0
_RANK_TAGS = 1
_RANK_DETAIL = 2
_RANK_TITLE = 3
# Below this a lyrics excerpt is not worth keeping, so it goes entirely.
_MIN_USEFUL_BODY = 64
_TITLE_FLOOR = 48
_DETAIL_FLOOR = 48

_GREY = 0x95A5A6
_BLURPLE = 0x5865F2
_YELLOW = 0xF1C40F
_GREEN = 0x57F287
_RED = 0xED4245

_STATUS_COLOURS: dict[TaskStatus, int] = {
    TaskStatus.NOT_START: _GREY,
    TaskStatus.SUBMITTED: _GREY,
    TaskStatus.QUEUED: _BLURPLE,
    TaskStatus.IN_PROGRESS: _YELLOW,
    TaskStatus.SUCCESS: _GREEN,
    TaskStatus.FAILURE: _RED,
    TaskStatus.UNKNOWN: _GREY,
}

STAGES = (
    TaskStatus.NOT_START,
    TaskStatus.SUBMITTED,
    TaskStatus.QUEUED,
    TaskStatus.IN_PROGRESS,
    TaskStatus.SUCCESS,
)

# Mentions, channel links, command mentions, emoji and timestamps never render from relay text.
_SPECIAL_BRACKET = re.compile(r"<(?=[@#/:]|a:|t:|id:)")


class Notice(StrEnum):
    """A line that tells the viewer why the message stopped, or may stop, changing."""

    RELAY_RETRYING = "relay_retrying"
    AUTO_REFRESH_STOPPED = "auto_refresh_stopped"
    LIVE_UPDATES_ENDED = "live_updates_ended"


@dataclass(frozen=True, slots=True)
class LinkButton:
    label: str
    url: str
    row: int


@dataclass(frozen=True)
class RenderedMessage:
    """What one status message shows; `fingerprint` is equal iff the user would see the same."""

    embeds: tuple[discord.Embed, ...]
    buttons: tuple[LinkButton, ...]
    fingerprint: str

    def view(self) -> discord.ui.View | None:
        if not self.buttons:
            return None
        view = discord.ui.View(timeout=None)
        for button in self.buttons:
            view.add_item(
                discord.ui.Button(
                    style=discord.ButtonStyle.link,
                    label=button.label,
                    url=button.url,
                    row=button.row,
                )
            )
        return view


# --- text helpers -------------------------------------------------------------------------------


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


def _timestamp(moment: datetime, style: str) -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


def _duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


@functools.lru_cache(maxsize=2048)
def _embed_url(url: str | None) -> str | None:
    return safe_url(url)


def _first_cover(task: Task) -> str | None:
    return next((url for clip in task.clips if (url := _embed_url(clip.cover_url))), None)


def _button_url(url: str | None) -> str | None:
    url = _embed_url(url)
    if url is None or len(url) > BUTTON_URL_LIMIT:
        return None
    return url


# --- cards: embeds before the budget is applied --------------------------------------------------


@dataclass(slots=True)
class _Text:
    """A piece of text; `rank` None is never trimmed, `floor` 0 may vanish entirely."""

    text: str
    rank: int | None = None
    floor: int = 0

    def shrink(self, excess: int) -> int:
        """Cut by up to `excess` characters (not below the floor); the number saved."""
        if self.rank is None:
            return 0
        before = len(self.text)
        target = max(before - excess, self.floor)
        if target >= before:
            return 0
        if self.floor == 0 and target < _MIN_USEFUL_BODY:
            self.text = ""
        else:
            self.text = truncate(self.text, target)
        return before - len(self.text)


def _fixed(text: str, limit: int) -> _Text:
    return _Text(truncate(text, limit))


def _relay(text: str, limit: int, rank: int, floor: int) -> _Text:
    return _Text(truncate(text, limit), rank, min(floor, limit))


@dataclass(slots=True)
class _Field:
    name: _Text
    value: _Text
    inline: bool = True


@dataclass(slots=True)
class _Card:
    colour: int
    title: _Text | None = None
    url: str | None = None
    head: list[str] = field(default_factory=list)
    body: _Text | None = None
    fields: list[_Field] = field(default_factory=list)
    thumbnail: str | None = None
    image: str | None = None
    footer: _Text | None = None

    def add_field(self, name: _Text, value: _Text, *, inline: bool = True) -> None:
        if len(self.fields) < MAX_FIELDS:
            self.fields.append(_Field(name, value, inline))

    def description(self) -> str:
        head = "\n".join(self.head)
        body = self.body.text if self.body is not None else ""
        if head and body:
            return f"{head}\n\n{body}"
        return head or body

    def fit_body(self) -> None:
        """Keep the description within its limit by cutting the body, never the head."""
        head = "\n".join(self.head)
        if len(head) > DESCRIPTION_LIMIT:
            self.head = [truncate(head, DESCRIPTION_LIMIT)]
            self.body = None
        elif self.body is not None:
            room = DESCRIPTION_LIMIT - len(head) - (2 if head else 0)
            self.body.shrink(len(self.body.text) - room)

    def pieces(self) -> Iterator[_Text]:
        if self.body is not None:
            yield self.body
        for item in self.fields:
            yield item.value
            yield item.name
        if self.footer is not None:
            yield self.footer
        if self.title is not None:
            yield self.title

    def size(self) -> int:
        total = len(self.description())
        if self.title is not None:
            total += len(self.title.text)
        if self.footer is not None:
            total += len(self.footer.text)
        for item in self.fields:
            total += len(_non_blank(item.name.text)) + len(_non_blank(item.value.text))
        return total

    def to_embed(self) -> discord.Embed:
        title = self.title.text if self.title is not None and self.title.text.strip() else None
        description = self.description()
        embed = discord.Embed(
            title=title,
            url=self.url if title is not None else None,
            description=description if description.strip() else None,
            colour=self.colour,
        )
        for item in self.fields:
            embed.add_field(
                name=_non_blank(item.name.text),
                value=_non_blank(item.value.text),
                inline=item.inline,
            )
        if self.thumbnail is not None:
            embed.set_thumbnail(url=self.thumbnail)
        if self.image is not None:
            embed.set_image(url=self.image)
        if self.footer is not None and self.footer.text.strip():
            embed.set_footer(text=self.footer.text)
        return embed


def _non_blank(text: str) -> str:
    return text if text.strip() else _BLANK


def _fit_total(cards: list[_Card]) -> list[_Card]:
    """Trim the least important text until all cards together fit Discord's total."""
    total = sum(card.size() for card in cards)
    if total > TOTAL_TEXT_LIMIT:
        candidates = sorted(
            (
                (piece.rank, -index, order, piece)
                for index, card in enumerate(cards)
                for order, piece in enumerate(card.pieces())
                if piece.rank is not None
            ),
            key=lambda candidate: candidate[:3],
        )
        for *_, piece in candidates:
            total -= piece.shrink(total - TOTAL_TEXT_LIMIT)
            if total <= TOTAL_TEXT_LIMIT:
                break
        # Blanked pieces count as the placeholder they will show.
        total = sum(card.size() for card in cards)
    while total > TOTAL_TEXT_LIMIT and len(cards) > 1:
        total -= cards.pop().size()
    return cards


# --- buttons -------------------------------------------------------------------------------------


def _lay_out(groups: Sequence[Sequence[tuple[str, str]]]) -> tuple[LinkButton, ...]:
    """One row per clip when that fits, else packed five to a row; never more than Discord takes."""
    groups = [group for group in groups if group]
    one_row_each = len(groups) <= MAX_ROWS and all(len(g) <= BUTTONS_PER_ROW for g in groups)
    buttons: list[LinkButton] = []
    if one_row_each:
        for row, group in enumerate(groups):
            buttons.extend(LinkButton(label, url, row) for label, url in group)
        return tuple(buttons)
    flat = [button for group in groups for button in group][:MAX_BUTTONS]
    return tuple(
        LinkButton(label, url, index // BUTTONS_PER_ROW) for index, (label, url) in enumerate(flat)
    )


class _Renderer:
    def __init__(self, catalog: Catalog, locale: str) -> None:
        self.catalog = catalog
        self.locale = locale

    def t(self, key: str, **params: object) -> str:
        return self.catalog.text(self.locale, key, **params)

    def button(self, key: str, number: int, url: str | None) -> tuple[str, str] | None:
        checked = _button_url(url)
        if checked is None:
            return None
        label = truncate(self.t(key, number=number), BUTTON_LABEL_LIMIT)
        return (label, checked) if label.strip() else None

    # - shared pieces -

    def notice_line(self, notice: Notice | None, minutes: int | None) -> list[str]:
        if notice is None:
            return []
        if notice is Notice.AUTO_REFRESH_STOPPED:
            text = (
                self.t("notice.auto_refresh_stopped", minutes=minutes)
                if minutes is not None
                else self.t("notice.auto_refresh_stopped_untimed")
            )
        else:
            text = self.t(f"notice.{notice.value}")
        return [f"⚠️ **{text}**"]

    def status_word(self, task: Task) -> str:
        if task.status is TaskStatus.UNKNOWN and task.raw_status:
            return escape(truncate(task.raw_status, _RAW_STATUS_LIMIT))
        return self.t(f"status.{task.status.value}")

    def line(self, label_key: str, value: str) -> str:
        return f"**{self.t(label_key)}:** {value}"

    def time_lines(self, task: Task) -> list[str]:
        lines = []
        if task.submitted_at is not None:
            lines.append(self.line("label.submitted", _timestamp(task.submitted_at, "R")))
        if task.started_at is not None:
            lines.append(self.line("label.started", _timestamp(task.started_at, "f")))
        if task.is_terminal and task.finished_at is not None:
            lines.append(self.line("label.finished", _timestamp(task.finished_at, "f")))
        return lines

    def progress_line(self, task: Task) -> str | None:
        progress = task.progress
        if progress is not None and 1 <= progress <= 99:
            filled = int(progress // _PROGRESS_CELLS)
            bar = "▰" * filled + "▱" * (_PROGRESS_CELLS - filled)
            return self.line("label.progress", f"{bar} {int(progress)}%")
        if task.status not in STAGES:
            return None
        current = STAGES.index(task.status)
        steps = []
        for index, stage in enumerate(STAGES):
            word = self.t(f"stage.{stage.value}")
            if index < current:
                steps.append(f"✓ {word}")
            elif index == current:
                steps.append(f"**▶ {word}**")
            else:
                steps.append(word)
        return self.line("label.progress", " → ".join(steps))

    def footer(self, task: Task, number: int | None = None, total: int = 0) -> _Text | None:
        if not task.task_id:
            return None
        task_id = plain(truncate(task.task_id, FOOTER_LIMIT // 2))
        text = (
            self.t("footer.task", task_id=task_id)
            if number is None
            else self.t("footer.song", task_id=task_id, number=number, total=total)
        )
        return _relay(text, FOOTER_LIMIT, _RANK_DETAIL, _DETAIL_FLOOR)

    def title(self, text: str | None, fallback_key: str, **params: object) -> _Text:
        if text is None:
            return _fixed(self.t(fallback_key, **params), TITLE_LIMIT)
        return _relay(escape(truncate(text, TITLE_LIMIT)), TITLE_LIMIT, _RANK_TITLE, _TITLE_FLOOR)

    def clip_word(self, clip: Clip) -> str:
        if clip.state is ClipState.UNKNOWN and clip.raw_state:
            return escape(truncate(clip.raw_state, _RAW_STATUS_LIMIT))
        return self.t(f"clip.{clip.state.value}")

    # - running -

    def running(self, task: Task, head: list[str]) -> tuple[list[_Card], tuple[LinkButton, ...]]:
        first_title = next((clip.title for clip in task.clips if clip.title), None)
        if first_title is None and task.lyrics is not None:
            first_title = task.lyrics.title
        card = _Card(
            colour=_STATUS_COLOURS[task.status],
            title=self.title(first_title, "title.task"),
            thumbnail=_first_cover(task),
            footer=self.footer(task),
        )
        card.head = [*head, self.line("label.status", self.status_word(task))]
        progress = self.progress_line(task)
        if progress is not None:
            card.head.append(progress)
        card.head.extend(self.time_lines(task))

        groups: list[list[tuple[str, str]]] = []
        shown = task.clips[:_MAX_CLIP_FIELDS]
        for number, clip in enumerate(shown, start=1):
            card.add_field(*self.clip_summary(clip, number), inline=len(shown) > 1)
            if clip.state is ClipState.ERROR:
                continue
            group = [
                self.button("button.stream", number, clip.stream_url),
                self.button("button.mp3", number, clip.audio_url),
            ]
            groups.append([button for button in group if button is not None])
        hidden = len(task.clips) - len(shown)
        if hidden > 0:
            card.head.append(self.t("label.more_songs", count=hidden))
        return [card], _lay_out(groups)

    def clip_summary(self, clip: Clip, number: int) -> tuple[_Text, _Text]:
        label = self.t("label.song", number=number)
        if clip.title:
            name = _relay(
                f"{label} · {escape(truncate(clip.title, FIELD_NAME_LIMIT))}",
                FIELD_NAME_LIMIT,
                _RANK_TITLE,
                _TITLE_FLOOR,
            )
        else:
            name = _fixed(label, FIELD_NAME_LIMIT)
        first = self.clip_word(clip)
        if clip.duration is not None:
            first += f" · {_duration(clip.duration)}"
        lines = [first]
        if clip.state is ClipState.ERROR and clip.error_message:
            lines.append(escape(truncate(clip.error_message, FIELD_VALUE_LIMIT)))
        if clip.tags:
            lines.append(escape(truncate(clip.tags, _TAGS_LIMIT)))
        return name, _relay("\n".join(lines), FIELD_VALUE_LIMIT, _RANK_TAGS, len(first) + 8)

    # - done -

    def done(self, task: Task, head: list[str]) -> tuple[list[_Card], tuple[LinkButton, ...]]:
        status = [self.line("label.status", self.status_word(task)), *self.time_lines(task)]
        if task.lyrics is not None and not task.clips:
            return [self.lyrics_card(task, task.lyrics, [*head, *status])], ()
        if not task.clips:
            card = _Card(
                colour=_GREEN,
                title=_fixed(self.t("title.task"), TITLE_LIMIT),
                head=[*head, *status, "", self.t("text.no_songs")],
                footer=self.footer(task),
            )
            return [card], ()

        cards: list[_Card] = []
        groups: list[list[tuple[str, str]]] = []
        seen_lyrics: set[str] = set()
        total = len(task.clips)
        for number, clip in enumerate(task.clips[:MAX_EMBEDS], start=1):
            card = self.clip_card(task, clip, number, total, seen_lyrics)
            if number == 1:
                card.head = [*head, *status, *card.head]
            cards.append(card)
            if clip.state is ClipState.ERROR:
                groups.append([])
                continue
            group = [
                self.button("button.mp3", number, clip.audio_url),
                self.button("button.mp4", number, clip.video_url),
            ]
            groups.append([button for button in group if button is not None])
        return cards, _lay_out(groups)

    def clip_card(
        self, task: Task, clip: Clip, number: int, total: int, seen_lyrics: set[str]
    ) -> _Card:
        failed = clip.state is ClipState.ERROR
        card = _Card(
            colour=_RED if failed else _GREEN,
            title=self.title(clip.title, "label.song", number=number),
            url=None if failed else _embed_url(clip.audio_url),
            image=_embed_url(clip.cover_url),
            footer=self.footer(task, number, total),
        )
        if failed:
            card.add_field(
                _fixed(self.t("label.reason"), FIELD_NAME_LIMIT),
                self.reason(clip.error_message, "text.song_failed"),
                inline=False,
            )
        if clip.tags:
            card.add_field(
                _fixed(self.t("label.tags"), FIELD_NAME_LIMIT),
                _relay(
                    escape(truncate(clip.tags, FIELD_VALUE_LIMIT)),
                    FIELD_VALUE_LIMIT,
                    _RANK_TAGS,
                    _DETAIL_FLOOR,
                ),
            )
        if clip.duration is not None:
            card.add_field(
                _fixed(self.t("label.duration"), FIELD_NAME_LIMIT),
                _fixed(_duration(clip.duration), FIELD_VALUE_LIMIT),
            )
        if clip.model:
            card.add_field(
                _fixed(self.t("label.model"), FIELD_NAME_LIMIT),
                _relay(
                    escape(truncate(clip.model, FIELD_VALUE_LIMIT)),
                    FIELD_VALUE_LIMIT,
                    _RANK_DETAIL,
                    _DETAIL_FLOOR,
                ),
            )
        lyrics = (clip.lyrics or "").strip()
        if lyrics and lyrics not in seen_lyrics:
            seen_lyrics.add(lyrics)
            card.body = self.lyrics_body(lyrics)
        return card

    def lyrics_body(self, lyrics: str) -> _Text:
        label = f"**{self.t('label.lyrics')}**\n"
        text = label + escape(truncate(lyrics, DESCRIPTION_LIMIT))
        return _relay(text, DESCRIPTION_LIMIT, _RANK_LYRICS, 0)

    def lyrics_card(self, task: Task, lyrics: Lyrics, head: list[str]) -> _Card:
        card = _Card(
            colour=_GREEN,
            title=self.title(lyrics.title, "title.lyrics"),
            head=head,
            footer=self.footer(task),
        )
        if lyrics.text and lyrics.text.strip():
            text = escape(truncate(lyrics.text.strip(), DESCRIPTION_LIMIT))
            card.body = _relay(text, DESCRIPTION_LIMIT, _RANK_LYRICS, 0)
        else:
            card.head = [*head, "", self.t("text.no_lyrics")]
        if lyrics.tags:
            card.add_field(
                _fixed(self.t("label.tags"), FIELD_NAME_LIMIT),
                _relay(
                    escape(truncate(lyrics.tags, FIELD_VALUE_LIMIT)),
                    FIELD_VALUE_LIMIT,
                    _RANK_TAGS,
                    _DETAIL_FLOOR,
                ),
            )
        if lyrics.error_message:
            card.add_field(
                _fixed(self.t("label.reason"), FIELD_NAME_LIMIT),
                _relay(
                    escape(truncate(lyrics.error_message, FIELD_VALUE_LIMIT)),
                    FIELD_VALUE_LIMIT,
                    _RANK_DETAIL,
                    _DETAIL_FLOOR,
                ),
                inline=False,
            )
        return card

    # - failed -

    def failed(self, task: Task, head: list[str]) -> tuple[list[_Card], tuple[LinkButton, ...]]:
        title = next((clip.title for clip in task.clips if clip.title), None)
        if title is None and task.lyrics is not None:
            title = task.lyrics.title
        card = _Card(
            colour=_RED,
            title=self.title(title, "title.task"),
            head=[*head, self.line("label.status", self.status_word(task)), *self.time_lines(task)],
            thumbnail=_first_cover(task),
            footer=self.footer(task),
        )
        card.add_field(
            _fixed(self.t("label.reason"), FIELD_NAME_LIMIT),
            self.failure_reason(task),
            inline=False,
        )
        return [card], ()

    def failure_reason(self, task: Task) -> _Text:
        reason = task.fail_reason
        if reason is None:
            reason = next((clip.error_message for clip in task.clips if clip.error_message), None)
        if reason is None and task.lyrics is not None:
            reason = task.lyrics.error_message
        return self.reason(reason, "text.no_reason")

    def reason(self, reason: str | None, fallback_key: str) -> _Text:
        if reason is None:
            return _fixed(self.t(fallback_key), FIELD_VALUE_LIMIT)
        return _relay(
            escape(truncate(reason, FIELD_VALUE_LIMIT)),
            FIELD_VALUE_LIMIT,
            _RANK_DETAIL,
            _DETAIL_FLOOR,
        )


def _finish(cards: list[_Card], buttons: tuple[LinkButton, ...]) -> RenderedMessage:
    for card in cards:
        card.fit_body()
    embeds = tuple(card.to_embed() for card in _fit_total(cards[:MAX_EMBEDS]))
    canonical = json.dumps(
        {
            "embeds": [embed.to_dict() for embed in embeds],
            "buttons": [[button.label, button.url, button.row] for button in buttons],
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    fingerprint = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return RenderedMessage(embeds=embeds, buttons=buttons, fingerprint=fingerprint)


def render_task(
    task: Task,
    *,
    locale: str,
    notice: Notice | None = None,
    watch_timeout_minutes: int | None = None,
    catalog: Catalog | None = None,
) -> RenderedMessage:
    """The status message for `task` as seen by someone using `locale`."""
    renderer = _Renderer(catalog or default_catalog(), locale)
    head = renderer.notice_line(notice, watch_timeout_minutes)
    if task.status is TaskStatus.SUCCESS:
        cards, buttons = renderer.done(task, head)
    elif task.status is TaskStatus.FAILURE:
        cards, buttons = renderer.failed(task, head)
    else:
        cards, buttons = renderer.running(task, head)
    return _finish(cards, buttons)


def render_error(
    message_key: str, *, locale: str, catalog: Catalog | None = None
) -> RenderedMessage:
    """A short red message for the requester; an unknown key shows the generic error."""
    renderer = _Renderer(catalog or default_catalog(), locale)
    try:
        text = renderer.t(message_key)
    except KeyError:
        text = renderer.t("error.internal")
    card = _Card(
        colour=_RED,
        title=_fixed(renderer.t("title.error"), TITLE_LIMIT),
        head=[truncate(text, DESCRIPTION_LIMIT)],
    )
    return _finish([card], ())
