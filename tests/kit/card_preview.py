"""Draws the bot's real card payloads as Discord would show them, for the README's picture.

    uv run python -m tests.kit.card_preview docs/card.png

The payloads are what the bot sends (`StatusPresenter`'s cards, buttons included, as
`view().to_components()`): a finished two-song task after its MP3s were attached (the edit
`Completion.attach` makes), and a finished stem split. The page mimics Discord's dark theme
and headless Chromium takes the screenshot, as tall as the page. Covers are drawn as coloured
squares: there is no network here.
"""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app import StatusPresenter
from bot.audio import playable_clips, song_filename
from bot.completion import played_files
from bot.config import Settings
from bot.suno.models import Task, task_from
from bot.tracking.store import Watch, WatchOutcome
from tests.kit.payloads import BASE_TIME, DEFAULT_LYRICS, music_timeline

# When the picture is taken: a few minutes after the task was submitted.
NOW = BASE_TIME + 240
WIDTH = 760
LOCALE = "en-US"

STEMS = ["Vocals", "Backing Vocals", "Drums", "Bass", "Guitar", "Keyboard", "Synth", "Strings"]

_CSS = """
body { background:#313338; margin:0; padding:24px; font-family:'Noto Sans','gg sans',sans-serif;
       color:#dbdee1; font-size:15px; line-height:1.375; width:700px; }
.msg { display:flex; gap:16px; } .msg + .msg { margin-top:28px; }
.avatar { width:40px; height:40px; border-radius:50%; background:#5865f2; flex:none; }
.name { color:#f2f3f5; font-weight:600; } .app { background:#5865f2; color:#fff; font-size:10px;
       padding:1px 4px; border-radius:3px; margin-left:4px; } .time { color:#949ba4; font-size:12px;
       margin-left:6px; }
.container { background:#2b2d31; border-radius:8px; padding:16px; border-left:4px solid;
       margin-top:6px; width:580px; display:flex; flex-direction:column; gap:8px; }
.section { display:flex; gap:12px; justify-content:space-between; }
.thumb { width:85px; height:85px; border-radius:8px; flex:none; }
.text h3 { margin:0 0 4px; font-size:20px; color:#f2f3f5; }
.sub { color:#949ba4; font-size:12px; }
code { background:#1e1f22; padding:0 4px; border-radius:3px; font-size:13px; }
.ts { background:#3c3f45; border-radius:3px; padding:0 2px; }
hr { border:none; border-top:1px solid #3f4147; margin:4px 0; width:100%; }
.row { display:flex; gap:8px; flex-wrap:wrap; }
.button { color:#fff; border-radius:8px; padding:4px 14px; font-size:14px; font-weight:500;
       display:inline-flex; align-items:center; gap:6px; }
.style-1 { background:#5865f2; } .style-2, .style-5 { background:#4e5058; }
.style-3 { background:#248046; } .style-4 { background:#da373c; }
.style-5::after { content:'↗'; font-size:11px; }
.emoji { font-family:'Noto Color Emoji'; font-size:16px; line-height:1; }
.gallery { display:grid; grid-template-columns:repeat(4, 1fr); gap:4px; }
.gallery div { aspect-ratio:1; border-radius:6px; }
.select { background:#1e1f22; border:1px solid #1e1f22; border-radius:8px; padding:9px 12px;
       color:#949ba4; display:flex; justify-content:space-between; } .select::after { content:'⌄'; }
.file { background:#232428; border:1px solid #1e1f22; border-radius:8px; padding:12px 14px;
       width:400px; display:flex; flex-direction:column; gap:10px; }
.filehead { display:flex; gap:10px; align-items:center; }
.fileicon { width:24px; height:30px; background:#949ba4; border-radius:2px 8px 2px 2px;
       color:#232428; font-size:15px; font-weight:700; text-align:center; line-height:32px; }
.filename { color:#00a8fc; font-size:15px; }
.player { display:flex; align-items:center; gap:10px; font-size:12px; color:#dbdee1; }
.play { width:0; height:0; border-left:11px solid #dbdee1; border-top:7px solid transparent;
       border-bottom:7px solid transparent; margin-left:4px; }
.clock { font-family:'DejaVu Sans Mono',monospace; }
.bar { flex:1; height:6px; border-radius:3px; background:#4e5058; position:relative; }
.bar::before { content:''; position:absolute; left:-1px; top:-3px; width:12px; height:12px;
       border-radius:50%; background:#5865f2; }
.volume { width:6px; height:8px; background:#dbdee1; position:relative; margin-right:10px; }
.volume::after { content:''; position:absolute; left:2px; top:-4px; border-right:9px solid #dbdee1;
       border-top:8px solid transparent; border-bottom:8px solid transparent; }
"""


