"""Member and server relay keys end to end: the real bot, the fake Discord, and a fake relay
that shows each task only to the key that made it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

from bot.app import SunoBot
from bot.keys import KeyOwner
from tests.kit.bot_process import BotProcess
from tests.kit.fake_discord import (
    DEFAULT_USER_ID,
    EVERYONE_PERMISSIONS,
    TOKEN_LIFETIME,
    FakeDiscord,
    FakeInteraction,
)
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import bot_settings, running_bot, text_of
from tests.kit.payloads import music_timeline, task_payload

SECRET = Fernet.generate_key().decode()
OLD_SECRET = Fernet.generate_key().decode()
KEY_A = "sk-member-alice-4f1c9a7be2d84c51a0e3"
KEY_B = "sk-member-bob-9d27e61f0c3b4a8d95b7"
SERVER_KEY = "sk-server-key-7a3e5c1d9b2f4e6a8c0d"
ALICE, BOB, CAROL = DEFAULT_USER_ID, DEFAULT_USER_ID + 1, DEFAULT_USER_ID + 2
MANAGE_GUILD = 1 << 5
ADMIN_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_GUILD


def keyed_settings(relay: FakeRelay, database: Path, secret: str = SECRET, **more: Any) -> Any:
    return bot_settings(relay, database, KEY_ENCRYPTION_SECRET=secret, **more)


def running_task(task_id: str) -> dict[str, Any]:
    """A task that stays "generating" for as long as the relay is asked."""
    return task_payload(task_id, "IN_PROGRESS")


async def answer_text(fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """The private answer's text, once it is there (after a "thinking…" reply too)."""

    def answered() -> bool:
        message = fake.message_for(interaction)
        return message is not None and not message.loading and bool(message.content)

    await fake.wait_for(answered)
    message = fake.message_for(interaction)
    assert message is not None and message.ephemeral
    return message.content


async def set_key(
    fake: FakeDiscord,
    pasted: str,
    *,
    user_id: int = ALICE,
    server: bool = False,
) -> str:
    """`/suno key set` (or `/suno-server-key set`), the modal filled in and sent; the answer."""
    name, subcommand = ("suno-server-key", "set") if server else ("suno", "key set")
    permissions = ADMIN_PERMISSIONS if server else None
    opened = await fake.interact(
        name=name, subcommand=subcommand, user_id=user_id, member_permissions=permissions
    )
    callback = await opened.wait_callback()
    assert callback.type == 9  # a modal: the key is never a command option
    submitted = await fake.submit_modal(opened, {"key": pasted}, member_permissions=permissions)
    return await answer_text(fake, submitted)


async def run(
    fake: FakeDiscord, subcommand: str, *, user_id: int = ALICE, server: bool = False
) -> str:
    name, path = ("suno-server-key", subcommand) if server else ("suno", f"key {subcommand}")
    permissions = ADMIN_PERMISSIONS if server else None
    asked = await fake.interact(
        name=name, subcommand=path, user_id=user_id, member_permissions=permissions
    )
    return await answer_text(fake, asked)


async def status(fake: FakeDiscord, task_id: str, *, user_id: int = ALICE) -> FakeInteraction:
    asked = await fake.interact(options={"task_id": task_id}, user_id=user_id)
    await asked.wait_callback()
    return asked


def shows(fake: FakeDiscord, asked: FakeInteraction, words: str) -> bool:
    message = fake.message_for(asked)
    return message is not None and words in text_of(message)


def keys_used_for(relay: FakeRelay, task_id: str) -> set[str | None]:
    return {r.authorization for r in relay.requests if task_id in r.task_ids}


