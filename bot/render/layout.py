"""What a task (running, done, failed, lyrics) or an error looks like as a Components V2 card."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from enum import StrEnum
from urllib.parse import urlsplit

import discord
from discord.utils import format_dt

from bot.i18n import Catalog, default_catalog
from bot.render.budget import (
    BUTTON_LABEL_LIMIT,
    BUTTON_URL_LIMIT,
    BUTTONS_PER_ROW,
    CONTROL_COMPONENTS,
    DETAIL_FLOOR,
    DETAIL_LIMIT,
    GALLERY_ITEMS_LIMIT,
    MAX_COMPONENTS,
    RANK_DETAIL,
    RANK_LYRICS,
    RANK_TAGS,
    RANK_TITLE,
    SELECT_OPTIONS_LIMIT,
    SELECT_PLACEHOLDER_LIMIT,
    SELECT_TEXT_LIMIT,
    TEXT_LIMIT,
    TITLE_FLOOR,
    TITLE_LIMIT,
    Text,
    fixed_text,
    relay_text,
    trimmable_text,
)
from bot.render.clips import Entry, ordered
from bot.render.components import (
    AudioFile,
    Block,
    Divider,
    Gallery,
    LinkRow,
    Picker,
    PickerOption,
    Section,
    TextBlock,
    cost,
)
from bot.render.message import RenderedMessage, finish
from bot.render.picker import picker_custom_id
from bot.safety import escape, safe_url, truncate
from bot.suno.models import Clip, ClipState, Lyrics, Task, TaskStatus

# Clips shown on the card itself; the rest are one pick away.
MAX_CARD_CLIPS = 12
# Up to this many clips each get a block of their own with its cover; more are listed.
_FULL_BLOCK_CLIPS = 3
# Lines remembered per language (states, stage bars, button labels for each song number).
_MAX_REMEMBERED = 1024
# A raw status nobody recognizes is shown as-is, but it must not swamp the card.
_RAW_STATUS_LIMIT = 64
_TAGS_LIMIT = 512
_MODEL_LIMIT = 64
_LYRICS_EXCERPT = 400
_LYRICS_EXCERPT_LINES = 6
_PROGRESS_CELLS = 10
_DIVIDER = Divider()

_DONE = discord.Colour.brand_green()
_FAILED = discord.Colour.brand_red()
_WAITING = discord.Colour.lighter_grey()
_STATUS_COLOURS: dict[TaskStatus, discord.Colour] = {
    TaskStatus.NOT_START: _WAITING,
    TaskStatus.SUBMITTED: _WAITING,
    TaskStatus.QUEUED: discord.Colour.blurple(),
    TaskStatus.IN_PROGRESS: discord.Colour.gold(),
    TaskStatus.LYRICS_READY: discord.Colour.gold(),
    TaskStatus.FIRST_CLIPS_READY: discord.Colour.gold(),
    TaskStatus.SUCCESS: _DONE,
    TaskStatus.FAILURE: _FAILED,
    TaskStatus.UNKNOWN: _WAITING,
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


class Notice(StrEnum):
    """A line that tells the viewer why the message stopped, or may stop, changing."""

    RELAY_RETRYING = "relay_retrying"
    AUTO_REFRESH_STOPPED = "auto_refresh_stopped"
    LIVE_UPDATES_ENDED = "live_updates_ended"
    UPDATES_STOPPED = "updates_stopped"


@functools.lru_cache(maxsize=1024)
def _duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


@functools.lru_cache(maxsize=2048)
def _media_url(url: str | None) -> str | None:
    return safe_url(url)


def _button_url(url: str | None) -> str | None:
    url = _media_url(url)
    if url is None or len(url) > BUTTON_URL_LIMIT:
        return None
    return url


@functools.lru_cache(maxsize=256)
def _model_name(model: str) -> str:
    """A model's name as the details line shows it (relays use a handful of names)."""
    return escape(truncate(_one_line(model), _MODEL_LIMIT))


def _one_line(text: str) -> str:
    """Relay text for a single line: a newline in a title must not start a heading."""
    return " ".join(text.split())


def _song_title(task: Task) -> str | None:
    """The first clip's title, else the lyrics' title: what the whole task is called."""
    title = next((clip.title for clip in task.clips if clip.title), None)
    if title is None and task.lyrics is not None:
        return task.lyrics.title
    return title


