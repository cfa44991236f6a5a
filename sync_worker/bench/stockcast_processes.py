"""What the ``stockcast`` bench system runs on: its own Kafka broker and a worker.

The broker is a devkafka (KRaft) node of the bench's own, on ports 29092 (clients) and
29192 (controller) with its data under ``var/bench/kafka``, so it never meets a
developer's broker (9092) or the test broker (19092). A lock file makes one bench at a
time its owner: a broker found running there at start is a leftover of an earlier
bench that was killed, and is reused; the bench stops it and deletes its data when it
ends, Ctrl-C and SIGTERM included.

The worker is ``stockcast run --config <file>`` as a subprocess, configured by a file
written here and nothing else: it gets a minimal environment (no ``STOCKCAST_*``
override of the caller's can reach it), runs in its own session (SIGTERM from us, not
the terminal's Ctrl-C) and receives SIGKILL from the kernel if the bench dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from sync_worker import devkafka
from sync_worker.bench.services import ServiceError, die_with_parent, free_port
from sync_worker.filelock import file_lock

BENCH_DIR = devkafka.PROJECT_ROOT / "var" / "bench"
BROKER_PORT = 29092
CONTROLLER_PORT = 29192
WORKER_READY_S = 120.0
_WORKER_STOP_S = 15.0
_WORKER_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


class StockcastError(ServiceError):
    """The stockcast full path could not be started, stopped or did not answer."""


def broker_config(directory: Path = BENCH_DIR) -> devkafka.DevKafkaConfig:
    return devkafka.DevKafkaConfig(
        data_dir=directory / "kafka",
        base_port=BROKER_PORT,
        controller_base_port=CONTROLLER_PORT,
    )


@dataclass(frozen=True, slots=True)
class RunningBroker:
    bootstrap: str
    pids: tuple[int, ...]


@contextlib.contextmanager
def bench_broker(directory: Path = BENCH_DIR) -> Iterator[RunningBroker]:
    """The bench's broker, up until the block exits, then stopped and wiped."""
    directory.mkdir(parents=True, exist_ok=True)
    config = broker_config(directory)
    with _exclusive(directory / "kafka.lock"):
        try:
            bootstrap = devkafka.up(config)
            pids = tuple(node.pid for node in devkafka.status(config) if node.pid is not None)
            yield RunningBroker(bootstrap, pids)
        except devkafka.DevKafkaError as error:
            raise StockcastError(f"the bench's Kafka broker failed: {error}") from None
        finally:
            devkafka.wipe(config)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(path, wait=False))
        except BlockingIOError:
            raise StockcastError(
                f"another `stockcast bench` owns the bench broker ({path} is locked)"
            ) from None
        yield


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """How the bench configures its worker."""

    bootstrap: str
    topic_prefix: str
    partitions: int
    channel: str
    room_url: str

    def settings_toml(self, data_dir: Path, web_port: int) -> str:
        def quoted(text: str | Path) -> str:
            return json.dumps(str(text))  # a JSON string is a TOML basic string

        return (
            f"[kafka]\nbootstrap_servers = {quoted(self.bootstrap)}\n"
            f"topic_prefix = {quoted(self.topic_prefix)}\npartitions = {self.partitions}\n\n"
            f"[worker]\napp_id = {quoted(self.topic_prefix)}\ndata_dir = {quoted(data_dir)}\n"
            f'web_port = {web_port}\nlog_level = "info"\n\n'
            # The baselines keep nothing back, nor does the floor: every unit is sellable.
            "[ledger]\ndefault_reserve_percent = 0\n\n"
            f'[[channels]]\nname = {quoted(self.channel)}\nconnector = "simulator"\n'
            f'options = {{ base_url = {quoted(self.room_url)}, write_modes = "delta" }}\n'
        )


@dataclass(frozen=True, slots=True)
class RunningWorker:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> str | None:
        """Why the worker is gone, with its log's tail; None while it runs."""
        if self.process.poll() is None:
            return None
        return f"the stockcast worker exited with {self.process.returncode}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])


@contextlib.asynccontextmanager
async def worker(spec: WorkerSpec) -> AsyncIterator[RunningWorker]:
    """A worker started in a temporary directory and ready (``/healthz`` answers 200);
    stopped with SIGTERM (SIGKILL after a grace period) and its directory deleted."""
    directory = Path(tempfile.mkdtemp(prefix="stockcast-bench-worker-"))
    try:
        config = directory / "stockcast.toml"
        web_port = free_port()
        config.write_text(spec.settings_toml(directory / "data", web_port), encoding="utf-8")
        log = directory / "worker.log"
        process = _spawn(config, directory, log)
        running = RunningWorker(process, f"http://127.0.0.1:{web_port}", log)
        try:
            await _wait_ready(running)
            yield running
        finally:
            _stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _spawn(config: Path, directory: Path, log: Path) -> subprocess.Popen[bytes]:
    # From the event loop's thread, not a pool's: the kernel's parent-death signal
    # follows the thread that started the child.
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sync_worker", "run", "--config", str(config)],
            cwd=directory,
            env={**_WORKER_ENV, "HOME": str(directory)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


async def _wait_ready(running: RunningWorker) -> None:
    deadline = time.monotonic() + WORKER_READY_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
        while True:
            if (gone := running.exited()) is not None:
                raise StockcastError(gone)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{running.url}/healthz") as answer:
                    if answer.status == 200:
                        return
            if time.monotonic() > deadline:
                raise StockcastError(
                    f"the stockcast worker was not ready after {WORKER_READY_S:.0f}s:\n"
                    f"{running.log_tail()}"
                )
            await asyncio.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_WORKER_STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