def stored(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(sql).fetchall()


# -- members follow their own songs -----------------------------------------------------------


async def test_two_members_with_their_own_keys_follow_their_own_tasks_in_one_channel(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(KEY_B)
    relay.add_task("song-alice", music_timeline("song-alice"), key=KEY_A)
    relay.add_task("song-bob", music_timeline("song-bob"), key=KEY_B)
    async with running_bot(fake, keyed_settings(relay, database)) as bot:
        assert "works and is saved" in await set_key(fake, KEY_A, user_id=ALICE)
        assert "works and is saved" in await set_key(fake, KEY_B, user_id=BOB)
        alice = await status(fake, "song-alice", user_id=ALICE)
        bob = await status(fake, "song-bob", user_id=BOB)
        await fake.wait_for(lambda: shows(fake, alice, "Done") and shows(fake, bob, "Done"))
        # Bob's key does not see Alice's task: the relay says so, and the bot tells Bob whose
        # key it asked with.
        peeking = await status(fake, "song-alice", user_id=BOB)
        await fake.wait_for(lambda: shows(fake, peeking, "for your relay key"))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert keys_used_for(relay, "song-alice") == {f"Bearer {KEY_A}", f"Bearer {KEY_B}"}
    assert keys_used_for(relay, "song-bob") == {f"Bearer {KEY_B}"}
    peeked = [r for r in relay.requests_with(KEY_B) if "song-alice" in r.task_ids]
    assert [r.status for r in peeked] == [400]  # not found: nothing of Alice's was shown
    peek = fake.message_for(peeking)
    assert peek is not None and peek.ephemeral and "Done" not in text_of(peek)


async def test_without_a_key_of_their_own_a_member_uses_the_servers_then_the_bots(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(SERVER_KEY)
    relay.add_task("song-server", music_timeline("song-server"), key=SERVER_KEY)
    relay.add_task("song-operator", music_timeline("song-operator"))
    async with running_bot(fake, keyed_settings(relay, database)):
        assert "works and is saved" in await set_key(fake, SERVER_KEY, server=True)
        with_server_key = await status(fake, "song-server", user_id=CAROL)
        await fake.wait_for(lambda: shows(fake, with_server_key, "Done"))
        not_the_servers = await status(fake, "song-operator", user_id=CAROL)
        await fake.wait_for(lambda: shows(fake, not_the_servers, "this server's relay key"))

        assert "is removed" in await run(fake, "remove", server=True)
        with_bot_key = await status(fake, "song-operator", user_id=CAROL)
        await fake.wait_for(lambda: shows(fake, with_bot_key, "Done"))
        not_the_bots = await status(fake, "song-server", user_id=CAROL)
        await fake.wait_for(lambda: shows(fake, not_the_bots, "the bot's relay key"))
    assert "`/suno key set`" in text_of(fake.message_for(not_the_bots))  # type: ignore[arg-type]
    assert keys_used_for(relay, "song-operator") == {
        f"Bearer {SERVER_KEY}",
        f"Bearer {relay.api_key}",
    }
    assert stored(database, "SELECT COUNT(*) FROM relay_keys") == [(0,)]


async def test_a_members_own_key_comes_before_the_servers(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(SERVER_KEY)
    relay.add_task("song-alice", music_timeline("song-alice"), key=KEY_A)
    async with running_bot(fake, keyed_settings(relay, database)):
        await set_key(fake, SERVER_KEY, server=True)
        await set_key(fake, KEY_A, user_id=ALICE)
        asked = await status(fake, "song-alice", user_id=ALICE)
        await fake.wait_for(lambda: shows(fake, asked, "Done"))
    assert keys_used_for(relay, "song-alice") == {f"Bearer {KEY_A}"}


async def test_polls_are_batched_per_key_and_shared_by_watchers_with_the_same_key(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(KEY_B)
    alices, bobs = {f"a-{n}" for n in range(3)}, {f"b-{n}" for n in range(2)}
    for task_id in sorted(alices):
        relay.add_task(task_id, running_task(task_id), key=KEY_A)
    for task_id in sorted(bobs):
        relay.add_task(task_id, running_task(task_id), key=KEY_B)
    async with running_bot(fake, keyed_settings(relay, database)) as bot:
        await set_key(fake, KEY_A, user_id=ALICE)
        await set_key(fake, KEY_B, user_id=BOB)
        for task_id in sorted(alices):
            await status(fake, task_id, user_id=ALICE)
        for task_id in sorted(bobs):
            await status(fake, task_id, user_id=BOB)
        await status(fake, "a-0", user_id=ALICE)  # a second message for the same task
        await fake.wait_for(lambda: bot.tracker.stats().watches == 6)
        assert bot.tracker.stats().tasks == 5
        mark = len(relay.requests)

        def batches() -> list[Any]:
            return [r for r in relay.requests[mark:] if r.method == "POST"]

        await fake.wait_for(lambda: len(batches()) >= 10)
    polled: dict[str | None, set[str]] = {}
    for batch in batches():
        assert len(batch.task_ids) == len(set(batch.task_ids))  # a-0 asked once per poll
        polled.setdefault(batch.authorization, set()).update(batch.task_ids)
        assert set(batch.task_ids) <= (alices if batch.authorization == f"Bearer {KEY_A}" else bobs)
    assert polled == {f"Bearer {KEY_A}": alices, f"Bearer {KEY_B}": bobs}


# -- keys that stop working -----------------------------------------------------------------


async def test_a_key_rejected_mid_watch_ends_its_watches_with_a_note_for_its_owner(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.add_task("alice-1", running_task("alice-1"), key=KEY_A)
    relay.add_task("alice-2", running_task("alice-2"), key=KEY_A)
    relay.add_task("operator", running_task("operator"))
    async with running_bot(fake, keyed_settings(relay, database)) as bot:
        await set_key(fake, KEY_A)
        first, second = await status(fake, "alice-1"), await status(fake, "alice-2")
        others = await status(fake, "operator", user_id=BOB)
        relay.revoke_key(KEY_A)
        note = "no longer accepts the relay key"
        await fake.wait_for(lambda: shows(fake, first, note) and shows(fake, second, note))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 1)
        assert shows(fake, others, "Generating")
    for asked in (first, second):
        message = fake.message_for(asked)
        assert message is not None
        assert "`/suno key set`" in text_of(message)
        assert KEY_A[-4:] not in text_of(message)
    outcomes = stored(database, "SELECT task_id, outcome FROM watches ORDER BY id")
    assert outcomes == [("alice-1", "lost"), ("alice-2", "lost"), ("operator", "active")]


async def test_removing_a_key_mid_watch_ends_its_watches_and_tells_its_owner(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.add_task("alice-long", running_task("alice-long"), key=KEY_A)
    async with running_bot(fake, keyed_settings(relay, database)) as bot:
        await set_key(fake, KEY_A)
        asked = await status(fake, "alice-long")
        await fake.wait_for(lambda: shows(fake, asked, "Generating"))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 1)
        answer = await run(fake, "remove")
        await fake.wait_for(lambda: shows(fake, asked, "Live updates ended"))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
        assert "no relay key" in await run(fake, "status")
    assert answer.endswith(": 1.")  # one live message stopped updating
    assert stored(database, "SELECT COUNT(*) FROM relay_keys") == [(0,)]
    assert stored(database, "SELECT outcome, key_id FROM watches") == [("lost", None)]


# -- the modal ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "answer", "saved"),
    [
        (KEY_A, "works and is saved", True),
        (f"  \n{KEY_A}\t ", "works and is saved", True),
        ("sk-not-a-key-the-relay-knows", "did not accept that key", False),
        ("   ", "Nothing was pasted", False),
        ("k" * 10_000, "too long", False),
        ("sk-short", "too short", False),
        ("sk-with space-inside-0123456789", "no spaces", False),
    ],
    ids=["valid", "whitespace-around", "rejected", "empty", "10000-chars", "short", "inner-space"],
)
async def test_the_key_modal_checks_the_key_with_the_relay_and_answers_privately(
    fake: FakeDiscord, relay: FakeRelay, database: Path, pasted: str, answer: str, saved: bool
) -> None:
    relay.accept_key(KEY_A)
    async with running_bot(fake, keyed_settings(relay, database)):
        text = await set_key(fake, pasted)
        current = await run(fake, "status")
    assert answer in text
    if saved:
        assert f"`{KEY_A[-4:]}`" in text and f"`{KEY_A[-4:]}`" in current
        # Checked at once, with a random id, and sent trimmed.
        [check] = relay.requests_with(KEY_A)
        assert check.path.startswith("/suno/fetch/key-check-") and check.status == 400
    else:
        assert "no relay key" in current
        assert stored(database, "SELECT COUNT(*) FROM relay_keys") == [(0,)]
    assert all(KEY_A not in r.path for r in relay.requests)


async def test_only_server_managers_can_set_see_or_remove_the_servers_key(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(SERVER_KEY)
    async with running_bot(fake, keyed_settings(relay, database)):
        await set_key(fake, SERVER_KEY, server=True)
        refused = []
        for subcommand in ("set", "status", "remove"):
            asked = await fake.interact(name="suno-server-key", subcommand=subcommand, user_id=BOB)
            refused.append((asked, await answer_text(fake, asked)))
        still = await run(fake, "status", server=True)
    for asked, text in refused:
        assert asked.callback is not None and asked.callback.type == 4  # no modal
        assert "Only members who can manage this server" in text
        assert SERVER_KEY[-4:] not in text
    assert f"`{SERVER_KEY[-4:]}`" in still
    assert stored(database, "SELECT owner_kind FROM relay_keys") == [("guild",)]


# -- keeping keys safe ----------------------------------------------------------------------


async def test_the_store_file_never_holds_a_key_in_clear(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(SERVER_KEY)
    relay.add_task("alice-song", running_task("alice-song"), key=KEY_A)
    async with running_bot(fake, keyed_settings(relay, database)):
        await set_key(fake, KEY_A)
        await set_key(fake, SERVER_KEY, server=True)
        asked = await status(fake, "alice-song")
        await fake.wait_for(lambda: shows(fake, asked, "Generating"))
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
        contents = b"".join(p.read_bytes() for p in files)
    assert any(p.name.endswith("-wal") for p in files)
    assert contents
    for key in (KEY_A, SERVER_KEY):
        assert key.encode() not in contents
        assert key[:-4].encode() not in contents


async def test_keys_still_decrypt_after_the_secret_is_rotated_and_are_reencrypted(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.add_task("alice-song", music_timeline("alice-song"), key=KEY_A)
    async with running_bot(fake, keyed_settings(relay, database, secret=OLD_SECRET)):
        await set_key(fake, KEY_A)
    [(before,)] = stored(database, "SELECT ciphertext FROM relay_keys")
    rotated = keyed_settings(relay, database, secret=f"{SECRET}, {OLD_SECRET}")
    async with running_bot(fake, rotated):
        asked = await status(fake, "alice-song")
        await fake.wait_for(lambda: shows(fake, asked, "Done"))
    [(after,)] = stored(database, "SELECT ciphertext FROM relay_keys")
    assert Fernet(OLD_SECRET.encode()).decrypt(before) == KEY_A.encode()
    assert Fernet(SECRET.encode()).decrypt(after) == KEY_A.encode()
    assert keys_used_for(relay, "alice-song") == {f"Bearer {KEY_A}"}


# -- the commands Discord is given ----------------------------------------------------------


async def synced_commands(fake: FakeDiscord, settings: Any) -> dict[str, Any]:
    async with running_bot(fake, settings) as bot:
        assert isinstance(bot, SunoBot)
    return {command["name"]: command for command in fake.registered_commands["global"]}


async def test_the_commands_install_to_servers_and_accounts_and_the_server_key_to_managers(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    commands = await synced_commands(fake, keyed_settings(relay, database))
    suno, server_key = commands["suno"], commands["suno-server-key"]
    assert sorted(suno["integration_types"]) == [0, 1]  # server and user installs
    assert sorted(suno["contexts"]) == [0, 1, 2]  # servers, the bot's DMs, private channels
    assert suno["default_member_permissions"] is None
    assert {o["name"] for o in suno["options"]} == {"status", "key"}
    [key] = [o for o in suno["options"] if o["name"] == "key"]
    assert {o["name"] for o in key["options"]} == {"set", "status", "remove"}
    assert all(not o.get("options") for o in key["options"])  # the key is never an option
    assert server_key["integration_types"] == [0]
    assert server_key["contexts"] == [0]
    assert int(server_key["default_member_permissions"]) == MANAGE_GUILD
    assert SECRET not in str(fake.registered_commands)


async def test_without_key_encryption_secret_there_are_no_key_commands(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    commands = await synced_commands(fake, bot_settings(relay, database))
    assert set(commands) == {"suno"}
    assert [o["name"] for o in commands["suno"]["options"]] == ["status"]


# -- user installs ----------------------------------------------------------------------------


async def test_where_the_bot_is_not_a_member_only_the_interaction_edits_and_says_when_it_ends(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.add_task("alice-away", running_task("alice-away"), key=KEY_A)
    settings = keyed_settings(relay, database, INTERACTION_EXPIRY_MARGIN_SECONDS=60)
    async with running_bot(fake, settings):
        await set_key(fake, KEY_A)
        # Asked in a server the bot is not in, through Alice's own install, with a token
        # that has less than the margin left: the next update is the last.
        aged = datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=30)
        asked = await fake.interact(
            options={"task_id": "alice-away"},
            user_install_guild_id=4_242_424_242_424_242,
            created_at=aged,
        )
        await asked.wait_callback()
        await fake.wait_for(lambda: shows(fake, asked, "Live updates ended"))
    message = fake.message_for(asked)
    assert message is not None and not message.ephemeral
    assert {edit.via for edit in message.edits} <= {"callback", "webhook"}
    assert not [r for r in fake.requests if "/channels/" in r.path]
    assert keys_used_for(relay, "alice-away") == {f"Bearer {KEY_A}"}


# -- logs -----------------------------------------------------------------------------------


async def test_a_key_never_reaches_the_logs_of_a_real_bot_process_even_at_debug(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(SERVER_KEY)
    relay.add_task("alice-song", music_timeline("alice-song"), key=KEY_A)
    relay.add_task("alice-stuck", running_task("alice-stuck"), key=KEY_A)
    env = {"LOG_LEVEL": "DEBUG", "KEY_ENCRYPTION_SECRET": f"{SECRET},{OLD_SECRET}"}
    async with BotProcess.against(fake, relay, database, **env) as bot:
        await fake.wait_ready(timeout=30)
        await bot.wait_for_line("connected as")
        assert "works and is saved" in await set_key(fake, KEY_A)
        assert "works and is saved" in await set_key(fake, SERVER_KEY, server=True)
        assert "did not accept" in await set_key(fake, KEY_B, user_id=BOB)
        assert "too long" in await set_key(fake, KEY_B * 300, user_id=BOB)
        done = await status(fake, "alice-song")
        stuck = await status(fake, "alice-stuck")
        await fake.wait_for(lambda: shows(fake, done, "Done"))
        relay.revoke_key(KEY_A)  # rejected mid-watch: logged, without the key
        await fake.wait_for(lambda: shows(fake, stuck, "no longer accepts"), timeout=30)
        assert "is removed" in await run(fake, "remove", server=True)
        await bot.stop()
    assert bot.lines_with("DEBUG"), "the bot did not log at DEBUG"
    assert bot.lines_with("relay key #"), bot.output
    for secret in (KEY_A, KEY_B, SERVER_KEY, SECRET, OLD_SECRET):
        assert secret not in bot.output
        assert secret[:-4] not in bot.output
    sent = str([(r.path, r.json) for r in fake.requests])
    for secret in (KEY_A, KEY_B, SERVER_KEY):
        assert secret[:-4] not in sent  # not in any message, command or sync payload


# -- on PostgreSQL ----------------------------------------------------------------------------


async def pg_rows(postgres_url: str, sql: str) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(postgres_url)
    try:
        return [tuple(record.values()) for record in await connection.fetch(sql)]
    finally:
        await connection.close()


async def test_on_postgresql_members_keys_follow_their_tasks_and_a_removed_key_ends_its_watches(
    fake: FakeDiscord, relay: FakeRelay, database: Path, postgres_url: str
) -> None:
    relay.accept_key(KEY_A)
    relay.accept_key(KEY_B)
    relay.add_task("song-bob", music_timeline("song-bob"), key=KEY_B)
    relay.add_task("alice-long", running_task("alice-long"), key=KEY_A)
    settings = keyed_settings(relay, database, DATABASE_URL=postgres_url)
    async with running_bot(fake, settings) as bot:
        assert "works and is saved" in await set_key(fake, KEY_A, user_id=ALICE)
        assert "works and is saved" in await set_key(fake, KEY_B, user_id=BOB)
        bob = await status(fake, "song-bob", user_id=BOB)
        alice = await status(fake, "alice-long", user_id=ALICE)
        # On PostgreSQL a new watch is followed once its task's lease is taken.
        own = await bot.keys.status(KeyOwner.USER, ALICE)
        assert own is not None
        await fake.wait_for(lambda: bot.tracker.polls((own.id, "alice-long")))
        await fake.wait_for(lambda: shows(fake, alice, "Generating"))
        answer = await run(fake, "remove", user_id=ALICE)
        await fake.wait_for(lambda: shows(fake, alice, "Live updates ended"))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
        assert "no relay key" in await run(fake, "status", user_id=ALICE)
    assert answer.endswith(": 1.")
    message = fake.message_for(bob)
    assert message is not None and "Live updates ended" not in text_of(message)
    assert keys_used_for(relay, "song-bob") == {f"Bearer {KEY_B}"}
    assert keys_used_for(relay, "alice-long") == {f"Bearer {KEY_A}"}
    [(owner, ciphertext)] = await pg_rows(
        postgres_url, "SELECT owner_id, ciphertext FROM relay_keys"
    )
    assert owner == BOB
    assert Fernet(SECRET.encode()).decrypt(ciphertext) == KEY_B.encode()
    assert KEY_B[:-4].encode() not in ciphertext
    watches = await pg_rows(
        postgres_url, "SELECT task_id, outcome, key_id FROM watches ORDER BY id"
    )
    assert [(task, outcome) for task, outcome, _ in watches] == [
        ("song-bob", "finished"),
        ("alice-long", "lost"),
    ]
    assert watches[1][2] is None  # the removed key's row is gone, and no watch names it