def _rows(buttons: Sequence[tuple[str, str]]) -> list[Block]:
    if len(buttons) <= BUTTONS_PER_ROW:
        return [LinkRow(tuple(buttons))] if buttons else []
    return [
        LinkRow(tuple(buttons[start : start + BUTTONS_PER_ROW]))
        for start in range(0, len(buttons), BUTTONS_PER_ROW)
    ]


class _Renderer:
    """Cards in one language. The words and lines that depend only on the language (a status,
    the stage bar, button labels) are made once and remembered."""

    def __init__(self, catalog: Catalog, locale: str) -> None:
        self.catalog = catalog
        self.locale = locale
        self._words: dict[str, str] = {}
        self._lines: dict[tuple[str, int | str], str | None] = {}

    def t(self, key: str, **params: object) -> str:
        if params:
            return self.word(key).format(**params)
        return self.word(key)

    def word(self, key: str) -> str:
        """The catalog's text for `key` as it stands (a template, where it takes values)."""
        text = self._words.get(key)
        if text is None:
            text = self._words[key] = self.catalog.text(self.locale, key)
        return text

    def remembered(self, kind: str, value: int | str) -> str | None:
        """The line of `kind` for `value`, made once (numbers and states are few)."""
        try:
            return self._lines[kind, value]
        except KeyError:
            line = self._make(kind, value)
            if len(self._lines) < _MAX_REMEMBERED:
                self._lines[kind, value] = line
            return line

    def _make(self, kind: str, value: int | str) -> str | None:
        if kind == "status":
            return self.line("label.status", self.t(f"status.{value}"))
        if kind == "stages":
            return self.stage_line(int(value))
        # A button label: "button.mp3" and so on, for the song numbered `value`.
        label = truncate(self.t(kind, number=value), BUTTON_LABEL_LIMIT)
        return label if label.strip() else None

    def button(self, key: str, url: str | None, number: int) -> tuple[str, str] | None:
        checked = _button_url(url)
        if checked is None:
            return None
        label = self.remembered(key, number)
        return None if label is None else (label, checked)

    # - shared pieces -

    def notice_lines(self, notice: Notice | None, minutes: int | None) -> list[Text]:
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
        return [fixed_text(f"⚠️ **{text}**", DETAIL_LIMIT)]

    def status_line(self, task: Task) -> str:
        if task.status is TaskStatus.UNKNOWN and task.raw_status:
            raw = escape(truncate(task.raw_status, _RAW_STATUS_LIMIT))
            return self.line("label.status", raw)
        return self.remembered("status", task.status.value) or ""

    def line(self, label_key: str, value: str) -> str:
        # Languages write the colon differently: French spaces it, Chinese uses a wide one.
        return self.word("format.line").format(label=self.word(label_key), value=value)

    def time_lines(self, task: Task) -> list[str]:
        lines = []
        if task.submitted_at is not None:
            lines.append(self.line("label.submitted", format_dt(task.submitted_at, "R")))
        if task.started_at is not None:
            lines.append(self.line("label.started", format_dt(task.started_at, "f")))
        if task.finished_at is not None and task.is_terminal:
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
        return self.remembered("stages", current)

    def stage_line(self, current: int) -> str:
        """The stage bar with the stage at index `current` under way."""
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

    def heading(self, text: str | None, fallback_key: str) -> Text:
        if text is None or not text.strip():
            return fixed_text("### " + self.t(fallback_key), TITLE_LIMIT)
        title = relay_text(text, TITLE_LIMIT, RANK_TITLE, TITLE_FLOOR, one_line=True)
        title.text = "### " + title.text
        return title

    def id_line(self, task_id: str) -> list[Text]:
        if not task_id:
            return []
        text = "-# " + self.t("footer.task", task_id=escape(truncate(task_id, 128)))
        return [trimmable_text(text, DETAIL_LIMIT, RANK_DETAIL, DETAIL_FLOOR)]

    def header(
        self, title: Text, lines: Sequence[str], task_id: str, *, head: Sequence[Text] = ()
    ) -> TextBlock:
        pieces = [*head, title]
        pieces += [fixed_text(line, DETAIL_LIMIT) for line in lines]
        pieces += self.id_line(task_id)
        return TextBlock(pieces)

    def clip_word(self, clip: Clip) -> str:
        if clip.state is ClipState.UNKNOWN and clip.raw_state:
            return escape(truncate(clip.raw_state, _RAW_STATUS_LIMIT))
        word = self.t(f"clip.{clip.state.value}")
        return f"✓ {word}" if clip.state is ClipState.COMPLETE else word

    def tags(self, tags: str | None) -> list[Text]:
        if not tags or not tags.strip():
            return []
        text = relay_text(tags, _TAGS_LIMIT, RANK_TAGS, DETAIL_FLOOR, one_line=True)
        text.text = "-# " + text.text
        return [text]

    def reason(self, reason: str | None, fallback_key: str) -> Text:
        label = self.t("label.reason")
        if reason is None:
            return fixed_text(self.t("format.line", label=label, value=self.t(fallback_key)), 512)
        text = relay_text(reason, DETAIL_LIMIT, RANK_DETAIL, DETAIL_FLOOR)
        text.text = self.t("format.line", label=label, value=text.text)
        return text

    # - one clip -

    def clip_title(self, entry: Entry) -> Text:
        clip = entry.clip
        name = entry.part if entry.is_stem else clip.title
        if not name or not name.strip():
            return fixed_text(
                f"`{entry.number}` **{self.t('label.song', number=entry.number)}**", 128
            )
        text = relay_text(name, TITLE_LIMIT, RANK_TITLE, TITLE_FLOOR, one_line=True)
        text.text = f"`{entry.number}` **{text.text}**"
        return text

    def clip_details(self, clip: Clip, *, running: bool) -> Text:
        parts = []
        if running or clip.state is ClipState.ERROR:
            parts.append(self.clip_word(clip))
        if clip.duration is not None:
            parts.append(_duration(clip.duration))
        if clip.model:
            parts.append(_model_name(clip.model))
        return trimmable_text(" · ".join(parts), DETAIL_LIMIT, RANK_DETAIL, DETAIL_FLOOR)

    def clip_pieces(self, entry: Entry, *, running: bool, lyrics: bool) -> list[Text]:
        """The clip's title, its details line, and what else is known of it."""
        pieces = [self.clip_title(entry)]
        details = self.clip_details(entry.clip, running=running)
        if details.text:
            pieces.append(details)
        return [*pieces, *self.clip_extras(entry, lyrics=lyrics)]

    def clip_extras(self, entry: Entry, *, lyrics: bool) -> list[Text]:
        """Below a clip's title and details: why it failed, its tags, a lyrics excerpt."""
        clip = entry.clip
        pieces: list[Text] = []
        if clip.state is ClipState.ERROR:
            pieces.append(self.reason(clip.error_message, "text.song_failed"))
        if not entry.is_stem:
            pieces.extend(self.tags(clip.tags))
        if lyrics and clip.lyrics and not entry.is_stem:
            pieces.extend(self.excerpt(clip.lyrics))
        return [piece for piece in pieces if piece.text]

    def excerpt(self, lyrics: str) -> list[Text]:
        """The first lines of a song's lyrics, under a label."""
        excerpt = "\n".join(lyrics.strip().splitlines()[:_LYRICS_EXCERPT_LINES])
        if not excerpt:
            return []
        body = relay_text(excerpt, _LYRICS_EXCERPT, RANK_LYRICS, 0)
        body.text = f"**{self.t('label.lyrics')}**\n{body.text}"
        return [body]

    def clip_buttons(self, entry: Entry, *, running: bool) -> list[tuple[str, str]]:
        clip = entry.clip
        if clip.state is ClipState.ERROR:
            return []
        number = entry.number
        if running:
            links = [("button.stream", clip.stream_url)]
            if clip.state is ClipState.COMPLETE:
                links.append(("button.mp3", clip.audio_url))
        else:
            links = [("button.mp3", clip.audio_url), ("button.mp4", clip.video_url)]
        found = []
        for key, url in links:
            button = self.button(key, url, number)
            if button is not None:
                found.append(button)
        return found

    # - the clips of a card -

    def full_blocks(
        self, entries: Sequence[Entry], *, running: bool, audio: Mapping[str, str]
    ) -> list[Block]:
        """Each clip in a block of its own: its text beside its cover, its links, its audio."""
        blocks: list[Block] = []
        seen_lyrics: set[str] = set()
        for entry in entries:
            lyrics = (entry.clip.lyrics or "").strip()
            pieces = self.clip_pieces(entry, running=running, lyrics=lyrics not in seen_lyrics)
            seen_lyrics.add(lyrics)
            cover = _media_url(entry.clip.cover_url)
            text = TextBlock(pieces)
            blocks += [_DIVIDER, Section([text], cover) if cover else text]
            blocks += _rows(self.clip_buttons(entry, running=running))
            if entry.clip.id in audio:
                blocks.append(AudioFile(audio[entry.clip.id]))
        return blocks

    def compact_text(self, entries: Sequence[Entry], *, running: bool) -> TextBlock:
        """The clips as one list; stems under a line naming their song."""
        pieces: list[Text] = []
        group: str | None = None
        for entry in entries:
            if entry.is_stem and entry.song != group and entry.song:
                song = relay_text(entry.song, TITLE_LIMIT, RANK_TITLE, TITLE_FLOOR, one_line=True)
                song.text = f"**{self.t('label.stems', title=song.text)}**"
                pieces.append(song)
            group = entry.song if entry.is_stem else None
            title = self.clip_title(entry)
            details = self.clip_details(entry.clip, running=running)
            if details.text:
                title.text = f"{title.text} · {details.text}"
            pieces += [title, *self.clip_extras(entry, lyrics=False)]
        return TextBlock(pieces)

    def compact_blocks(self, entries: Sequence[Entry], *, running: bool) -> list[Block]:
        buttons = [b for entry in entries for b in self.clip_buttons(entry, running=running)]
        return [_DIVIDER, self.compact_text(entries, running=running), *_rows(buttons)]

    def clip_blocks(
        self,
        task: Task,
        entries: list[Entry],
        *,
        room: int,
        running: bool,
        audio: Mapping[str, str],
    ) -> list[Block]:
        """The clips within `room` components: in full when few, else listed; beyond what fits
        (never more than twelve) a picker opens the rest."""
        if len(entries) <= _FULL_BLOCK_CLIPS:
            blocks = self.full_blocks(entries, running=running, audio=audio)
            if cost(blocks) <= room:
                return blocks
        for count in range(min(len(entries), MAX_CARD_CLIPS), 0, -1):
            blocks = self.compact_blocks(entries[:count], running=running)
            if count < len(entries):
                blocks.append(self.picker(task, entries, count))
            if cost(blocks) <= room:
                return self.extras(blocks, entries[:count], room, audio)
        return [self.picker(task, entries, 0)]

    def extras(
        self, blocks: list[Block], shown: Sequence[Entry], room: int, audio: Mapping[str, str]
    ) -> list[Block]:
        """What a listed card adds when there is room: the covers, then the attached audio."""
        covers = list(dict.fromkeys(u for e in shown if (u := _media_url(e.clip.cover_url))))
        if len(covers) > 1 and cost(blocks) < room:
            blocks.insert(2, Gallery(tuple(covers[:GALLERY_ITEMS_LIMIT])))
        for entry in shown:
            if entry.clip.id in audio and cost(blocks) < room:
                blocks.append(AudioFile(audio[entry.clip.id]))
        return blocks

    def picker(self, task: Task, entries: list[Entry], shown: int) -> Picker:
        """The select menu for the clips after the first `shown`: one option per clip, or per
        page of twelve when there are more than a menu holds."""
        rest = entries[shown:]
        if len(rest) <= SELECT_OPTIONS_LIMIT:
            options = [self.clip_option(entry) for entry in rest]
            most = min(len(options), MAX_CARD_CLIPS)
        else:
            starts = range(shown, len(entries), MAX_CARD_CLIPS)
            options = [self.page_option(start, len(entries)) for start in starts]
            options, most = options[:SELECT_OPTIONS_LIMIT], 1
        placeholder = truncate(
            self.t("picker.placeholder", count=len(rest)), SELECT_PLACEHOLDER_LIMIT
        )
        return Picker(picker_custom_id(task.task_id), placeholder, tuple(options), most)

    def clip_option(self, entry: Entry) -> PickerOption:
        clip = entry.clip
        fallback = self.t("label.song", number=entry.number)
        name = _one_line(entry.part or clip.title or "") or fallback
        label = truncate(f"{entry.number} · {name}", SELECT_TEXT_LIMIT)
        details = [_one_line(entry.song)] if entry.is_stem and entry.song else []
        if clip.duration is not None:
            details.append(_duration(clip.duration))
        description = truncate(" · ".join(details), SELECT_TEXT_LIMIT) or None
        index = entry.number - 1
        return PickerOption(label, f"{index}-{index}", description)

    def page_option(self, start: int, total: int) -> PickerOption:
        last = min(start + MAX_CARD_CLIPS, total)
        label = self.t("picker.page", first=start + 1, last=last)
        return PickerOption(truncate(label, SELECT_TEXT_LIMIT), f"{start}-{last - 1}")

    # - whole cards -

    def room(self, header: Block) -> int:
        return MAX_COMPONENTS - 1 - header.cost() - CONTROL_COMPONENTS

    def with_clips(
        self,
        task: Task,
        header: TextBlock,
        entries: list[Entry],
        *,
        running: bool,
        audio: Mapping[str, str],
    ) -> list[Block]:
        """The header (beside the first cover when the clips are listed) and the clips."""
        if entries and len(entries) <= _FULL_BLOCK_CLIPS:
            full = self.full_blocks(entries, running=running, audio=audio)
            if cost(full) <= self.room(header):
                return [header, *full]
        cover = next((u for e in entries if (u := _media_url(e.clip.cover_url))), None)
        top: Block = Section([header], cover) if cover else header
        clips = self.clip_blocks(task, entries, room=self.room(top), running=running, audio=audio)
        return [top, *clips]

    def running(self, task: Task, head: list[Text], audio: Mapping[str, str]) -> list[Block]:
        lines = [self.status_line(task)]
        progress = self.progress_line(task)
        if progress is not None:
            lines.append(progress)
        lines += self.time_lines(task)
        header = self.header(
            self.heading(_song_title(task), "title.task"), lines, task.task_id, head=head
        )
        if not task.clips:
            return [header]
        entries = ordered(task.clips)
        return self.with_clips(task, header, entries, running=True, audio=audio)

    def done(self, task: Task, head: list[Text], audio: Mapping[str, str]) -> list[Block]:
        lines = [self.status_line(task), *self.time_lines(task)]
        if not task.clips:
            return self.done_without_clips(task, head, lines)
        header = self.header(
            self.heading(_song_title(task), "title.task"), lines, task.task_id, head=head
        )
        return self.with_clips(task, header, ordered(task.clips), running=False, audio=audio)

    def done_without_clips(self, task: Task, head: list[Text], lines: list[str]) -> list[Block]:
        """A finished lyrics task, a task with only a result link, or one with nothing."""
        if task.lyrics is not None:
            return self.lyrics(task, task.lyrics, head, lines)
        header = self.header(self.heading(None, "title.task"), lines, task.task_id, head=head)
        url = _button_url(task.result_url)
        if url is None:
            return [header, TextBlock([fixed_text(self.t("text.no_songs"), 512)])]
        path = urlsplit(url).path.lower()
        key = next((key for end, key in _RESULT_BUTTONS if path.endswith(end)), "button.result")
        button = self.button(key, url, number=1)
        return [header, *_rows([button] if button else [])]

    def lyrics(self, task: Task, lyrics: Lyrics, head: list[Text], lines: list[str]) -> list[Block]:
        header = self.header(
            self.heading(lyrics.title, "title.lyrics"), lines, task.task_id, head=head
        )
        body: list[Text] = []
        if lyrics.text and lyrics.text.strip():
            text = relay_text(lyrics.text.strip(), TEXT_LIMIT, RANK_LYRICS, 200)
            body.append(text)
        else:
            body.append(fixed_text(self.t("text.no_lyrics"), 512))
        body += self.tags(lyrics.tags)
        if lyrics.error_message:
            body.append(self.reason(lyrics.error_message, "text.no_reason"))
        return [header, _DIVIDER, TextBlock(body)]

    def failed(self, task: Task, head: list[Text]) -> list[Block]:
        lines = [self.status_line(task), *self.time_lines(task)]
        header = self.header(
            self.heading(_song_title(task), "title.task"), lines, task.task_id, head=head
        )
        reason = TextBlock([self.failure_reason(task)])
        cover = next((u for c in task.clips if (u := _media_url(c.cover_url))), None)
        return [Section([header, reason], cover) if cover else header, *([] if cover else [reason])]

    def failure_reason(self, task: Task) -> Text:
        reason = task.fail_reason
        if reason is None:
            reason = next((clip.error_message for clip in task.clips if clip.error_message), None)
        if reason is None and task.lyrics is not None:
            reason = task.lyrics.error_message
        if reason is None:
            reason = task.failure_name
        return self.reason(reason, "text.no_reason")


