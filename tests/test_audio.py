"""The song downloader: what it fetches, and every URL it refuses, against a fake CDN."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.audio import (
    AudioDownloader,
    AudioHost,
    AudioRefused,
    _PublicOnlyResolver,
    is_public_address,
    parse_audio_hosts,
    song_filename,
)
from bot.suno.models import Clip, ClipState
from tests.kit.fake_cdn import FakeCdn, mp3_bytes

LIMIT = 64 * 1024


@pytest.fixture
async def cdn() -> AsyncIterator[FakeCdn]:
    async with FakeCdn() as cdn:
        yield cdn


@pytest.fixture
async def downloader(cdn: FakeCdn) -> AsyncIterator[AudioDownloader]:
    hosts = parse_audio_hosts(f"{cdn.host},localhost")
    loader = AudioDownloader(hosts, timeout=1.0)
    yield loader
    await loader.close()


async def test_a_song_on_a_listed_host_is_downloaded_without_credentials(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    song = mp3_bytes(10_000)
    url = cdn.put("song.mp3", song)
    assert await downloader.download(url, LIMIT) == song
    [request] = cdn.requested("song.mp3")
    assert "Authorization" not in request.headers
    assert "Cookie" not in request.headers
    assert request.headers["Accept"] == "audio/*"


async def test_a_redirect_onto_a_listed_host_is_followed(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    song = mp3_bytes(2000)
    target = cdn.put("final.mp3", song)
    url = cdn.redirect("moved.mp3", target)
    assert await downloader.download(url, LIMIT) == song


async def refused(downloader: AudioDownloader, url: str, limit: int = LIMIT) -> str:
    with pytest.raises(AudioRefused) as caught:
        await downloader.download(url, limit)
    return str(caught.value)


async def test_a_host_off_the_list_is_never_asked(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    cdn.put("song.mp3", mp3_bytes(100))
    reason = await refused(downloader, cdn.url("song.mp3", host="127.0.0.2"))
    assert "not in AUDIO_HOSTS" in reason
    assert cdn.requests == []


async def test_a_listed_name_that_resolves_to_a_private_address_is_never_asked(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    cdn.put("song.mp3", mp3_bytes(100))
    await refused(downloader, cdn.url("song.mp3", host="localhost"))
    assert cdn.requests == []


async def test_a_listed_private_literal_address_without_its_port_is_never_asked(
    cdn: FakeCdn,
) -> None:
    cdn.put("song.mp3", mp3_bytes(100))
    loader = AudioDownloader([AudioHost("127.0.0.1")], timeout=1.0)
    try:
        reason = await refused(loader, cdn.url("song.mp3"))
    finally:
        await loader.close()
    assert "not a public address" in reason
    assert cdn.requests == []


async def test_a_redirect_off_the_list_is_not_followed(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    cdn.put("elsewhere.mp3", mp3_bytes(100))
    url = cdn.redirect("moved.mp3", "http://169.254.169.254/latest/meta-data/")
    reason = await refused(downloader, url)
    assert "169.254.169.254 is not in AUDIO_HOSTS" in reason
    assert [r.path for r in cdn.requests] == ["/moved.mp3"]


async def test_endless_redirects_stop(cdn: FakeCdn, downloader: AudioDownloader) -> None:
    url = cdn.redirect("loop.mp3", cdn.url("loop.mp3"))
    assert "redirects" in await refused(downloader, url)
    assert len(cdn.requests) == 4


@pytest.mark.parametrize("declared", [True, False])
async def test_a_file_over_the_limit_is_refused(
    cdn: FakeCdn, downloader: AudioDownloader, declared: bool
) -> None:
    url = cdn.put("big.mp3", mp3_bytes(LIMIT + 1), declare_length=declared)
    reason = await refused(downloader, url)
    assert ("declared size" in reason) is declared
    assert str(LIMIT) in reason


async def test_a_file_that_is_not_audio_is_refused(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    url = cdn.put("page.mp3", b"<html>login</html>", content_type="text/html")
    assert "not audio" in await refused(downloader, url)


async def test_a_stalled_download_ends_at_the_timeout(
    cdn: FakeCdn, downloader: AudioDownloader
) -> None:
    url = cdn.stall("slow.mp3")
    assert "within 1s" in await refused(downloader, url)


@pytest.mark.parametrize(
    "url", ["ftp://cdn1.suno.ai/a.mp3", "file:///etc/passwd", "http://user:pw@127.0.0.1:1/a.mp3"]
)
async def test_other_schemes_and_credentials_are_refused(
    downloader: AudioDownloader, url: str
) -> None:
    await refused(downloader, url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "not an address",
    ],
)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["104.18.32.7", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_recognised(address: str) -> None:
    assert is_public_address(address)


def test_song_file_names_are_plain_ascii() -> None:
    clip = Clip(id="c", state=ClipState.COMPLETE, raw_state="complete", title="Ünïcode <b>Ça</b>!")
    assert song_filename(clip, 2) == "unicode-b-ca-b-2.mp3"
    untitled = Clip(id="c", state=ClipState.COMPLETE, raw_state="complete")
    assert song_filename(untitled, 1) == "song-1.mp3"


class ScriptedResolver(AbstractResolver):
    """What DNS answers, scripted: a public and a private address for every name."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
            for address in ("104.18.32.7", "10.0.0.5", "::ffff:127.0.0.1")
        ]

    async def close(self) -> None:
        return None


async def test_the_connection_goes_only_to_the_public_addresses_dns_gave() -> None:
    resolver = _PublicOnlyResolver([AudioHost("cdn.example.com"), AudioHost("lan.cdn", 8080)])
    resolver._inner = ScriptedResolver()  # type: ignore[assignment]
    public = await resolver.resolve("cdn.example.com", 443)
    assert [entry["host"] for entry in public] == ["104.18.32.7"]
    # A host listed with its port is the operator's to vouch for, whatever its addresses.
    trusted = await resolver.resolve("lan.cdn", 8080)
    assert len(trusted) == 3
    untrusted_port = await resolver.resolve("lan.cdn", 443)
    assert [entry["host"] for entry in untrusted_port] == ["104.18.32.7"]
    await resolver.close()
