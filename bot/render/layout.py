"""What a task (running, done, failed, lyrics) or an error looks like as a status message."""

from __future__ import annotations

import functools
from enum import StrEnum
from urllib.parse import urlsplit

import discord
from discord.utils import format_dt

from bot.i18n import Catalog, default_catalog
from bot.render.budget import (
    BUTTON_LABEL_LIMIT,
    BUTTON_URL_LIMIT,
    DESCRIPTION_LIMIT,
    DETAIL_FLOOR,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MAX_EMBEDS,
    RANK_DETAIL,
    RANK_LYRICS,
    RANK_TAGS,
    RANK_TITLE,
    TITLE_FLOOR,
    TITLE_LIMIT,
    Card,
    LinkButton,
    Text,
    fixed_text,
    lay_out,
    relay_text,
    trimmable_text,
)
from bot.render.message import RenderedMessage, finish
from bot.safety import escape, plain, safe_url, truncate
from bot.suno.models import Clip, ClipState, Lyrics, Task, TaskStatus

# Clips listed as fields on the running card; the rest are summarized in one line.
_MAX_CLIP_FIELDS = 10
# A raw status nobody recognizes is shown as-is, but it must not swamp the card.
_RAW_STATUS_LIMIT = 64
_TAGS_LIMIT = 512
_PROGRESS_CELLS = 10

_DONE = discord.Colour.brand_green()
_FAILED = discord.Colour.brand_red()
_STATUS_COLOURS: dict[TaskStatus, discord.Colour] = {
    TaskStatus.NOT_START: discord.Colour.lighter_grey(),
    TaskStatus.SUBMITTED: discord.Colour.lighter_grey(),
    TaskStatus.QUEUED: discord.Colour.blurple(),
    TaskStatus.IN_PROGRESS: discord.Colour.gold(),
    TaskStatus.LYRICS_READY: discord.Colour.gold(),
    TaskStatus.FIRST_CLIPS_READY: discord.Colour.gold(),
    TaskStatus.SUCCESS: _DONE,
    TaskStatus.FAILURE: _FAILED,
    TaskStatus.UNKNOWN: discord.Colour.lighter_grey(),
}

STAGES = (
    TaskStatus.NOT_START,
    TaskStatus.SUBMITTED,
    TaskStatus.QUEUED,
    TaskStatus.IN_PROGRESS,
    TaskStatus.SUCCESS,
)
# Where each status stands on the stage bar: a partial result is still generating.
_STAGE_OF: dict[TaskStatus, int] = {stage: index for index, stage in enumerate(STAGES)} | {
    TaskStatus.LYRICS_READY: STAGES.index(TaskStatus.IN_PROGRESS),
    TaskStatus.FIRST_CLIPS_READY: STAGES.index(TaskStatus.IN_PROGRESS),
}
# Result links are labelled by the file they point at.
_RESULT_BUTTONS = ((".mp3", "button.mp3"), (".mp4", "button.mp4"))

_Layout = tuple[list[Card], tuple[LinkButton, ...]]


class Notice(StrEnum):
    """A line that tells the viewer why the message stopped, or may stop, changing."""

    RELAY_RETRYING = "relay_retrying"
    AUTO_REFRESH_STOPPED = "auto_refresh_stopped"
    LIVE_UPDATES_ENDED = "live_updates_ended"
    UPDATES_STOPPED = "updates_stopped"


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


