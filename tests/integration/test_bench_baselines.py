"""The baselines on real servers: PostgreSQL and Redis installed from the Debian packages
and started by the bench itself, tiny workloads through every client configuration.

Never skipped: a machine that cannot install the packages fails here, saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import psutil
import pytest
from redis.asyncio import Redis

from sync_worker.bench import services, workloads
from sync_worker.bench.baseline_postgres import PostgresSystem
from sync_worker.bench.baseline_redis import RedisSystem
from sync_worker.bench.runner import Options, measure, play
from sync_worker.bench.system import ClientConfig, System
from sync_worker.bench.workloads import Workload
from tests.bench_support import TINY, assert_sound

# Budgets so large that every closed-loop run drains its lines: no timing is asserted.
OPTIONS = Options(TINY, seed=11, quick=True, seconds=600.0, max_lag_s=600.0)
SWEPT = (ClientConfig(1, 1), ClientConfig(8, 1), ClientConfig(8, 5))

SYSTEMS: dict[str, Callable[[], System]] = {"postgres": PostgresSystem, "redis": RedisSystem}


@pytest.fixture(params=sorted(SYSTEMS))
async def system(request: pytest.FixtureRequest) -> AsyncIterator[System]:
    try:
        services.ensure_installed()
    except services.ServiceError as error:
        pytest.fail(f"the bench baselines need PostgreSQL and Redis from Debian: {error}")
    started = SYSTEMS[request.param]()
    # One client, many, many with batches: the races and the pipelines both exercised.
    started.configs = lambda quick: SWEPT  # type: ignore[method-assign]
    async with started:
        yield started


@pytest.mark.parametrize("name", [workloads.HOT_SKU, workloads.SPREAD_ZIPF])
async def test_a_baseline_drains_stock_without_overselling_in_every_configuration(
    system: System, name: str
) -> None:
    workload = workloads.build(name, TINY, OPTIONS.seed)
    assert isinstance(workload, Workload)

    result = await play(system, workload, OPTIONS, [], lambda _: None)

    assert [run.config for run in result.runs] == list(SWEPT)
    assert all(run.complete for run in result.runs)
    assert_sound(result)
    assert result.best.resent > 0  # the dedupe was exercised...
    assert result.best.duplicates_answered == result.best.resent  # ...and caught them all
    # The server's CPU is measured (in 10 ms ticks: a tiny run may show none).
    assert all(run.cpu_ms_per_1000.keys() == {"client", "server"} for run in result.runs)


async def test_a_baseline_keeps_the_invariants_through_the_burst_and_the_sweep(
    system: System,
) -> None:
    burst = workloads.build(workloads.BURST, TINY, OPTIONS.seed)
    sweep = workloads.build(workloads.RATE_SWEEP, TINY, OPTIONS.seed)

    for built in (burst, sweep):
        assert_sound(await play(system, built, OPTIONS, [], lambda _: None))


async def test_each_run_starts_from_fresh_books(system: System) -> None:
    workload = workloads.build(workloads.HOT_SKU, TINY, OPTIONS.seed)
    assert isinstance(workload, Workload)

    first = await measure(system, workload, ClientConfig(4, 1), OPTIONS)
    second = await measure(system, workload, ClientConfig(4, 1), OPTIONS)

    # The same order ids again: on stale books they would all be duplicates.
    assert second.duplicates_answered == first.duplicates_answered == first.resent
    assert second.decisions == first.decisions == len(workload.lines)


async def test_postgres_runs_durable_on_loopback_as_the_postgres_user() -> None:
    system = PostgresSystem()
    async with system:
        (pid,) = system.cpu_roles()["server"]
        assert psutil.Process(pid).username() == "postgres"
        connection = await asyncpg.connect(system.dsn)
        try:
            settings = {
                name: await connection.fetchval(f"SHOW {name}")
                for name in ("fsync", "synchronous_commit", "listen_addresses")
            }
        finally:
            await connection.close()
        directory = system._server.directory if system._server else None
    assert settings == {"fsync": "on", "synchronous_commit": "on", "listen_addresses": "127.0.0.1"}
    assert not psutil.pid_exists(pid)
    assert directory is not None
    assert not directory.exists()


async def test_redis_runs_with_an_append_only_file_synced_every_second() -> None:
    system = RedisSystem()
    async with system:
        server = system._server
        assert server is not None
        client = Redis(host=server.host, port=server.port, decode_responses=True)
        try:
            settings = {
                name: (await client.config_get(name))[name]
                for name in ("appendonly", "appendfsync", "save", "bind", "dir")
            }
        finally:
            await client.aclose()
    assert settings == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "save": "",
        "bind": "127.0.0.1",
        "dir": str(server.directory),
    }
    assert not psutil.pid_exists(server.pid)
    assert not server.directory.exists()
