"""Member and server relay keys: encrypted at rest, chosen per request, decrypted only to ask."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from bot.suno.client import RelayClient
from bot.suno.errors import RelayError, RelayKeyRejected, TaskNotFound
from bot.suno.models import Task
from bot.tracking.store import StoredKey

log = logging.getLogger(__name__)

# What a relay key may look like: printable ASCII without spaces (it goes into an HTTP
# header), long enough that its last 4 characters give little away.
KEY_MIN_CHARS = 16
KEY_MAX_CHARS = 512
_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")


def new_secret() -> str:
    """A fresh value for KEY_ENCRYPTION_SECRET."""
    return Fernet.generate_key().decode("ascii")


class KeyOwner(StrEnum):
    USER = "user"
    GUILD = "guild"


class KeySource(StrEnum):
    """Whose key a request was made with: the requester's, the server's or the operator's."""

    OWN = "own"
    SERVER = "server"
    BOT = "bot"


@dataclass(frozen=True, slots=True)
class KeyChoice:
    source: KeySource
    key_id: int | None  # the stored key's row; None for the operator's key


OPERATOR_KEY = KeyChoice(KeySource.BOT, None)


class KeyUnusable(RelayKeyRejected):
    """A stored key that can no longer be used: removed, or not readable with the
    configured secrets. Its watches end as if the relay had rejected it."""

    message_key = "error.member_key_rejected"


class KeyRemoved(KeyUnusable):
    """The stored key's row is gone: its owner removed it (perhaps through another process
    of a cluster). Its watches end saying live updates ended, as on removal."""


