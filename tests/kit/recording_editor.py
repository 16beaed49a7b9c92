"""An editor for the tracker that records every edit and answers as scripted."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from bot.render import RenderedMessage
from bot.tracking.editor import EditResult, MessageContent

Path: TypeAlias = Literal["original", "channel"]
Answer: TypeAlias = EditResult | BaseException


@dataclass(frozen=True, slots=True)
class RecordedEdit:
    """One edit the tracker asked for, and what it was answered."""

    path: Path
    application_id: int | None
    token: str | None
    channel_id: int | None
    message_id: int | None
    message: RenderedMessage
    result: EditResult | None  # None when the call raised or was cancelled
    at: float  # time.time() when the call was made (the clock interaction expiry is read on)
    mono: float  # time.monotonic() when the call was made (the clock relay requests are stamped on)

    @property
    def fingerprint(self) -> str:
        return self.message.fingerprint

    @property
    def landed(self) -> bool:
        return self.result is EditResult.OK


@dataclass(slots=True)
class _Rule:
    match: Callable[[RecordedEdit], bool]
    answer: Answer
    times: int | None  # None: every matching call


@dataclass(slots=True)
class RecordingEditor:
    """Implements the tracker's Editor protocol; every call lands in `edits` once it returns.

    Calls answer OK unless a rule says otherwise (the first matching rule wins). `delay`
    slows every call down; while `gate` is set to an unset event, every call waits for it.
    """

    delay: float = 0.0
    gate: asyncio.Event | None = None
    edits: list[RecordedEdit] = field(default_factory=list)
    calls_started: int = 0
    calls_cancelled: int = 0
    _rules: list[_Rule] = field(default_factory=list)

    def answer(
        self,
        answer: Answer,
        *,
        token: str | None = None,
        message_id: int | None = None,
        fingerprint: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer matching calls with `answer` (an EditResult, or an exception to raise)."""

        def match(edit: RecordedEdit) -> bool:
            if token is not None and (edit.path != "original" or edit.token != token):
                return False
            if message_id is not None and (edit.path != "channel" or edit.message_id != message_id):
                return False
            return fingerprint is None or edit.fingerprint == fingerprint

        self._rules.append(_Rule(match, answer, times))

    async def edit_original(
        self, application_id: int, token: str, message: MessageContent
    ) -> EditResult:
        return await self._call("original", message, application_id=application_id, token=token)

    async def edit_channel_message(
        self, channel_id: int, message_id: int, message: MessageContent
    ) -> EditResult:
        return await self._call("channel", message, channel_id=channel_id, message_id=message_id)

    async def _call(
        self,
        path: Path,
        message: MessageContent,
        *,
        application_id: int | None = None,
        token: str | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
    ) -> EditResult:
        assert isinstance(message, RenderedMessage), "the tracker sends rendered messages"
        probe = RecordedEdit(
            path,
            application_id,
            token,
            channel_id,
            message_id,
            message,
            None,
            time.time(),
            time.monotonic(),
        )
        self.calls_started += 1
        answer = self._answer_for(probe)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay > 0:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.calls_cancelled += 1
            self.edits.append(probe)
            raise
        if isinstance(answer, BaseException):
            self.edits.append(probe)
            raise answer
        self.edits.append(dataclasses.replace(probe, result=answer))
        return answer

    def _answer_for(self, edit: RecordedEdit) -> Answer:
        for rule in self._rules:
            if rule.times == 0 or not rule.match(edit):
                continue
            if rule.times is not None:
                rule.times -= 1
            return rule.answer
        return EditResult.OK
