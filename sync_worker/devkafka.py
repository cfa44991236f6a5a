"""A real, local Apache Kafka (KRaft) for development and integration tests.

Why: the sync daemon talks to Kafka through aiokafka/faust, and mocks do not
catch protocol, rebalance or durability issues. This module fetches a pinned
Kafka release with Maven (deploy/kafka/pom.xml), then runs 1 or 3 combined
broker+controller JVMs as detached processes under ``data_dir``, so a broker
can outlive the Python process that started it (``make`` targets, CLI) and
still be stopped later through its recorded pid (CLI: ``stockcast dev``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from sync_worker.filelock import file_lock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = PROJECT_ROOT / "deploy" / "kafka"

#: Pinned Kafka release; keep in sync with ``kafka.version`` in deploy/kafka/pom.xml.
KAFKA_VERSION = "4.4.0"

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_FETCHED_MARKER = ".fetched"
_DATA_MARKER = ".devkafka"
PORT_RELEASE_S = 65.0
"""How long a node's ports may stay unbindable after it was killed (TIME_WAIT: 60 s)."""
_T = TypeVar("_T")

# Popen handles of brokers started by *this* process: kept so that exited
# children are reaped (a zombie would otherwise still look alive to kill(0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class DevKafkaError(RuntimeError):
    """The dev Kafka could not be fetched, started, reached or stopped."""


@dataclass(frozen=True)
class DevKafkaConfig:
    """Where and how the local cluster runs; pure data, safe to build in tests."""

    data_dir: Path = PROJECT_ROOT / "var" / "kafka"
    brokers: int = 1
    host: str = "127.0.0.1"
    base_port: int = 9092
    controller_base_port: int = 9192
    cache_dir: Path = DEPLOY_DIR / ".cache"
    kafka_version: str = KAFKA_VERSION
    deploy_dir: Path = DEPLOY_DIR
    heap: str = "512m"
    java: str = "java"
    """The java executable; the CLI passes $JAVA_HOME/bin/java when JAVA_HOME is set."""
    extra_properties: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.brokers not in (1, 3):
            raise ValueError(f"brokers must be 1 or 3, got {self.brokers}")
        broker_ports = set(range(self.base_port, self.base_port + self.brokers))
        ctl_ports = set(range(self.controller_base_port, self.controller_base_port + self.brokers))
        if broker_ports & ctl_ports:
            raise ValueError("broker and controller port ranges overlap")
        if not all(0 < p < 65536 for p in broker_ports | ctl_ports):
            raise ValueError("ports must be within 1..65535")

    @property
    def node_ids(self) -> range:
        """Node ids 0..brokers-1 (also the KRaft voter ids)."""
        return range(self.brokers)

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated ``host:port`` list of all broker listeners."""
        return ",".join(f"{self.host}:{self.port(i)}" for i in self.node_ids)

    @property
    def replication_factor(self) -> int:
        """Default/internal-topic RF: 1 for a single node, 3 for the cluster."""
        return 1 if self.brokers == 1 else 3

    @property
    def min_insync_replicas(self) -> int:
        """min ISR: 2 on 3 nodes, so acks=all survives exactly one lost node."""
        return 1 if self.brokers == 1 else 2

    @property
    def libs_dir(self) -> Path:
        """Directory holding the broker classpath jars for ``kafka_version``."""
        return self.cache_dir / self.kafka_version / "libs"

    def port(self, node_id: int) -> int:
        """Client (PLAINTEXT) port of a node."""
        return self.base_port + node_id

    def controller_port(self, node_id: int) -> int:
        """KRaft controller port of a node."""
        return self.controller_base_port + node_id

    def node_dir(self, node_id: int) -> Path:
        """Per-node directory: properties, pid, stdout log, log4j logs, data."""
        return self.data_dir / f"node-{node_id}"

    @property
    def quorum_voters(self) -> str:
        """Static ``controller.quorum.voters`` value shared by all nodes."""
        return ",".join(f"{i}@{self.host}:{self.controller_port(i)}" for i in self.node_ids)


@dataclass(frozen=True)
class NodeStatus:
    """Observed state of one node (``pid`` is None when nothing is recorded)."""

    node_id: int
    port: int
    pid: int | None
    alive: bool


# --------------------------------------------------------------------------
# Pure parts: rendering configuration
# --------------------------------------------------------------------------


def render_server_properties(config: DevKafkaConfig, node_id: int) -> str:
    """Fill deploy/kafka/server.properties.template for one node."""
    if node_id not in config.node_ids:
        raise ValueError(f"node {node_id} not in 0..{config.brokers - 1}")
    template = Template((config.deploy_dir / "server.properties.template").read_text())
    text = template.substitute(
        node_id=node_id,
        host=config.host,
        port=config.port(node_id),
        controller_port=config.controller_port(node_id),
        quorum_voters=config.quorum_voters,
        log_dir=config.node_dir(node_id) / "data",
        replication_factor=config.replication_factor,
        min_insync_replicas=config.min_insync_replicas,
    )
    extra = "".join(f"{k}={v}\n" for k, v in config.extra_properties)
    return text + extra


def new_cluster_id() -> str:
    """A Kafka-style cluster id (22-char url-safe base64 of a random UUID)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # would parse as a CLI flag
            return text


