"""Integration fixtures: the worker as a real subprocess against the real broker."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sync_worker.streaming.names import TopicNames
from tests.integration.support import WorkerProcess, free_port


@pytest.fixture
def worker_factory(
    tmp_path: Path, kafka_bootstrap: str, run_id: str
) -> Iterator[Callable[..., WorkerProcess]]:
    """Builds (not yet starts) workers sharing this test's topics and app id."""
    workers: list[WorkerProcess] = []

    def build(channels_toml: str = "", **extra_env: str) -> WorkerProcess:
        index = len(workers)
        data_dir = tmp_path / f"worker-{index}"
        web_port = free_port()
        config = tmp_path / f"stockcast-{index}.toml"
        config.write_text(
            f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\ntopic_prefix = "{run_id}"\n'
            f"partitions = 4\n\n"
            f'[worker]\napp_id = "{run_id}"\ndata_dir = "{data_dir}"\n'
            f'web_port = {web_port}\nlog_level = "info"\n\n'
            # Tests reason about exact counts; the default reserve has its own unit tests.
            f"[ledger]\ndefault_reserve_percent = 0\n{channels_toml}",
            encoding="utf-8",
        )
        worker = WorkerProcess(
            config, data_dir, web_port, tmp_path / f"worker-{index}.log", extra_env=dict(extra_env)
        )
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.stop(signal.SIGKILL)


@pytest.fixture
def topics(run_id: str) -> TopicNames:
    return TopicNames.for_prefix(run_id)
