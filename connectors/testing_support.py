"""Mechanics the contract checks share: expecting an error, and hunting leaked secrets.

Kept apart from the checks so each side's checks read as scenarios; nothing here knows a
platform.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable


@runtime_checkable
class HarnessSecrets(Protocol):
    """Optional on a harness: the credentials its connector is given (app secret, access
    token…), which no error message, repr or log line may ever contain."""

    @property
    def secrets(self) -> Collection[str]: ...


@runtime_checkable
class LosesAnswers(Protocol):
    """Optional on a harness: the platform applies the next write but its answer is lost
    (a timeout after the write landed), the case a retry must not apply twice."""

    def lose_next_answer(self) -> None: ...


class NotApplicable(Exception):
    """The check does not apply to this harness (e.g. the platform lists every SKU)."""


_E = TypeVar("_E", bound=BaseException)


async def raised(kind: type[_E], attempt: Awaitable[object], what: str) -> _E:
    """The error awaiting ``attempt`` raised; anything but a ``kind`` fails the check."""
    try:
        await attempt
    except kind as error:
        return error
    except Exception as error:
        raise AssertionError(f"{what}: expected {kind.__name__}, got {error!r}") from error
    raise AssertionError(f"{what}: expected {kind.__name__}, nothing was raised")


def raised_now(kind: type[_E], attempt: Callable[[], object], what: str) -> _E:
    """``raised`` for a plain call (``verify``, ``decode``)."""
    try:
        attempt()
    except kind as error:
        return error
    except Exception as error:
        raise AssertionError(f"{what}: expected {kind.__name__}, got {error!r}") from error
    raise AssertionError(f"{what}: expected {kind.__name__}, nothing was raised")


class Transcript(logging.Handler):
    """What a check's errors, reprs and log lines said, scanned for the harness's secrets.

    While entered it hears every logger at DEBUG, because a token in a debug line leaks as
    surely as one in an error message once someone turns debugging on in production.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self._root_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"log {record.name}: {record.getMessage()}")
        if record.exc_info:
            self.texts.append(logging.Formatter().formatException(record.exc_info))

    def said(self, thing: object) -> None:
        """Record ``str`` and ``repr`` of ``thing`` and, for an error, of its whole chain."""
        seen: set[int] = set()
        current: object = thing
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.texts += [str(current), repr(current)]
            if not isinstance(current, BaseException):
                break
            self.texts += [repr(arg) for arg in current.args]
            current = current.__cause__ or current.__context__

    def __enter__(self) -> Transcript:
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._root_level)

    def assert_keeps(self, secrets: Collection[str]) -> None:
        for index, secret in enumerate(secrets):
            for text in self.texts:
                # Never print the secret itself, not even in the failure that found it.
                assert secret not in text, (
                    f"secret #{index} ({len(secret)} chars) leaked: {text.replace(secret, '***')}"
                )


def secrets_of(harness: object) -> Collection[str]:
    if not isinstance(harness, HarnessSecrets):
        raise NotApplicable("the harness declares no `secrets` to look for")
    secrets = [secret for secret in harness.secrets if secret]
    assert secrets, "a harness with `secrets` must name at least one"
    return secrets
