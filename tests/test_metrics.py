"""Health and metrics as an operator's monitoring sees them: `/healthz` and `/metrics` of a
running bot, the figures they show moving, and `python -m bot health`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import INVITE_PERMISSIONS
from bot.healthcheck import healthz_url
from bot.metrics import EndpointError, LoopLagProbe, Metrics, serving
from bot.suno.client import RelayClient
from bot.suno.errors import RelayError
from bot.tracking.store import SqliteWatchStore, StoreError
from tests.kit.bot_process import REPO, BotProcess
from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord, FakeInteraction, FakeMessage
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.harness import RELAY_KEY, bot_settings, running_bot, text_of
from tests.kit.payloads import clip, clip_ids_for, music_timeline, task_payload

SERVING = "serving /healthz and /metrics on "
# Every label the bot's own metrics may carry: a few fixed words, never an id or a key.
ALLOWED_LABELS = {
    "endpoint": {"fetch", "batch"},
    "outcome": {
        "ok",
        "not_found",
        "key_rejected",
        "unavailable",
        "protocol_error",
        "unsupported",
        "error",
        "retried",
        "gone",
        "rejected",
    },
    "route": {"token", "channel"},
}


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value in a /metrics body; fails if the series is not there."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def shows_done(message: FakeMessage) -> bool:
    return "**Status:** Done" in text_of(message)


def still_running(task_id: str, polls: int = 400) -> list[dict[str, object]]:
    ids = clip_ids_for(task_id, 1)
    streaming = task_payload(
        task_id, "IN_PROGRESS", clips=[clip("nested", i, "streaming") for i in ids]
    )
    return [streaming] * polls


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def poll_until(
    http: aiohttp.ClientSession,
    url: str,
    done: Callable[[int, str], bool],
    timeout: float = 20,  # noqa: ASYNC109
) -> tuple[int, str]:
    """GETs `url` until `done(status, body)`; the last answer."""
    async with asyncio.timeout(timeout):
        while True:
            status, body = await get(http, url)
            if done(status, body):
                return status, body
            await asyncio.sleep(0.05)


async def ask(fake: FakeDiscord, task_id: str) -> tuple[FakeInteraction, FakeMessage]:
    interaction = await fake.interact(options={"task_id": task_id})
    await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    return interaction, message


@asynccontextmanager
async def endpoint(
    metrics: Metrics, store_open: Callable[[], bool] = lambda: True
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with serving("127.0.0.1:0", metrics, store_open) as base, aiohttp.ClientSession() as http:
        assert base is not None
        yield http, base


# -- the running bot, end to end ---------------------------------------------------------


async def test_a_running_bot_serves_its_health_and_figures_that_move_as_tasks_run(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("metrics-done", music_timeline("metrics-done"))
    relay.add_task("metrics-running", still_running("metrics-running"))
    async with (
        BotProcess.against(fake, relay, database, METRICS_ADDRESS="127.0.0.1:0") as bot,
        aiohttp.ClientSession() as http,
    ):
        base = (await bot.wait_for_line(SERVING)).rsplit(" ", 1)[1]
        _, health = await poll_until(http, f"{base}/healthz", lambda s, _: s == 200, 30)
        assert health == "ok: Discord gateway connected, store open; relay not asked yet\n"

        running_interaction, _ = await ask(fake, "metrics-running")
        done_interaction, done = await ask(fake, "metrics-done")
        await fake.wait_for(lambda: shows_done(done), timeout=20)
        _, text = await poll_until(
            http,
            f"{base}/metrics",
            lambda _, body: (
                sample(body, "suno_bot_final_edit_seconds_count") == 1
                and sample(body, "suno_bot_event_loop_lag_seconds_count") >= 1  # every 0.5 s
            ),
        )
        _, health = await get(http, f"{base}/healthz")
        code = await bot.stop()

    assert code == 0, bot.output
    assert health == "ok: Discord gateway connected, store open; relay answering\n"
    # The finished task is no longer followed; the running one still is, by its interaction.
    assert sample(text, "suno_bot_watches_active", route="token") == 1
    assert sample(text, "suno_bot_watches_active", route="channel") == 0
    assert sample(text, "suno_bot_tasks_polled") == 1
    # Each command's first look is a fetch; while two tasks are followed, polls go in batches.
    fetches = sample(text, "suno_bot_relay_requests_total", endpoint="fetch", outcome="ok")
    batches = sample(text, "suno_bot_relay_requests_total", endpoint="batch", outcome="ok")
    assert fetches >= 2 and batches >= 1 and fetches + batches >= 6
    assert sample(text, "suno_bot_relay_request_seconds_count", endpoint="fetch") == fetches
    assert sample(text, "suno_bot_relay_batch_size_count") == batches
    webhook_edits = [edit for edit in done.edits if edit.via == "webhook"]
    assert len(webhook_edits) == 4  # submitted, queued, generating, done
    assert sample(text, "suno_bot_discord_edits_total", route="token", outcome="ok") >= 4
    assert sample(text, "suno_bot_discord_edits_total", route="token", outcome="gone") == 0
    assert sample(text, "suno_bot_interaction_ack_seconds_count") == 2
    assert sample(text, "suno_bot_interaction_ack_seconds_sum") < 2 * 3
    assert sample(text, "suno_bot_final_edit_seconds_count") == 1
    assert sample(text, "suno_bot_final_edit_seconds_sum") < 5
    assert sample(text, "suno_bot_event_loop_lag_seconds_count") >= 1
    assert sample(text, "suno_bot_gateway_connected") == 1
    assert sample(text, "suno_bot_watches_resumed") == 0
    assert sample(text, "suno_bot_store_errors_total") == 0
    assert sample(text, "process_resident_memory_bytes") > 0
    # Labels are a few fixed words: no task id, user, server, token or key.
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            for label, value in found.labels.items():
                assert label == "le" or value in ALLOWED_LABELS[label], (found.name, label)
    for secret in ("metrics-done", "metrics-running", RELAY_KEY, FAKE_BOT_TOKEN):
        assert secret not in text
    for interaction in (running_interaction, done_interaction):
        assert interaction.token not in text
        assert str(interaction.id) not in text
    # The invite link, once Discord said which application this is.
    invite = bot.lines_with("invite the bot with ")
    assert len(invite) == 1, bot.output
    assert invite[0].endswith(
        f"https://discord.com/oauth2/authorize?client_id={fake.application_id}"
        "&scope=bot+applications.commands&permissions=117760"
    )


async def test_an_address_in_use_stops_the_bot_with_one_line(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with BotProcess.against(
            fake, relay, database, METRICS_ADDRESS=f"127.0.0.1:{port}"
        ) as bot:
            code = await bot.exit_code()
    assert code == 1
    [line] = bot.lines_with("METRICS_ADDRESS")
    assert line.endswith(
        f"cannot serve /healthz and /metrics on METRICS_ADDRESS=127.0.0.1:{port}:"
        " Address already in use"
    )
    assert "Traceback" not in bot.output
    assert not bot.lines_with("logging in to Discord")


# -- health ------------------------------------------------------------------------------


async def test_healthz_says_503_while_the_gateway_is_down_and_200_once_it_resumed(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        store = bot.store
        assert isinstance(store, SqliteWatchStore)
        async with endpoint(bot.metrics, lambda: store.is_open) as (http, base):
            assert (await get(http, f"{base}/healthz"))[0] == 200
            fake.refuse_gateway(times=1)
            await fake.drop_gateway()
            _, down = await poll_until(http, f"{base}/healthz", lambda s, _: s == 503)
            assert down == "unhealthy: Discord gateway not connected; relay not asked yet\n"
            down_metrics = (await get(http, f"{base}/metrics"))[1]
            _, up = await poll_until(http, f"{base}/healthz", lambda s, _: s == 200, 30)
    assert sample(down_metrics, "suno_bot_gateway_connected") == 0
    assert up.startswith("ok: Discord gateway connected")


async def test_a_relay_outage_is_reported_but_leaves_the_bot_healthy(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("outage", still_running("outage"))
    async with (
        running_bot(fake, bot_settings(relay, database)) as bot,
        endpoint(bot.metrics) as (http, base),
    ):
        await ask(fake, "outage")
        relay.fail_next(3, RelayReply(status=502, body="<html>Bad gateway</html>"))
        status, line = await poll_until(
            http, f"{base}/healthz", lambda _, body: "relay failing" in body
        )
        assert status == 200
        assert line.startswith("ok: Discord gateway connected, store open; relay failing for ")
        assert line.endswith(" s (last: unavailable)\n")
        status, line = await poll_until(
            http, f"{base}/healthz", lambda _, body: "relay answering" in body
        )
        text = (await get(http, f"{base}/metrics"))[1]
    assert status == 200
    assert (
        sample(text, "suno_bot_relay_requests_total", endpoint="fetch", outcome="unavailable") == 3
    )


async def test_a_closed_store_makes_the_bot_unhealthy() -> None:
    metrics = Metrics()
    metrics.gateway(connected=True)
    async with endpoint(metrics, store_open=lambda: False) as (http, base):
        status, line = await get(http, f"{base}/healthz")
    assert (status, line) == (503, "unhealthy: store not open; relay not asked yet\n")


async def test_the_endpoint_serves_only_its_own_registry_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.relay_request("fetch", "ok", 0.2)
    async with endpoint(metrics) as (http, base), http.get(f"{base}/metrics") as response:
        body = await response.text()
        content_type = response.headers["Content-Type"]
    assert content_type.startswith("text/plain")
    assert sample(body, "suno_bot_relay_requests_total", endpoint="fetch", outcome="ok") == 1
    # Series exist before their first event, so rates and alerts start from 0.
    assert sample(body, "suno_bot_discord_edits_total", route="channel", outcome="rejected") == 0
    assert b"suno_bot_" not in generate_latest(REGISTRY)


async def test_an_address_that_cannot_be_served_is_an_endpoint_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(EndpointError, match="Address already in use"):
            async with serving(address, Metrics(), lambda: True):
                pass


async def test_without_an_address_nothing_is_served() -> None:
    async with serving(None, Metrics(), lambda: True) as base:
        assert base is None


# -- what each layer reports ---------------------------------------------------------------


async def test_relay_requests_are_counted_by_endpoint_and_outcome_and_timed() -> None:
    metrics = Metrics()
    async with FakeRelay(api_key=RELAY_KEY) as relay, aiohttp.ClientSession() as session:
        relay.add_task("known", music_timeline("known"))
        relay.add_task("other", music_timeline("other"))
        client = RelayClient(
            session, relay.base_url, SecretStr(RELAY_KEY), timeout=2, observer=metrics
        )
        wrong = RelayClient(
            session, relay.base_url, SecretStr("sk-wrong"), timeout=2, observer=metrics
        )
        await client.fetch("known")
        await client.fetch_many(["known", "other", "known"])
        for failing in (client.fetch("unknown"), wrong.fetch("known")):
            with pytest.raises(RelayError):
                await failing
        relay.fail_next(1, RelayReply(status=503, body="busy"))
        with pytest.raises(RelayError):
            await client.fetch("known")
    text = generate_latest(metrics.registry).decode()
    for outcome, count in [("ok", 1), ("not_found", 1), ("key_rejected", 1), ("unavailable", 1)]:
        assert (
            sample(text, "suno_bot_relay_requests_total", endpoint="fetch", outcome=outcome)
            == count
        )
    assert sample(text, "suno_bot_relay_requests_total", endpoint="batch", outcome="ok") == 1
    assert sample(text, "suno_bot_relay_request_seconds_count", endpoint="fetch") == 4
    assert sample(text, "suno_bot_relay_batch_size_count") == 1
    assert sample(text, "suno_bot_relay_batch_size_sum") == 2  # duplicates asked once
    assert "unknown" not in text and 'known"' not in text


async def test_a_cancelled_relay_request_is_not_counted() -> None:
    metrics = Metrics()
    async with FakeRelay(api_key=RELAY_KEY) as relay, aiohttp.ClientSession() as session:
        relay.add_task("slow", [RelayReply(body={"code": "success", "data": None}, delay=5)])
        client = RelayClient(
            session, relay.base_url, SecretStr(RELAY_KEY), timeout=10, observer=metrics
        )
        fetch = asyncio.ensure_future(client.fetch("slow"))
        await asyncio.sleep(0.2)
        fetch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fetch
    text = generate_latest(metrics.registry).decode()
    assert sample(text, "suno_bot_relay_request_seconds_count", endpoint="fetch") == 0


async def test_edits_refused_because_the_message_is_gone_and_429s_are_counted(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("counted", 1)
    queued = task_payload("counted", "QUEUED", clips=[clip("nested", i, "queued") for i in ids])
    streaming = task_payload(
        "counted", "IN_PROGRESS", clips=[clip("nested", i, "streaming") for i in ids]
    )
    done = task_payload("counted", "SUCCESS", clips=[clip("nested", i) for i in ids])
    relay.add_task("counted", [queued, queued, *[streaming] * 20, done])
    fake.rate_limit_next("PATCH", "/webhooks/*/messages/@original", retry_after=0.1, times=1)
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        _, message = await ask(fake, "counted")
        await fake.wait_for(lambda: any(edit.via == "webhook" for edit in message.edits))
        fake.delete_message(message.id)  # the edit that shows the song done finds it gone
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
        text = generate_latest(bot.metrics.registry).decode()
    assert sample(text, "suno_bot_discord_rate_limited_total") == 1
    assert sample(text, "suno_bot_discord_edits_total", route="token", outcome="ok") >= 1
    assert sample(text, "suno_bot_discord_edits_total", route="token", outcome="gone") == 1
    assert sample(text, "suno_bot_watches_active", route="token") == 0


async def test_watches_resumed_at_start_are_reported(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("resumed", still_running("resumed"))
    settings = bot_settings(relay, database)
    async with running_bot(fake, settings):
        await ask(fake, "resumed")
    async with running_bot(fake, settings) as bot:
        await fake.wait_for(lambda: bot.tracker.stats().watches == 1)
        text = generate_latest(bot.metrics.registry).decode()
    assert sample(text, "suno_bot_watches_resumed") == 1
    assert sample(text, "suno_bot_watches_active", route="token") == 1


async def test_a_failing_store_statement_is_counted(database: Path) -> None:
    metrics = Metrics()
    store = await SqliteWatchStore.open(database, observer=metrics)
    try:
        with closing(sqlite3.connect(database)) as other:
            other.execute("DROP TABLE meta")
            other.commit()
        with pytest.raises(StoreError):
            await store.get_meta("anything")
        assert store.is_open
    finally:
        await store.close()
    assert not store.is_open
    text = generate_latest(metrics.registry).decode()
    assert sample(text, "suno_bot_store_errors_total") == 1


async def test_a_blocked_event_loop_shows_as_lag() -> None:
    lags: list[float] = []
    probe = LoopLagProbe(lags.append, every=0.05)
    probe.start()
    await asyncio.sleep(0.12)
    time.sleep(0.3)  # something holding the loop, as a blocking call would  # noqa: ASYNC251
    await asyncio.sleep(0.12)
    await probe.close()
    assert max(lags) >= 0.2
    assert min(lags) < 0.1


def test_the_invite_asks_for_the_permissions_the_readme_lists() -> None:
    assert INVITE_PERMISSIONS.value == 117760
    assert "permissions=117760" in (REPO / "README.md").read_text()


# -- python -m bot health ------------------------------------------------------------------


async def run_health(address: str | None) -> tuple[int, str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    if address is not None:
        env["METRICS_ADDRESS"] = address
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "health",
        cwd=REPO / "tests",  # no .env there: only these settings
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_the_health_command_passes_on_200_and_fails_on_503_printing_the_reason() -> None:
    metrics = Metrics()
    async with endpoint(metrics) as (_, base):
        address = base.removeprefix("http://")
        unhealthy = await run_health(address)
        metrics.gateway(connected=True)
        healthy = await run_health(address)
    assert unhealthy == (1, "unhealthy: Discord gateway not connected; relay not asked yet\n")
    assert healthy == (0, "ok: Discord gateway connected, store open; relay not asked yet\n")


async def test_the_health_command_fails_when_nothing_answers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out = await run_health(f"0.0.0.0:{port}")
    assert code == 1
    assert out.startswith(f"unhealthy: no answer from http://127.0.0.1:{port}/healthz (")


async def test_the_health_command_passes_when_the_endpoint_is_off() -> None:
    assert await run_health(None) == (
        0,
        "health endpoint off (METRICS_ADDRESS is unset): nothing to ask\n",
    )


def test_an_address_on_every_interface_is_asked_on_the_loopback() -> None:
    assert healthz_url("0.0.0.0:9108") == "http://127.0.0.1:9108/healthz"
    assert healthz_url("[::]:9108") == "http://[::1]:9108/healthz"
    assert healthz_url("bot.internal:9108") == "http://bot.internal:9108/healthz"


# -- what the docs and the dashboard name ----------------------------------------------------


def served_families() -> set[str]:
    text = generate_latest(Metrics().registry).decode()
    # prometheus-client adds a `_created` series (a start time) to counters and histograms.
    families = {family.name for family in text_string_to_metric_families(text)}
    return {name for name in families if not name.endswith("_created")}


def test_the_dashboard_graphs_only_metrics_the_bot_serves() -> None:
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for expression in expressions
        for name in re.findall(r"\b(?:suno_bot|process)_[a-z_]+", expression)
    }
    served = served_families()
    assert used <= served
    assert {name for name in served if name.startswith("suno_bot_")} <= used


def test_the_readme_lists_every_metric_the_bot_serves() -> None:
    readme = (REPO / "README.md").read_text()
    for name in served_families():
        if name.startswith("suno_bot_"):
            assert f"`{name}" in readme, name