def java_command(config: DevKafkaConfig, node_id: int, main: str, *args: str) -> list[str]:
    """The ``java`` argv running ``main`` for a node on the fetched classpath."""
    return [
        config.java,
        f"-Xmx{config.heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config.deploy_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={config.node_dir(node_id) / 'logs'}",
        "-cp",
        f"{config.libs_dir}/*",
        main,
        *args,
    ]


# --------------------------------------------------------------------------
# Fetch
# --------------------------------------------------------------------------


def _is_fetched(libs: Path) -> bool:
    return (libs / _FETCHED_MARKER).is_file() and any(libs.glob("kafka_2.13-*.jar"))


def fetch(config: DevKafkaConfig) -> Path:
    """Download Kafka jars with Maven once (marker file), return the libs dir.

    Jars land in a temp dir that is renamed on success, so an interrupted
    download is never mistaken for a complete one.
    """
    libs = config.libs_dir
    if _is_fetched(libs):
        return libs
    with file_lock(config.cache_dir / f"{config.kafka_version}.lock"):
        if _is_fetched(libs):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevKafkaError("Maven (mvn) is needed to fetch Kafka; not on PATH")
        staging = libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(config.deploy_dir / "pom.xml"),
            f"-Dmaven.repo.local={config.cache_dir / 'm2'}",
            f"-Dkafka.version={config.kafka_version}",
            f"-Dkafka.libs.dir={staging}",
            "dependency:copy-dependencies",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise DevKafkaError(
                f"Maven fetch of Kafka {config.kafka_version} failed "
                f"(exit {proc.returncode}):\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
            )
        (staging / _FETCHED_MARKER).write_text(config.kafka_version + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def _pid_file(config: DevKafkaConfig, node_id: int) -> Path:
    return config.node_dir(node_id) / "kafka.pid"


def _read_pid(config: DevKafkaConfig, node_id: int) -> int | None:
    try:
        return int(_pid_file(config, node_id).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_broker(config: DevKafkaConfig, node_id: int, pid: int) -> bool:
    """True if ``pid`` is running this node's broker (guards against pid reuse).

    A node this process spawned is judged by its ``Popen`` alone: its /proc cmdline can
    read empty or stale for a moment while it starts, which once made a healthy node
    look as if it had exited during start-up."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]  # collected: it stops looking alive
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    props = str(config.node_dir(node_id) / "server.properties").encode()
    return _MAIN_CLASS.encode() in cmdline and props in cmdline


def _node_pid(config: DevKafkaConfig, node_id: int) -> int | None:
    """The recorded pid if that process is still our broker, else None."""
    pid = _read_pid(config, node_id)
    if pid is not None and _is_our_broker(config, node_id, pid):
        return pid
    return None


def status(config: DevKafkaConfig) -> list[NodeStatus]:
    """Per-node pid/liveness from pid files and /proc (no network calls)."""
    result = []
    for i in config.node_ids:
        pid = _read_pid(config, i)
        alive = pid is not None and _is_our_broker(config, i, pid)
        result.append(NodeStatus(node_id=i, port=config.port(i), pid=pid, alive=alive))
    return result


def _tail(path: Path, lines: int = 40) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(content[-lines:])


def node_logs(config: DevKafkaConfig, node_id: int, lines: int = 40) -> str:
    """Tail of a node's stdout/stderr file and its log4j WARN log, for errors."""
    node = config.node_dir(node_id)
    return (
        f"--- {node / 'kafka.out'} ---\n{_tail(node / 'kafka.out', lines)}\n"
        f"--- {node / 'logs' / 'server.log'} ---\n"
        f"{_tail(node / 'logs' / 'server.log', lines)}"
    )


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_bindable(host: str, port: int, timeout: float = PORT_RELEASE_S) -> None:
    """Wait until a listener could bind ``port``. A node killed a moment ago leaves
    its connections in TIME_WAIT on its own ports (Linux keeps them 60 s), and Kafka's
    listener then fails to bind although nothing listens: seen restarting a killed
    node of the 3-node test cluster."""
    try:
        Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.5),
            retry=retry_if_result(lambda bound: not bound),
        )(_bindable, host, port)
    except RetryError:
        raise DevKafkaError(f"port {host}:{port} could not be bound for {timeout:.0f}s") from None


