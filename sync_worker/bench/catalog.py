"""The systems ``stockcast bench`` knows, by name. Adding one is one entry here; each
factory imports its system only when called, so a missing client library for one
system never stops the others."""

from __future__ import annotations

from collections.abc import Callable

from sync_worker.bench.system import System


def _floor() -> System:
    from sync_worker.bench.floor import FloorSystem

    return FloorSystem()


def _postgres() -> System:
    from sync_worker.bench.baseline_postgres import PostgresSystem

    return PostgresSystem()


def _redis() -> System:
    from sync_worker.bench.baseline_redis import RedisSystem

    return RedisSystem()


def _stockcast(workers: int = 1) -> System:
    from sync_worker.bench.stockcast_system import StockcastSystem

    return StockcastSystem(workers=workers)


SYSTEMS: dict[str, Callable[[], System]] = {
    "floor": _floor,
    "postgres": _postgres,
    "redis": _redis,
    "stockcast": _stockcast,
}
"""Name -> factory, in report order."""


def systems(*, stockcast_workers: int = 1) -> dict[str, Callable[[], System]]:
    """``SYSTEMS``, the stockcast system with ``stockcast_workers`` worker processes."""
    return {**SYSTEMS, "stockcast": lambda: _stockcast(stockcast_workers)}