def _cover(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()
    hue = int(digest[:2], 16) * 360 // 256
    return f"background:linear-gradient(135deg,hsl({hue},70%,55%),hsl({(hue + 60) % 360},70%,35%))"


def _when(match: re.Match[str]) -> str:
    stamp, style = int(match[1]), match[2]
    if style == "R":
        minutes = max(1, (NOW - stamp) // 60)
        return f'<span class="ts">{minutes} minutes ago</span>'
    shown = datetime.fromtimestamp(stamp, UTC).strftime("%d %B %Y %H:%M")
    return f'<span class="ts">{shown}</span>'


def _markdown(text: str) -> str:
    """The little markdown the cards use, as HTML (escapes undone, as Discord shows them)."""
    lines = []
    for raw in text.split("\n"):
        line = html.escape(re.sub(r"\\(.)", r"\1", raw))
        line = re.sub(r"&lt;t:(\d+):(\w)&gt;", _when, line)
        line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", line)
        line = re.sub(r"`([^`]+)`", r"<code>\1</code>", line)
        if line.startswith("### "):
            line = f"<h3>{line[4:]}</h3>"
        elif line.startswith("-# "):
            line = f'<div class="sub">{line[3:]}</div>'
        else:
            line = f"<div>{line}</div>"
        lines.append(line)
    return f'<div class="text">{"".join(lines)}</div>'


def _minutes(seconds: float | None) -> str:
    whole = round(seconds or 0)
    return f"{whole // 60}:{whole % 60:02d}"


class Page:
    """Turns components into HTML; `durations` are the attached songs' lengths, by file name
    (Discord's player reads them from the file; the payload names the file only)."""

    def __init__(self, durations: Mapping[str, float | None]) -> None:
        self._durations = durations
        self._drawers: dict[int, Callable[[dict[str, Any]], str]] = {
            1: self._row,
            2: self._button,
            3: self._select,
            9: self._section,
            10: lambda item: _markdown(item["content"]),
            12: self._gallery,
            13: self._file,
            14: lambda _: "<hr>",
            17: self._container,
        }

    def draw(self, item: dict[str, Any]) -> str:
        return self._drawers[item["type"]](item)

    def _children(self, item: dict[str, Any]) -> str:
        return "".join(self.draw(child) for child in item["components"])

    def _row(self, item: dict[str, Any]) -> str:
        return f'<div class="row">{self._children(item)}</div>'

    def _button(self, item: dict[str, Any]) -> str:
        emoji = (item.get("emoji") or {}).get("name")
        icon = f'<span class="emoji">{html.escape(emoji)}</span>' if emoji else ""
        label = html.escape(item.get("label") or "")
        return f'<span class="button style-{item["style"]}">{icon}{label}</span>'

    def _select(self, item: dict[str, Any]) -> str:
        return f'<div class="select">{html.escape(item.get("placeholder") or "")}</div>'

    def _section(self, item: dict[str, Any]) -> str:
        thumb = f'<div class="thumb" style="{_cover(item["accessory"]["media"]["url"])}"></div>'
        return f'<div class="section"><div>{self._children(item)}</div>{thumb}</div>'

    def _gallery(self, item: dict[str, Any]) -> str:
        cells = "".join(f'<div style="{_cover(i["media"]["url"])}"></div>' for i in item["items"])
        return f'<div class="gallery">{cells}</div>'

    def _file(self, item: dict[str, Any]) -> str:
        """An attached MP3 as Discord's audio player draws it: name, play, progress, length."""
        name = item["file"]["url"].removeprefix("attachment://")
        length = _minutes(self._durations.get(name))
        head = (
            '<div class="filehead"><div class="fileicon">♪</div>'
            f'<span class="filename">{html.escape(name)}</span></div>'
        )
        player = (
            f'<div class="player"><span class="play"></span><span class="clock">0:00 / {length}'
            '</span><span class="bar"></span><span class="volume"></span></div>'
        )
        return f'<div class="file">{head}{player}</div>'

    def _container(self, item: dict[str, Any]) -> str:
        colour = f"#{item.get('accent_color') or 0:06x}"
        return f'<div class="container" style="border-color:{colour}">{self._children(item)}</div>'

    def message(self, components: list[dict[str, Any]]) -> str:
        body = "".join(self.draw(component) for component in components)
        head = '<span class="name">Suno Status</span><span class="app">APP</span>'
        return (
            f'<div class="msg"><div class="avatar"></div><div>{head}'
            f'<span class="time">Today at 09:45</span>{body}</div></div>'
        )


def song_task_payload(task_id: str, clip_count: int) -> dict[str, Any]:
    """A finished music task as a relay sends it, its songs sung (their lyrics given)."""
    song = music_timeline(task_id, clip_count=clip_count)[-1]
    for clip in song["data"]:
        clip["metadata"] = {**clip["metadata"], "prompt": DEFAULT_LYRICS}
    return song


def stem_task_payload() -> dict[str, Any]:
    """A finished stem split: the song and eight of its stems, as a relay sends them."""
    song = song_task_payload("stems-demo", clip_count=1)
    source = song["data"][0]
    stems = []
    for index, part in enumerate(STEMS):
        stem = {**source, "id": f"stem-{index}", "title": f"{source['title']} ({part})"}
        stem["model_name"], stem["video_url"] = "chirp-stem", ""
        stem["major_model_version"] = None
        stem["audio_url"] = f"https://cdn1.suno.ai/stem-{index}.mp3"
        stem["metadata"] = {
            **source["metadata"],
            "stem_from_id": source["id"],
            "stem_type_group_name": part,
        }
        stems.append(stem)
    return {**song, "task_id": "stems-demo", "data": [source, *stems]}


def public_watch(task: Task) -> Watch:
    """The stored watch of a `/suno status` answered in a channel, as the store gives it."""
    when = datetime.fromtimestamp(NOW, UTC)
    return Watch(
        id=1,
        task_id=task.task_id,
        application_id=1,
        guild_id=2,
        channel_id=3,
        requester_id=4,
        locale=LOCALE,
        ephemeral=False,
        interaction_id=5,
        interaction_token=None,
        token_expires_at=when,
        deadline_at=when,
        message_id=6,
        last_fingerprint=None,
        outcome=WatchOutcome.FINISHED,
        created_at=when,
        updated_at=when,
    )


def attached_card(presenter: StatusPresenter, task: Task) -> list[dict[str, Any]]:
    """The finished card once its songs are attached: the files it has room to play, named
    as they are uploaded (the two renders `Completion.attach` makes)."""
    watch = public_watch(task)
    planned = {clip.id: song_filename(clip, n) for n, clip in playable_clips(task)}
    shown = played_files(presenter.finished_card(task, watch, planned))
    audio = {clip_id: name for clip_id, name in planned.items() if name in shown}
    view: Any = presenter.finished_card(task, watch, audio).view()
    components: list[dict[str, Any]] = view.to_components()  # discord.py leaves it untyped
    return components


def page() -> str:
    """The two cards, from the real payloads, as one HTML page."""
    presenter = StatusPresenter(Settings.model_fields["watch_timeout_seconds"].default)
    done = task_from(song_task_payload("6f1c2a9e-3b7d-4e25-9c41-8a0d5e2f7b13", clip_count=2))
    stems = task_from(stem_task_payload())
    durations = {song_filename(clip, n): clip.duration for n, clip in playable_clips(done)}
    drawer = Page(durations)
    messages = [
        drawer.message(attached_card(presenter, done)),
        drawer.message(presenter.task(stems, locale=LOCALE).view().to_components()),  # type: ignore[no-untyped-call]
    ]
    return f"<html><head><style>{_CSS}</style></head><body>{''.join(messages)}</body></html>"


# Writes the page's height where `--dump-dom` shows it, for the screenshot's window.
_MEASURE = "<script>document.body.dataset.height = document.body.offsetHeight;</script>"


def _chromium(*arguments: str) -> str:
    """Runs headless Chromium; returns what it printed."""
    done = subprocess.run(  # noqa: S603 - a fixed command line
        [  # noqa: S607 - Chromium from the system's packages
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            *arguments,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def main(target: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "card.html"
        source.write_text(page().replace("</body>", f"{_MEASURE}</body>"), encoding="utf-8")
        dom = _chromium(f"--window-size={WIDTH},200", "--dump-dom", source.as_uri())
        found = re.search(r'data-height="(\d+)"', dom)
        if found is None:
            raise RuntimeError("Chromium did not lay the page out")
        _chromium(
            f"--screenshot={Path(target).resolve()}",
            f"--window-size={WIDTH},{found[1]}",
            source.as_uri(),
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/card.png")