def _format_command(config: DevKafkaConfig, node_id: int, cluster_id: str) -> list[str]:
    return java_command(
        config,
        node_id,
        _STORAGE_TOOL,
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(config.node_dir(node_id) / "server.properties"),
    )


def _is_formatted(config: DevKafkaConfig, node_id: int) -> bool:
    return (config.node_dir(node_id) / "data" / "meta.properties").is_file()


def _cluster_id(config: DevKafkaConfig) -> str:
    path = config.data_dir / "cluster.id"
    if not path.is_file():
        path.write_text(new_cluster_id() + "\n")
    return path.read_text().strip()


def _prepare(config: DevKafkaConfig, nodes: Sequence[int]) -> None:
    """Write server.properties and format unformatted nodes (in parallel).

    A static voter set needs no --standalone/--initial-controllers flags;
    ``meta.properties`` in the log dir marks a node as formatted.
    """
    cluster_id = _cluster_id(config)
    for i in nodes:
        (config.node_dir(i) / "logs").mkdir(parents=True, exist_ok=True)
        props = render_server_properties(config, i)
        (config.node_dir(i) / "server.properties").write_text(props)
    formats = {
        i: subprocess.Popen(
            _format_command(config, i, cluster_id),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=config.node_dir(i),
        )
        for i in nodes
        if not _is_formatted(config, i)
    }
    errors = []
    for i, proc in formats.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            text = output.decode(errors="replace")[-4000:]
            errors.append(f"formatting node {i} failed (exit {proc.returncode}):\n{text}")
    if errors:
        raise DevKafkaError("\n".join(errors))


def _spawn(config: DevKafkaConfig, node_id: int) -> int:
    """Launch one prepared node detached; record and return its pid."""
    node = config.node_dir(node_id)
    for port in (config.port(node_id), config.controller_port(node_id)):
        if _port_open(config.host, port):
            raise DevKafkaError(f"port {config.host}:{port} for node {node_id} is already in use")
        wait_bindable(config.host, port)
    cmd = java_command(config, node_id, _MAIN_CLASS, str(node / "server.properties"))
    with (node / "kafka.out").open("ab") as out:
        child = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=node,
            start_new_session=True,  # no SIGINT from the caller's terminal
        )
    _CHILDREN[child.pid] = child
    _pid_file(config, node_id).write_text(f"{child.pid}\n")
    return child.pid


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion even if the caller is inside a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="devkafka-probe")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value


async def _broker_view(host: str, port: int) -> set[int]:
    """Broker ids this broker reports in Metadata (registered and unfenced).

    Asks exactly one broker, so a restarted node is checked itself rather
    than through a peer that may still list its stale registration.
    """
    from aiokafka.cluster import ClusterMetadata
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    conn = await create_conn(host, port, request_timeout_ms=5000)
    try:
        response = await conn.send(MetadataRequest([]))
    finally:
        conn.close()
    cluster = ClusterMetadata()
    cluster.update_metadata(response)
    return {b.nodeId for b in cluster.brokers() if isinstance(b.nodeId, int)}


def _wait_ready(
    config: DevKafkaConfig,
    started: Sequence[int],
    probe: Sequence[int],
    expected: set[int],
    timeout: float,
) -> None:
    """Poll until every ``probe`` node lists ``expected`` brokers.

    Fails fast with the log tail if a just-started JVM exits.
    """
    deadline = time.monotonic() + timeout
    last_error = "no broker answered"
    while True:
        for i in started:
            if _node_pid(config, i) is None:
                raise DevKafkaError(
                    f"Kafka node {i} exited during start-up\n{node_logs(config, i)}"
                )
        missing = [i for i in probe if not _port_open(config.host, config.port(i))]
        if missing:
            last_error = f"nodes {missing} not listening yet"
        else:
            try:
                views = {i: _run_async(_broker_view(config.host, config.port(i))) for i in probe}
            except Exception as exc:  # not ready yet: connection/metadata errors
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                lagging = {i: sorted(v) for i, v in views.items() if not expected <= v}
                if not lagging:
                    return
                last_error = f"want brokers {sorted(expected)}, node views {lagging}"
        if time.monotonic() >= deadline:
            logs = "\n".join(node_logs(config, i) for i in started or probe)
            raise DevKafkaError(
                f"Kafka not ready at {config.bootstrap_servers} after {timeout:.0f}s "
                f"({last_error})\n{logs}"
            )
        time.sleep(0.5)