class InvalidKey(ValueError):
    """What a member pasted is not a relay key; `reason` is a catalog key saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_key(text: str) -> str:
    """The key a member pasted, trimmed; InvalidKey when it cannot be one."""
    key = text.strip()
    if not key:
        raise InvalidKey("key.invalid.empty")
    if len(key) > KEY_MAX_CHARS:
        raise InvalidKey("key.invalid.too_long")
    if _KEY_SHAPE.fullmatch(key) is None:
        raise InvalidKey("key.invalid.characters")
    if len(key) < KEY_MIN_CHARS:
        raise InvalidKey("key.invalid.too_short")
    return key


class KeyRing:
    """Fernet encryption with the operator's secrets: the first encrypts, all decrypt."""

    def __init__(self, secrets: Sequence[SecretStr]) -> None:
        if not secrets:
            raise ValueError("a key ring needs at least one secret")
        fernets = [Fernet(secret.get_secret_value().encode("ascii")) for secret in secrets]
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def encrypt(self, key: str) -> bytes:
        return self._current.encrypt(key.encode("utf-8"))

    def decrypt(self, token: bytes) -> SecretStr:
        """The key in `token`; KeyUnusable when no configured secret opens it."""
        try:
            return SecretStr(self._all.decrypt(token).decode("utf-8"))
        except (InvalidToken, UnicodeDecodeError):
            raise KeyUnusable(
                "a stored key cannot be decrypted with KEY_ENCRYPTION_SECRET"
            ) from None

    def is_current(self, token: bytes) -> bool:
        """Whether `token` was encrypted with the first (current) secret."""
        try:
            self._current.decrypt(token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """`token` encrypted anew with the current secret; KeyUnusable if unreadable."""
        try:
            return self._all.rotate(token)
        except InvalidToken:
            raise KeyUnusable(
                "a stored key cannot be decrypted with KEY_ENCRYPTION_SECRET"
            ) from None


class KeyStore(Protocol):
    """Where encrypted keys are kept (the bot's store)."""

    async def put_key(
        self, owner_kind: str, owner_id: int, ciphertext: bytes, last4: str
    ) -> StoredKey: ...

    async def get_key(self, owner_kind: str, owner_id: int) -> StoredKey | None: ...

    async def key_by_id(self, key_id: int) -> StoredKey | None: ...

    async def all_keys(self) -> list[StoredKey]: ...

    async def replace_ciphertext(self, key_id: int, old: bytes, new: bytes) -> None: ...

    async def remove_key(self, key_id: int) -> list[int]: ...


class KeyCheck(StrEnum):
    """What the relay said of a key tried on a task id nobody has."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNCHECKED = "unchecked"  # the relay did not answer usefully: try again later


class MemberKeys:
    """The keys members and servers brought: which one a request uses, and the key itself,
    decrypted just for that request. Off (`enabled` False) without KEY_ENCRYPTION_SECRET."""

    def __init__(self, store: KeyStore, ring: KeyRing | None) -> None:
        self._store = store
        self._ring = ring

    @property
    def enabled(self) -> bool:
        return self._ring is not None

    async def reencrypt_all(self) -> int:
        """Re-encrypts every key not under the current secret; returns how many changed."""
        if self._ring is None:
            return 0
        changed = 0
        for stored in await self._store.all_keys():
            try:
                if await self._refresh(stored):
                    changed += 1
            except KeyUnusable:
                log.warning(
                    "relay key #%d (%s) cannot be decrypted with KEY_ENCRYPTION_SECRET; its "
                    "owner must set it again",
                    stored.id,
                    stored.owner_kind,
                )
        return changed

    async def count_readable(self) -> tuple[int, int]:
        """How many keys are stored, and how many of them no configured secret decrypts."""
        stored = await self._store.all_keys()
        unreadable = 0
        for key in stored:
            try:
                self._decrypt(key)
            except KeyUnusable:
                unreadable += 1
        return len(stored), unreadable

    def _decrypt(self, stored: StoredKey) -> SecretStr:
        if self._ring is None:
            raise KeyUnusable("member keys are off")
        return self._ring.decrypt(stored.ciphertext)

    async def _refresh(self, stored: StoredKey) -> bool:
        assert self._ring is not None
        if self._ring.is_current(stored.ciphertext):
            return False
        rotated = self._ring.rotate(stored.ciphertext)
        await self._store.replace_ciphertext(stored.id, stored.ciphertext, rotated)
        return True

    async def choose(self, user_id: int, guild_id: int | None) -> KeyChoice:
        """The key a request of `user_id` in `guild_id` uses: theirs, the server's, the bot's."""
        if self._ring is None:
            return OPERATOR_KEY
        own = await self._store.get_key(KeyOwner.USER, user_id)
        if own is not None:
            return KeyChoice(KeySource.OWN, own.id)
        if guild_id is not None:
            server = await self._store.get_key(KeyOwner.GUILD, guild_id)
            if server is not None:
                return KeyChoice(KeySource.SERVER, server.id)
        return OPERATOR_KEY

    async def secret(self, key_id: int) -> SecretStr:
        """The key of row `key_id`, decrypted for one request; KeyRemoved if it is gone,
        KeyUnusable if it cannot be read."""
        if self._ring is None:
            raise KeyUnusable("member keys are off")
        stored = await self._store.key_by_id(key_id)
        if stored is None:
            raise KeyRemoved("the relay key was removed")
        key = self._decrypt(stored)
        await self._refresh(stored)
        return key

    async def status(self, owner: KeyOwner, owner_id: int) -> StoredKey | None:
        return await self._store.get_key(owner, owner_id)

    async def save(self, owner: KeyOwner, owner_id: int, key: str) -> StoredKey:
        """Stores `key` (already checked) encrypted for `owner`, replacing theirs."""
        if self._ring is None:
            raise RuntimeError("member keys are off")
        return await self._store.put_key(owner, owner_id, self._ring.encrypt(key), key[-4:])

    async def remove(self, key_id: int) -> list[int]:
        """Deletes the key; the ids of the active watches that ended with it."""
        return await self._store.remove_key(key_id)


async def check_key(relay: RelayClient, key: str) -> KeyCheck:
    """Asks the relay for a random, well-formed task id with `key`: "not found" means the
    relay took the key, 401/403 that it did not."""
    try:
        await relay.fetch(f"key-check-{uuid.uuid4().hex}", key=SecretStr(key))
    except TaskNotFound:
        return KeyCheck.ACCEPTED
    except RelayKeyRejected:
        return KeyCheck.REJECTED
    except RelayError as exc:
        log.info("could not check a relay key: %s", exc)
        return KeyCheck.UNCHECKED
    return KeyCheck.ACCEPTED


class KeyedRelay:
    """The relay as the tracker polls it: each request with the key its watches chose."""

    def __init__(self, relay: RelayClient, keys: MemberKeys) -> None:
        self._relay = relay
        self._keys = keys

    async def fetch(self, task_id: str, key_id: int | None = None) -> Task:
        key = None if key_id is None else await self._keys.secret(key_id)
        return await self._relay.fetch(task_id, key=key)

    async def fetch_many(self, task_ids: Sequence[str], key_id: int | None = None) -> list[Task]:
        key = None if key_id is None else await self._keys.secret(key_id)
        return await self._relay.fetch_many(task_ids, key=key)

    def forget(self, task_id: str) -> None:
        self._relay.forget(task_id)
