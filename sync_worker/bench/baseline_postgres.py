"""``postgres``: the conditional update most shops would write, on PostgreSQL 15 with
``fsync=on`` and ``synchronous_commit=on``, so an answer is given only once it is on disk.

A line is decided by

    INSERT INTO seen (order_id) VALUES ($1) ON CONFLICT DO NOTHING   -- dedupe
    UPDATE stock SET qty = qty - $1 WHERE sku = $2 AND qty >= $1      -- the quoted update

in one transaction: a re-sent order id inserts nothing and is answered ``duplicate``;
otherwise the update either takes the units (accepted) or matches no row (rejected).
Its best configuration: both statements run server-side in one PL/pgSQL function, one
round trip per request; a request of ``batch`` lines is one transaction (one commit),
its lines sorted by SKU so that concurrent transactions lock rows in the same order and
never deadlock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from sync_worker.bench import services
from sync_worker.bench.system import ClientConfig, Decider, ServerSystem
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.events import Outcome

SCHEMA = """
CREATE TABLE stock (sku text PRIMARY KEY, qty integer NOT NULL);
CREATE TABLE seen (order_id text PRIMARY KEY);

CREATE FUNCTION decide_lines(order_ids text[], skus text[], qtys integer[])
RETURNS smallint[] LANGUAGE plpgsql AS $$
DECLARE
    outcomes smallint[] := '{}';
BEGIN
    FOR i IN 1 .. cardinality(order_ids) LOOP
        INSERT INTO seen (order_id) VALUES (order_ids[i]) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            outcomes := outcomes || 2::smallint;  -- duplicate
            CONTINUE;
        END IF;
        UPDATE stock SET qty = qty - qtys[i] WHERE sku = skus[i] AND qty >= qtys[i];
        outcomes := outcomes || (CASE WHEN FOUND THEN 0 ELSE 1 END)::smallint;
    END LOOP;
    RETURN outcomes;
END $$;
"""
DECIDE = "SELECT decide_lines($1::text[], $2::text[], $3::integer[])"
_OUTCOMES = (Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE)
_RETRIES = 5


class PostgresSystem(ServerSystem[services.RunningPostgres]):
    name = "postgres"

    async def start(self) -> None:
        services.ensure_installed(["postgresql"])
        self._server = self._servers.enter_context(services.postgres())
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(SCHEMA)
        finally:
            await connection.close()

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._server.dsn

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        connection = await asyncpg.connect(self.dsn)
        try:
            async with connection.transaction():
                await connection.execute("TRUNCATE stock, seen")
                await connection.copy_records_to_table(
                    "stock", records=list(stock.items()), columns=["sku", "qty"]
                )
            await connection.execute("ANALYZE stock")
        finally:
            await connection.close()
        pool = await asyncpg.create_pool(
            self.dsn, min_size=config.concurrency, max_size=config.concurrency
        )
        try:
            yield PostgresBooks(pool)
        finally:
            await pool.close()


class PostgresBooks(Decider):
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        order = sorted(range(len(lines)), key=lambda i: (lines[i].sku, lines[i].order_id))
        arguments = (
            [lines[i].order_id for i in order],
            [lines[i].sku for i in order],
            [lines[i].qty for i in order],
        )
        codes = await self._fetch(arguments)
        outcomes: list[Outcome] = [Outcome.REJECTED] * len(lines)
        for position, index in enumerate(order):
            outcomes[index] = _OUTCOMES[int(codes[position])]
        return outcomes

    async def _fetch(self, arguments: tuple[list[str], list[str], list[int]]) -> list[int]:
        for attempt in range(_RETRIES):
            try:
                codes = await self._pool.fetchval(DECIDE, *arguments)
                return [int(code) for code in codes]
            except asyncpg.exceptions.DeadlockDetectedError:
                # Sorted lines should never deadlock; a retry is still what a user would do.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def units_left(self) -> Mapping[str, int]:
        rows = await self._pool.fetch("SELECT sku, qty FROM stock")
        return {str(row["sku"]): int(row["qty"]) for row in rows}