def _song_title(task: Task) -> str | None:
    """The first clip's title, else the lyrics' title: what the whole task is called."""
    title = next((clip.title for clip in task.clips if clip.title), None)
    if title is None and task.lyrics is not None:
        return task.lyrics.title
    return title


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

    def buttons(self, number: int, *links: tuple[str, str | None]) -> list[tuple[str, str]]:
        """The clip's link buttons that can be shown, as (label, url)."""
        found = (self.button(key, number, url) for key, url in links)
        return [button for button in found if button is not None]

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
        # Languages write the colon differently: French spaces it, Chinese uses a wide one.
        return self.t("format.line", label=self.t(label_key), value=value)

    def time_lines(self, task: Task) -> list[str]:
        lines = []
        if task.submitted_at is not None:
            lines.append(self.line("label.submitted", format_dt(task.submitted_at, "R")))
        if task.started_at is not None:
            lines.append(self.line("label.started", format_dt(task.started_at, "f")))
        if task.is_terminal and task.finished_at is not None:
            lines.append(self.line("label.finished", format_dt(task.finished_at, "f")))
        return lines

    def progress_line(self, task: Task) -> str | None:
        progress = task.progress
        if progress is not None and 1 <= progress <= 99:
            filled = int(progress // _PROGRESS_CELLS)
            bar = "▰" * filled + "▱" * (_PROGRESS_CELLS - filled)
            percent = self.t("format.percent", percent=int(progress))
            return self.line("label.progress", f"{bar} {percent}")
        current = _STAGE_OF.get(task.status)
        if current is None:
            return None
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

    def footer(self, task: Task, number: int | None = None, total: int = 0) -> Text | None:
        return self.id_footer(task.task_id, number, total)

    def id_footer(self, task_id: str, number: int | None = None, total: int = 0) -> Text | None:
        if not task_id:
            return None
        task_id = plain(truncate(task_id, FOOTER_LIMIT // 2))
        text = (
            self.t("footer.task", task_id=task_id)
            if number is None
            else self.t("footer.song", task_id=task_id, number=number, total=total)
        )
        return trimmable_text(text, FOOTER_LIMIT, RANK_DETAIL, DETAIL_FLOOR)

    def title(self, text: str | None, fallback_key: str, **params: object) -> Text:
        if text is None:
            return fixed_text(self.t(fallback_key, **params), TITLE_LIMIT)
        return relay_text(text, TITLE_LIMIT, RANK_TITLE, TITLE_FLOOR)

    def clip_word(self, clip: Clip) -> str:
        if clip.state is ClipState.UNKNOWN and clip.raw_state:
            return escape(truncate(clip.raw_state, _RAW_STATUS_LIMIT))
        return self.t(f"clip.{clip.state.value}")

    def add_tags(self, card: Card, tags: str | None) -> None:
        if tags:
            card.add_field(
                fixed_text(self.t("label.tags"), FIELD_NAME_LIMIT),
                relay_text(tags, FIELD_VALUE_LIMIT, RANK_TAGS, DETAIL_FLOOR),
            )

    # - running -

    def running(self, task: Task, head: list[str]) -> _Layout:
        card = Card(
            colour=_STATUS_COLOURS[task.status],
            title=self.title(_song_title(task), "title.task"),
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
            if clip.state is not ClipState.ERROR:
                groups.append(
                    self.buttons(
                        number, ("button.stream", clip.stream_url), ("button.mp3", clip.audio_url)
                    )
                )
        hidden = len(task.clips) - len(shown)
        if hidden > 0:
            card.head.append(self.t("label.more_songs", count=hidden))
        return [card], lay_out(groups)

    def clip_summary(self, clip: Clip, number: int) -> tuple[Text, Text]:
        label = self.t("label.song", number=number)
        if clip.title:
            name = trimmable_text(
                f"{label} · {escape(truncate(clip.title, FIELD_NAME_LIMIT))}",
                FIELD_NAME_LIMIT,
                RANK_TITLE,
                TITLE_FLOOR,
            )
        else:
            name = fixed_text(label, FIELD_NAME_LIMIT)
        first = self.clip_word(clip)
        if clip.duration is not None:
            first += f" · {_duration(clip.duration)}"
        lines = [first]
        if clip.state is ClipState.ERROR and clip.error_message:
            lines.append(escape(truncate(clip.error_message, FIELD_VALUE_LIMIT)))
        if clip.tags:
            lines.append(escape(truncate(clip.tags, _TAGS_LIMIT)))
        value = trimmable_text("\n".join(lines), FIELD_VALUE_LIMIT, RANK_TAGS, len(first) + 8)
        return name, value

    # - done -

    def done(self, task: Task, head: list[str]) -> _Layout:
        status = [self.line("label.status", self.status_word(task)), *self.time_lines(task)]
        if not task.clips:
            return self.done_without_clips(task, [*head, *status])

        cards: list[Card] = []
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
            else:
                groups.append(
                    self.buttons(
                        number, ("button.mp3", clip.audio_url), ("button.mp4", clip.video_url)
                    )
                )
        return cards, lay_out(groups)

    def done_without_clips(self, task: Task, head: list[str]) -> _Layout:
        """A finished lyrics task, a task with only a result link, or one with nothing."""
        if task.lyrics is not None:
            return [self.lyrics_card(task, task.lyrics, head)], ()
        card = Card(
            colour=_DONE,
            title=fixed_text(self.t("title.task"), TITLE_LIMIT),
            url=_embed_url(task.result_url),
            head=head,
            footer=self.footer(task),
        )
        if card.url is None:
            card.head = [*head, "", self.t("text.no_songs")]
            return [card], ()
        path = urlsplit(card.url).path.lower()
        key = next((key for end, key in _RESULT_BUTTONS if path.endswith(end)), "button.result")
        return [card], lay_out([self.buttons(1, (key, card.url))])

    def clip_card(
        self, task: Task, clip: Clip, number: int, total: int, seen_lyrics: set[str]
    ) -> Card:
        failed = clip.state is ClipState.ERROR
        card = Card(
            colour=_FAILED if failed else _DONE,
            title=self.title(clip.title, "label.song", number=number),
            url=None if failed else _embed_url(clip.audio_url),
            image=_embed_url(clip.cover_url),
            footer=self.footer(task, number, total),
        )
        if failed:
            card.add_field(
                fixed_text(self.t("label.reason"), FIELD_NAME_LIMIT),
                self.reason(clip.error_message, "text.song_failed"),
                inline=False,
            )
        self.add_tags(card, clip.tags)
        if clip.duration is not None:
            card.add_field(
                fixed_text(self.t("label.duration"), FIELD_NAME_LIMIT),
                fixed_text(_duration(clip.duration), FIELD_VALUE_LIMIT),
            )
        if clip.model:
            card.add_field(
                fixed_text(self.t("label.model"), FIELD_NAME_LIMIT),
                relay_text(clip.model, FIELD_VALUE_LIMIT, RANK_DETAIL, DETAIL_FLOOR),
            )
        lyrics = (clip.lyrics or "").strip()
        if lyrics and lyrics not in seen_lyrics:
            seen_lyrics.add(lyrics)
            card.body = self.lyrics_body(lyrics)
        return card

    def lyrics_body(self, lyrics: str) -> Text:
        label = f"**{self.t('label.lyrics')}**\n"
        text = label + escape(truncate(lyrics, DESCRIPTION_LIMIT))
        return trimmable_text(text, DESCRIPTION_LIMIT, RANK_LYRICS, 0)

    def lyrics_card(self, task: Task, lyrics: Lyrics, head: list[str]) -> Card:
        card = Card(
            colour=_DONE,
            title=self.title(lyrics.title, "title.lyrics"),
            head=head,
            footer=self.footer(task),
        )
        if lyrics.text and lyrics.text.strip():
            card.body = relay_text(lyrics.text.strip(), DESCRIPTION_LIMIT, RANK_LYRICS, 0)
        else:
            card.head = [*head, "", self.t("text.no_lyrics")]
        self.add_tags(card, lyrics.tags)
        if lyrics.error_message:
            card.add_field(
                fixed_text(self.t("label.reason"), FIELD_NAME_LIMIT),
                self.reason(lyrics.error_message, "text.no_reason"),
                inline=False,
            )
        return card

    # - failed -

    def failed(self, task: Task, head: list[str]) -> _Layout:
        card = Card(
            colour=_FAILED,
            title=self.title(_song_title(task), "title.task"),
            head=[*head, self.line("label.status", self.status_word(task)), *self.time_lines(task)],
            thumbnail=_first_cover(task),
            footer=self.footer(task),
        )
        card.add_field(
            fixed_text(self.t("label.reason"), FIELD_NAME_LIMIT),
            self.failure_reason(task),
            inline=False,
        )
        return [card], ()

    def failure_reason(self, task: Task) -> Text:
        reason = task.fail_reason
        if reason is None:
            reason = next((clip.error_message for clip in task.clips if clip.error_message), None)
        if reason is None and task.lyrics is not None:
            reason = task.lyrics.error_message
        if reason is None:
            reason = task.failure_name
        return self.reason(reason, "text.no_reason")

    def reason(self, reason: str | None, fallback_key: str) -> Text:
        if reason is None:
            return fixed_text(self.t(fallback_key), FIELD_VALUE_LIMIT)
        return relay_text(reason, FIELD_VALUE_LIMIT, RANK_DETAIL, DETAIL_FLOOR)


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
    return finish(cards, buttons)


def render_unanswered(
    task_id: str,
    *,
    locale: str,
    notice: Notice = Notice.RELAY_RETRYING,
    watch_timeout_minutes: int | None = None,
    catalog: Catalog | None = None,
) -> RenderedMessage:
    """The message for a task the relay has not answered about yet: its id, and that the bot
    keeps asking (or, with another notice, that it stopped without an answer)."""
    renderer = _Renderer(catalog or default_catalog(), locale)
    waiting = notice is Notice.RELAY_RETRYING
    status = renderer.t("status.waiting_for_relay" if waiting else "status.relay_never_answered")
    card = Card(
        colour=discord.Colour.lighter_grey(),
        title=fixed_text(renderer.t("title.task"), TITLE_LIMIT),
        head=[
            *renderer.notice_line(notice, watch_timeout_minutes),
            renderer.line("label.status", status),
        ],
        footer=renderer.id_footer(task_id),
    )
    return finish([card], ())


def render_error(
    message_key: str, *, locale: str, catalog: Catalog | None = None
) -> RenderedMessage:
    """A short red message for the requester; an unknown key shows the generic error."""
    renderer = _Renderer(catalog or default_catalog(), locale)
    try:
        text = renderer.t(message_key)
    except KeyError:
        text = renderer.t("error.internal")
    card = Card(
        colour=_FAILED,
        title=fixed_text(renderer.t("title.error"), TITLE_LIMIT),
        head=[truncate(text, DESCRIPTION_LIMIT)],
    )
    return finish([card], ())
