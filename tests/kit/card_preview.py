"""Draws the bot's real card payloads as Discord would show them, for the README's picture.

    uv run python -m tests.kit.card_preview docs/card.png

The payload is what the bot sends (`RenderedMessage.view().to_components()`) for a finished
two-song task and a stem split; the page mimics Discord's dark theme and headless Chromium
takes the screenshot. Covers are drawn as coloured squares: there is no network here.
"""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.render import render_task
from bot.suno.models import task_from
from tests.kit.payloads import BASE_TIME, music_timeline

# When the picture is taken: a few minutes after the task was submitted.
NOW = BASE_TIME + 240

STEMS = ["Vocals", "Backing Vocals", "Drums", "Bass", "Guitar", "Keyboard", "Synth", "Strings"]

_CSS = """
body { background:#313338; margin:0; padding:24px; font-family:'Noto Sans','gg sans',sans-serif;
       color:#dbdee1; font-size:15px; line-height:1.375; width:700px; }
.msg { display:flex; gap:16px; margin-bottom:28px; }
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
.button { background:#4e5058; color:#fff; border-radius:8px; padding:4px 14px; font-size:14px;
       font-weight:500; } .button::after { content:' ↗'; font-size:11px; }
.gallery { display:grid; grid-template-columns:repeat(4, 1fr); gap:4px; }
.gallery div { aspect-ratio:1; border-radius:6px; }
.select { background:#1e1f22; border:1px solid #1e1f22; border-radius:8px; padding:9px 12px;
       color:#949ba4; display:flex; justify-content:space-between; } .select::after { content:'⌄'; }
.file { background:#2b2d31; border:1px solid #1e1f22; border-radius:8px; padding:10px; }
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


def _component(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind == 10:
        return _markdown(item["content"])
    if kind == 9:
        texts = "".join(_component(child) for child in item["components"])
        thumb = f'<div class="thumb" style="{_cover(item["accessory"]["media"]["url"])}"></div>'
        return f'<div class="section"><div>{texts}</div>{thumb}</div>'
    if kind == 14:
        return "<hr>"
    if kind == 12:
        cells = "".join(f'<div style="{_cover(i["media"]["url"])}"></div>' for i in item["items"])
        return f'<div class="gallery">{cells}</div>'
    if kind == 13:
        return f'<div class="file">🎵 {html.escape(item["file"]["url"][13:])}</div>'
    if kind == 1:
        return (
            f'<div class="row">{"".join(_component(child) for child in item["components"])}</div>'
        )
    if kind == 2:
        return f'<span class="button">{html.escape(item["label"])}</span>'
    if kind == 3:
        return f'<div class="select">{html.escape(item.get("placeholder") or "")}</div>'
    colour = f"#{item.get('accent_color') or 0:06x}"
    children = "".join(_component(child) for child in item["components"])
    return f'<div class="container" style="border-color:{colour}">{children}</div>'


def _message(components: list[dict[str, Any]]) -> str:
    body = "".join(_component(component) for component in components)
    head = '<span class="name">Suno Status</span><span class="app">APP</span>'
    return (
        f'<div class="msg"><div class="avatar"></div><div>{head}'
        f'<span class="time">Today at 09:45</span>{body}</div></div>'
    )


def stem_task_payload() -> dict[str, Any]:
    """A finished stem split: the song and eight of its stems, as a relay sends them."""
    song = music_timeline("stems-demo", clip_count=1)[-1]
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


def page() -> str:
    """The two cards, from the real payloads, as one HTML page."""
    done = task_from(music_timeline("6f1c2a9e-3b7d-4e25-9c41-8a0d5e2f7b13", clip_count=2)[-1])
    stems = task_from(stem_task_payload())
    messages = [
        _message(render_task(task, locale="en-US").view().to_components())  # type: ignore[no-untyped-call]
        for task in (done, stems)
    ]
    return f"<html><head><style>{_CSS}</style></head><body>{''.join(messages)}</body></html>"


def main(target: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "card.html"
        source.write_text(page(), encoding="utf-8")
        subprocess.run(  # noqa: S603 - a fixed command line
            [  # noqa: S607 - Chromium from the system's packages
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--hide-scrollbars",
                f"--screenshot={Path(target).resolve()}",
                "--window-size=760,1080",
                source.as_uri(),
            ],
            check=True,
            capture_output=True,
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/card.png")
