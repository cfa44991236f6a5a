"""The outbound connector for the simulated platforms, in every write mode they offer.

Registered as the ``simulator`` entry point like any third-party connector. Every
failure leaves as a ``ConnectorError`` subclass so the publisher can decide between
retrying, backing off and giving up without knowing HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Final, NamedTuple, Self, TypeVar

import aiohttp
from yarl import URL

from connectors.base import (
    ConnectorError,
    PushResult,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.http_support import SessionClient, parse_retry_after
from connectors.simulator.stock_api import (
    InvalidBody,
    StockAdjustment,
    StockPush,
    adjustments_path,
    decode_adjustment_answer,
    decode_count,
    decode_push_answer,
    encode_adjustment,
    encode_push,
    stock_path,
)

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_WRITE_MODES: Final = frozenset({WriteMode.DELTA, WriteMode.COMPARE_AND_SWAP})
CAS_ATTEMPTS: Final = 20
"""Compare-and-set tries per write; each conflict means buyers took units in between."""
_MAX_DETAIL_CHARS: Final = 200
_JSON: Final = {"Content-Type": "application/json"}

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class _Answer(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None


class SimulatorConnector(SessionClient):
    """Writes counts to a simulator server at ``base_url``; serves every simulated channel.

    Options: ``base_url`` (required), ``timeout_s`` (total per request, default 5),
    ``write_modes`` (comma-separated, default ``delta,compare_and_swap``; ``absolute``
    only when listed, as it is unsafe wherever buyers are buying).
    """

    platform: ClassVar[str] = "simulator"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        write_modes: frozenset[WriteMode] = DEFAULT_WRITE_MODES,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not write_modes:
            raise ValueError("write_modes must name at least one mode")
        super().__init__(timeout_s=timeout_s, name="simulator")
        self._base_url = URL(base_url)
        self._write_modes = write_modes

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], listings: Mapping[str, str] | None = None
    ) -> Self:
        """The simulator lists every SKU under stockcast's own code: ``listings`` is unused."""
        base_url = options.get("base_url")
        if not base_url:
            raise ValueError("the simulator connector needs the option 'base_url'")
        timeout = options.get("timeout_s")
        modes = options.get("write_modes")
        return cls(
            base_url,
            timeout_s=DEFAULT_TIMEOUT_S if timeout is None else float(timeout),
            write_modes=DEFAULT_WRITE_MODES if modes is None else parse_write_modes(modes),
        )

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        return self._write_modes

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        if mode not in self._write_modes:
            raise Rejected(f"simulator connector is not configured for {mode} writes")
        if mode is WriteMode.DELTA:
            result = await self._adjust(update)
        elif mode is WriteMode.COMPARE_AND_SWAP:
            result = await self._compare_and_swap(update)
        else:
            result = await self._set(update)
        log.debug(
            "wrote %s/%s v%d %s: %s", update.channel, update.sku, update.version, mode, result
        )
        return result

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        """One GET per SKU: the simulator has no batch read."""
        counts = {}
        for sku in skus:
            answer = await self._send("GET", stock_path(channel, sku))
            counts[sku] = _decoded(decode_count, _success(answer)).displayed
        return counts

    async def _adjust(self, update: StockUpdate) -> PushResult:
        """POST the delta; the idempotency key makes a retry of a landed write a no-op."""
        body = encode_adjustment(StockAdjustment(update.delta, update.idempotency_key))
        answer = await self._send("POST", adjustments_path(update.channel, update.sku), body)
        adjusted = _decoded(decode_adjustment_answer, _success(answer))
        return PushResult(applied=adjusted.applied, displayed=adjusted.displayed)

    async def _compare_and_swap(self, update: StockUpdate) -> PushResult:
        """Read, then set count + delta only if unchanged; the version makes a retry of a
        write that landed answer "not applied" instead of applying the delta again."""
        path = stock_path(update.channel, update.sku)
        current = _decoded(decode_count, _success(await self._send("GET", path))).displayed
        for _ in range(CAS_ATTEMPTS):
            target = max(0, current + update.delta)
            push = StockPush(target, update.version, update.event_time_ms, expected=current)
            answer = await self._send("PUT", path, encode_push(push))
            if answer.status == 409:  # buyers changed the count: the body says what it is now
                current = _decoded(decode_count, answer.body).displayed
                continue
            pushed = _decoded(decode_push_answer, _success(answer))
            # Not applied means this version landed on an earlier try whose answer was lost.
            # What it applied then is unknown; claiming no reclaimed units is the safe side.
            applied = target - current if pushed.applied else max(update.delta, 0)
            return PushResult(applied=applied, displayed=pushed.displayed)
        raise TransientError(f"count of {update.sku} kept changing over {CAS_ATTEMPTS} tries")

    async def _set(self, update: StockUpdate) -> PushResult:
        """PUT the quantity outright, trusting nothing sold since the last write."""
        push = StockPush(update.quantity, update.version, update.event_time_ms)
        answer = await self._send("PUT", stock_path(update.channel, update.sku), encode_push(push))
        pushed = _decoded(decode_push_answer, _success(answer))
        return PushResult(applied=update.delta if pushed.applied else 0, displayed=pushed.displayed)

    async def _send(self, method: str, path: str, body: bytes | None = None) -> _Answer:
        session = self.session()
        url = self._base_url.joinpath(path, encoded=True)
        try:
            async with session.request(method, url, data=body, headers=_JSON) as response:
                return _Answer(
                    response.status, await response.read(), response.headers.get("Retry-After")
                )
        except aiohttp.InvalidURL as exc:
            raise Rejected(f"invalid simulator URL: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{method} {url} failed: {exc!r}") from exc


def parse_write_modes(option: str) -> frozenset[WriteMode]:
    """``"delta,compare_and_swap"`` -> the modes; an unknown name is a settings error."""
    names = [name.strip() for name in option.split(",") if name.strip()]
    known = ", ".join(WriteMode)
    try:
        return frozenset(WriteMode(name) for name in names)
    except ValueError:
        raise ValueError(f"write_modes must list some of {known}, got {option!r}") from None


def _success(answer: _Answer) -> bytes:
    error = error_for_status(
        answer.status,
        answer.body.decode(errors="replace")[:_MAX_DETAIL_CHARS],
        answer.retry_after,
        time.time(),
    )
    if error is not None:
        raise error
    return answer.body


def _decoded(decode: Callable[[bytes], _T], body: bytes) -> _T:
    """Decode an answer; a garbled one may be a glitch, and every write is safe to retry."""
    try:
        return decode(body)
    except InvalidBody as exc:
        raise TransientError(f"simulator answered an unreadable body: {exc}") from exc


def error_for_status(
    status: int, detail: str, retry_after: str | None, now_s: float
) -> ConnectorError | None:
    """Map an HTTP answer to the SDK's error tree; None for success."""
    if 200 <= status < 300:
        return None
    message = f"simulator answered {status}: {detail}"
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after, now_s=now_s))
    if status >= 500:
        return TransientError(message)
    return Rejected(message)