@functools.lru_cache(maxsize=64)
def _renderer(catalog: Catalog, locale: str) -> _Renderer:
    """The renderer of `locale` (Discord has about thirty), kept with what it remembers."""
    return _Renderer(catalog, locale)


def render_task(
    task: Task,
    *,
    locale: str,
    notice: Notice | None = None,
    watch_timeout_minutes: int | None = None,
    catalog: Catalog | None = None,
    audio: Mapping[str, str] | None = None,
) -> RenderedMessage:
    """The status card for `task` as seen by someone using `locale`; `audio` maps a clip id to
    the name of its MP3 attached to the message, which the card then plays."""
    renderer = _renderer(catalog or default_catalog(), locale)
    head = renderer.notice_lines(notice, watch_timeout_minutes)
    audio = audio or {}
    if task.status is TaskStatus.SUCCESS:
        blocks = renderer.done(task, head, audio)
    elif task.status is TaskStatus.FAILURE:
        blocks = renderer.failed(task, head)
    else:
        blocks = renderer.running(task, head, audio)
    colour = _STATUS_COLOURS[task.status]
    if task.status is TaskStatus.SUCCESS and not task.clips and task.lyrics is None:
        colour = _DONE
    return finish(colour, blocks)


def render_picked(
    task: Task,
    values: Sequence[str],
    *,
    locale: str,
    catalog: Catalog | None = None,
) -> RenderedMessage | None:
    """The private card for the clips chosen in a task's picker (values as the picker made
    them: "first-last" positions on the card); None when none of them names a clip."""
    renderer = _renderer(catalog or default_catalog(), locale)
    entries = ordered(task.clips)
    chosen = _chosen(values, len(entries))[:MAX_CARD_CLIPS]
    if not chosen:
        return None
    picked = [entries[index] for index in chosen]
    line = renderer.t("label.picked", count=len(picked), total=len(entries))
    header = renderer.header(
        renderer.heading(_song_title(task), "title.task"), [line], task.task_id
    )
    running = task.status is not TaskStatus.SUCCESS
    blocks = renderer.with_clips(task, header, picked, running=running, audio={})
    return finish(_STATUS_COLOURS[task.status], blocks)


