"""Downloads a finished song's MP3 for upload, refusing whatever the bot must not fetch.

A URL the relay sent is fetched on someone else's say-so: only from hosts on the operator's
allow-list, only from public addresses (checked after DNS resolution and then connected to, so
a second lookup cannot swap in another address), http(s) only, redirects followed by hand and
only onto listed hosts, within a size cap checked before and while reading, within one overall
timeout, with no credentials, and only when the server calls it audio.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import re
import socket
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
import discord
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from bot.suno.models import Clip, ClipState, Task

log = logging.getLogger(__name__)

# Where Suno serves finished songs (cdn1/cdn2) and their streams (audiopipe).
DEFAULT_AUDIO_HOSTS = "cdn1.suno.ai,cdn2.suno.ai,audiopipe.suno.ai"
MAX_REDIRECTS = 3
# Discord shows at most this many attachments on one message.
MAX_FILES = 10
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^[0-9a-f:.]+$")


@dataclass(frozen=True, slots=True)
class AudioHost:
    """One allow-listed host; with a port, the operator vouches for its addresses too."""

    host: str
    port: int | None = None

    def allows(self, host: str, port: int) -> bool:
        return self.host == host and (self.port is None or self.port == port)


def parse_audio_hosts(value: str) -> tuple[AudioHost, ...]:
    """`host` or `host:port` entries, comma-separated (`[::1]:8080` for IPv6); ValueError else."""
    hosts: list[AudioHost] = []
    for entry in (part.strip().lower() for part in value.split(",")):
        if not entry:
            continue
        host, port = _split_entry(entry)
        if not _HOST.match(host):
            raise ValueError(f"not a host name: {entry}")
        hosts.append(AudioHost(host, port))
    return tuple(hosts)


def _split_entry(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":") if rest else ""
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not a port: {entry}")
    return host, int(port_text)


def is_public_address(address: str) -> bool:
    """Whether `address` is a public unicast address (no loopback, private, link-local, cloud
    metadata, shared, multicast, reserved or unspecified one, nor such a one wrapped in IPv6)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


class AudioRefused(Exception):
    """The file was not fetched; the message says why without the URL's path or query."""


class _PublicOnlyResolver(AbstractResolver):
    """Resolves through the system and keeps only public addresses, except for hosts the
    operator listed with their port. The connector dials exactly what this returns."""

    def __init__(self, trusted: Iterable[AudioHost]) -> None:
        self._inner = DefaultResolver()
        self._trusted = frozenset((entry.host, entry.port) for entry in trusted if entry.port)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if (host.lower(), port) in self._trusted:
            return found
        public = [entry for entry in found if is_public_address(entry["host"])]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


class AudioDownloader:
    """Fetches audio files from allow-listed hosts through a session of its own (no relay
    key, no cookies, no proxy settings from the environment)."""

    def __init__(self, hosts: Sequence[AudioHost], *, timeout: float) -> None:
        self._hosts = tuple(hosts)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=_PublicOnlyResolver(self._hosts), limit=4)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def download(self, url: str, limit: int) -> bytes:
        """The file at `url`, at most `limit` bytes; AudioRefused for anything else."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(url, limit)
        except TimeoutError:
            raise AudioRefused(f"no complete answer within {self._timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise AudioRefused(f"download failed ({type(exc).__name__})") from None

    async def _follow(self, url: str, limit: int) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url)
            async with self._client().get(
                url, allow_redirects=False, headers={"Accept": "audio/*"}
            ) as response:
                if response.status in _REDIRECTS:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                return await _read_audio(response, limit)
        raise AudioRefused(f"more than {MAX_REDIRECTS} redirects")

    def _check(self, url: str) -> None:
        """Refuses a URL that is not http(s) on an allow-listed host and port."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AudioRefused("not an http(s) URL")
        if parts.username or parts.password:
            raise AudioRefused("URL carries credentials")
        host = parts.hostname.lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AudioRefused("URL has an invalid port") from None
        entry = next((entry for entry in self._hosts if entry.allows(host, port)), None)
        if entry is None:
            raise AudioRefused(f"host {host} is not in AUDIO_HOSTS")
        # A literal address never reaches the resolver: it is checked here instead.
        if entry.port is None and _is_literal(host) and not is_public_address(host):
            raise AudioRefused(f"host {host} is not a public address")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _read_audio(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.status != 200:
        raise AudioRefused(f"HTTP {response.status}")
    if not response.content_type.startswith("audio/"):
        raise AudioRefused(f"content type {response.content_type[:60]!r} is not audio")
    declared = response.content_length
    if declared is not None and declared > limit:
        raise AudioRefused(f"declared size {declared} exceeds {limit} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise AudioRefused(f"larger than {limit} bytes")
    return bytes(body)


@dataclass(frozen=True)
class SongFile:
    """A downloaded MP3, named for the message's attachments (`attachment://<filename>`)."""

    clip_id: str
    filename: str
    data: bytes = field(repr=False)

    def to_file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename)


def song_filename(clip: Clip, number: int) -> str:
    """A plain ASCII file name for the clip's MP3: its title, slugged, and its number."""
    ascii_title = unicodedata.normalize("NFKD", clip.title or "").encode("ascii", "ignore")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.decode().lower()).strip("-")[:60].strip("-")
    return f"{slug or 'song'}-{number}.mp3"


def playable_clips(task: Task) -> list[tuple[int, Clip]]:
    """The done clips with an MP3 to attach, numbered as the card numbers them."""
    return [
        (number, clip)
        for number, clip in enumerate(task.clips, start=1)
        if clip.state is ClipState.COMPLETE
        and clip.audio_url
        and urlsplit(clip.audio_url).path.lower().endswith(".mp3")
        and not urlsplit(clip.audio_url).path.lower().endswith("/none.mp3")
    ][:MAX_FILES]


class SongFiles:
    """The MP3s of a finished task that fit in one message's upload limit; any file that is
    refused or fails is left out with one log line, and never shown to anyone."""

    def __init__(self, downloader: AudioDownloader) -> None:
        self._downloader = downloader

    async def fetch(
        self, task: Task, limit: int, wanted: Collection[str] | None = None
    ) -> list[SongFile]:
        """The files, in the card's order; `wanted` (clip ids) limits them to the songs the
        card has room to play."""
        files: list[SongFile] = []
        room = limit
        for number, clip in playable_clips(task):
            if wanted is not None and clip.id not in wanted:
                continue
            if room <= 0:
                break
            assert clip.audio_url is not None
            try:
                data = await self._downloader.download(clip.audio_url, room)
            except AudioRefused as refusal:
                log.info("not attaching song %d of task %s: %s", number, task.task_id, refusal)
                continue
            room -= len(data)
            files.append(SongFile(clip.id, song_filename(clip, number), data))
        return files
