"""``redis``: check-and-decrement in one Lua script, on Redis 7 with ``appendonly yes``
and ``appendfsync everysec`` (an answered line can be lost if the host dies within the
second: weaker durability than PostgreSQL or stockcast, which the report states).

The script records the order id in the SKU's hash of decided ids (``HSETNX``: a re-sent
id is answered ``duplicate``), then takes the units only if enough are left; Redis runs
it atomically. It is loaded once and called with ``EVALSHA``; a request of ``batch``
lines is one pipeline. Both keys of a SKU share a hash tag, as Redis Cluster requires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from itertools import islice
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis

from sync_worker.bench import services
from sync_worker.bench.system import ClientConfig, Decider, ServerSystem
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.events import Outcome

CHECK_AND_DECREMENT = """
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 0 then
    return 2
end
local left = tonumber(redis.call('GET', KEYS[1]))
local wanted = tonumber(ARGV[2])
if left ~= nil and left >= wanted then
    redis.call('DECRBY', KEYS[1], wanted)
    return 0
end
return 1
"""
"""KEYS: the SKU's stock, its decided order ids. ARGV: order id, units.
Returns 0 accepted, 1 rejected, 2 duplicate."""

_OUTCOMES = (Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE)
_CHUNK = 1_000
_T = TypeVar("_T")


def stock_key(sku: str) -> str:
    return f"stock:{{{sku}}}"


def seen_key(sku: str) -> str:
    return f"seen:{{{sku}}}"


class RedisSystem(ServerSystem[services.RunningRedis]):
    name = "redis"

    async def start(self) -> None:
        services.ensure_installed(["redis-server"])
        self._server = self._servers.enter_context(services.redis())

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        if self._server is None:
            raise RuntimeError("Redis is not started")
        pool = BlockingConnectionPool(
            host=self._server.host,
            port=self._server.port,
            max_connections=config.concurrency,
            timeout=None,
        )
        client = Redis(connection_pool=pool)
        try:
            await client.flushall()
            for chunk in _chunks(list(stock.items())):
                await client.mset({stock_key(sku): units for sku, units in chunk})
            sha = str(await client.script_load(CHECK_AND_DECREMENT))
            yield RedisBooks(client, sha, list(stock))
        finally:
            await client.aclose()
            await pool.disconnect()


class RedisBooks(Decider):
    def __init__(self, client: Redis, sha: str, skus: list[str]) -> None:
        self._client = client
        self._sha = sha
        self._skus = skus

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        if len(lines) == 1:
            (line,) = lines
            code = await self._client.evalsha(
                self._sha, 2, stock_key(line.sku), seen_key(line.sku), line.order_id, line.qty
            )
            return [_OUTCOMES[int(code)]]
        async with self._client.pipeline(transaction=False) as pipe:
            for line in lines:
                pipe.evalsha(
                    self._sha, 2, stock_key(line.sku), seen_key(line.sku), line.order_id, line.qty
                )
            codes = await pipe.execute()
        return [_OUTCOMES[int(code)] for code in codes]

    async def units_left(self) -> Mapping[str, int]:
        left: dict[str, int] = {}
        for chunk in _chunks(self._skus):
            values = await self._client.mget([stock_key(sku) for sku in chunk])
            left.update({sku: int(value or 0) for sku, value in zip(chunk, values, strict=True)})
        return left


def _chunks(items: list[_T]) -> Iterator[list[_T]]:
    source = iter(items)
    while chunk := list(islice(source, _CHUNK)):
        yield chunk