def _chosen(values: Sequence[str], total: int) -> list[int]:
    """The clip positions the values name, in order, each once; anything else is ignored."""
    chosen: dict[int, None] = {}
    for value in values:
        first, _, last = value.partition("-")
        if not (first.isdigit() and last.isdigit()):
            continue
        for index in range(int(first), min(int(last), total - 1) + 1):
            chosen[index] = None
    return list(chosen)


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
    renderer = _renderer(catalog or default_catalog(), locale)
    waiting = notice is Notice.RELAY_RETRYING
    status = renderer.t("status.waiting_for_relay" if waiting else "status.relay_never_answered")
    header = renderer.header(
        renderer.heading(None, "title.task"),
        [renderer.line("label.status", status)],
        task_id,
        head=renderer.notice_lines(notice, watch_timeout_minutes),
    )
    return finish(_WAITING, [header])


def render_error(
    message_key: str, *, locale: str, catalog: Catalog | None = None
) -> RenderedMessage:
    """A short red card for the requester; an unknown key shows the generic error."""
    renderer = _renderer(catalog or default_catalog(), locale)
    try:
        text = renderer.t(message_key)
    except KeyError:
        text = renderer.t("error.internal")
    header = renderer.header(renderer.heading(None, "title.error"), [text], "")
    return finish(_FAILED, [header])