def up(config: DevKafkaConfig, timeout: float = 90.0) -> str:
    """Fetch if needed, start every node that is not running, wait until all
    brokers are visible in metadata; return the bootstrap servers.

    Idempotent: with everything running this only re-checks readiness.
    """
    fetch(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / _DATA_MARKER).touch()
    with file_lock(config.data_dir / "devkafka.lock"):
        started = [i for i in config.node_ids if _node_pid(config, i) is None]
        try:
            _prepare(config, started)
            for i in started:
                _spawn(config, i)
            all_nodes = list(config.node_ids)
            _wait_ready(config, started, all_nodes, set(all_nodes), timeout)
        except BaseException:
            for i in started:  # do not leave a half-started cluster behind
                _stop_node(config, i, signal.SIGKILL, 10.0)
            raise
    return config.bootstrap_servers


def _wait_exit(config: DevKafkaConfig, node_id: int, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_our_broker(config, node_id, pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop_node(config: DevKafkaConfig, node_id: int, sig: signal.Signals, timeout: float) -> None:
    """Send ``sig``, escalate to SIGKILL after ``timeout``, drop the pid file."""
    pid = _node_pid(config, node_id)
    if pid is not None:
        _signal(pid, sig)
        if not _wait_exit(config, node_id, pid, timeout):
            _signal(pid, signal.SIGKILL)
            if not _wait_exit(config, node_id, pid, 10.0):
                raise DevKafkaError(f"node {node_id} (pid {pid}) survived SIGKILL")
    _pid_file(config, node_id).unlink(missing_ok=True)


def down(config: DevKafkaConfig, timeout: float = 30.0) -> None:
    """SIGTERM all nodes at once, SIGKILL stragglers after ``timeout``.

    Idempotent; the pid files are removed so ``status`` shows no pid.
    """
    pids = {i: _node_pid(config, i) for i in config.node_ids}
    for pid in pids.values():
        if pid is not None:
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for i, pid in pids.items():
        if pid is not None and not _wait_exit(
            config, i, pid, max(0.0, deadline - time.monotonic())
        ):
            _signal(pid, signal.SIGKILL)
            if not _wait_exit(config, i, pid, 10.0):
                raise DevKafkaError(f"node {i} (pid {pid}) survived SIGKILL")
        _pid_file(config, i).unlink(missing_ok=True)


def wipe(config: DevKafkaConfig, timeout: float = 30.0) -> None:
    """Stop the cluster and delete ``data_dir`` for a fresh start.

    Refuses directories ``up`` did not create, so a wrong path is not erased.
    """
    down(config, timeout)
    if not config.data_dir.exists():
        return
    if not (config.data_dir / _DATA_MARKER).is_file():
        raise DevKafkaError(f"{config.data_dir} was not created by devkafka; not wiping")
    shutil.rmtree(config.data_dir)


def kill_node(
    config: DevKafkaConfig,
    node_id: int,
    sig: signal.Signals = signal.SIGKILL,
    timeout: float = 30.0,
) -> None:
    """Stop one node (default: hard SIGKILL crash) for fault-injection tests."""
    if node_id not in config.node_ids:
        raise ValueError(f"node {node_id} not in 0..{config.brokers - 1}")
    _stop_node(config, node_id, sig, timeout)


def start_node(config: DevKafkaConfig, node_id: int, timeout: float = 90.0) -> None:
    """(Re)start one node and wait until it is back in the cluster metadata."""
    if node_id not in config.node_ids:
        raise ValueError(f"node {node_id} not in 0..{config.brokers - 1}")
    fetch(config)
    with file_lock(config.data_dir / "devkafka.lock"):
        started = [] if _node_pid(config, node_id) is not None else [node_id]
        try:
            _prepare(config, started)
            for i in started:
                _spawn(config, i)
            alive = {i for i in config.node_ids if _node_pid(config, i) is not None}
            _wait_ready(config, started, [node_id], alive, timeout)
        except BaseException:
            for i in started:
                _stop_node(config, i, signal.SIGKILL, 10.0)
            raise
