"""PostgreSQL and Redis for the baselines, installed from Debian packages and started by
the bench itself: each in its own temporary directory, on loopback, on a free port, with
no configuration read from outside that directory.

A server started here belongs to this process and to it alone: it is stopped and its
directory deleted when its context manager exits (Ctrl-C included), and it receives
SIGKILL from the kernel if this process dies without cleaning up. A server installed
system-wide, running or not, is never started, stopped or read.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

POSTGRES_ROOT = Path("/usr/lib/postgresql")
REDIS_SERVER = Path("/usr/bin/redis-server")
_APT_LOCK_WAIT_S = 300  # other apt runs (CI images, neighbours) may hold the dpkg lock
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
_SERVER_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
"""Servers get this environment and nothing of ours: no PG* or REDIS* variable leaks in."""


class ServiceError(RuntimeError):
    """A baseline server could not be installed, started or stopped."""


# --- installation -------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` directory (initdb and postgres)."""
    found = [
        path.parent
        for path in POSTGRES_ROOT.glob("*/bin/initdb")
        if (path.parent / "postgres").exists()
    ]
    return max(found, key=lambda path: _version(path.parent.name), default=None)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def missing_packages() -> list[str]:
    """The Debian packages (``postgresql``, ``redis-server``; bookworm ships PostgreSQL 15
    and Redis 7) whose server binaries are not installed."""
    missing = []
    if postgres_bin() is None:
        missing.append("postgresql")
    if not REDIS_SERVER.exists():
        missing.append("redis-server")
    return missing


def ensure_installed(
    packages: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Install the missing server packages with apt-get (as root), or explain how.

    ``apt-get update`` runs only when installing from the current package lists fails.
    Raises ``ServiceError`` when something is missing and cannot be installed.
    """
    missing = [name for name in missing_packages() if packages is None or name in packages]
    if not missing:
        return
    how = "apt-get install -y --no-install-recommends " + " ".join(missing)
    if os.geteuid() != 0:
        raise ServiceError(f"the baselines need {', '.join(missing)}; run as root: {how}")
    if shutil.which("apt-get") is None:
        raise ServiceError(f"the baselines need {', '.join(missing)} and apt-get is missing")
    progress(f"installing {' '.join(missing)} from the Debian packages")
    install = [*_apt(), "install", "-y", "--no-install-recommends", *missing]
    first = _run(install)
    if first.returncode != 0:
        progress("apt-get update")
        updated = _run([*_apt(), "update"])
        second = _run(install) if updated.returncode == 0 else updated
        if second.returncode != 0:
            raise ServiceError(f"`{how}` failed:\n{_tail(second.stdout)}")
    still = [name for name in missing_packages() if name in missing]
    if still:
        raise ServiceError(f"{', '.join(still)} installed but its server binary is missing")


def _apt() -> list[str]:
    # `env` sets the variable for apt alone: the bench never reads or edits its environment.
    return [
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-q",
        "-o",
        f"DPkg::Lock::Timeout={_APT_LOCK_WAIT_S}",
    ]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- running servers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningPostgres:
    host: str
    port: int
    pid: int
    """The postmaster; its children are the backends serving our connections."""
    directory: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"


@dataclass(frozen=True, slots=True)
class RunningRedis:
    host: str
    port: int
    pid: int
    directory: Path


@contextlib.contextmanager
def postgres() -> Iterator[RunningPostgres]:
    """A fresh PostgreSQL cluster with trust auth, ``fsync=on`` and
    ``synchronous_commit=on``, on 127.0.0.1. As root, it runs as the ``postgres``
    system user (PostgreSQL refuses root)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise ServiceError("PostgreSQL is not installed (see ensure_installed)")
    owner = _server_owner("postgres")
    with _temporary_directory("pg", owner) as directory:
        data = directory / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "--username=postgres"]
        # --no-sync: only initdb's own files; the server below runs with fsync on.
        initdb += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        done = subprocess.run(
            initdb,
            cwd=directory,
            env=_SERVER_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            user=owner.uid if owner else None,
            group=owner.gid if owner else None,
            extra_groups=[] if owner else None,
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed:\n{_tail(done.stdout)}")
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(directory),
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "200",
            "max_wal_size": "4GB",  # no checkpoint forced by WAL volume in the middle of a run
        }
        command = [str(bin_dir / "postgres"), "-D", str(data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log = directory / "postgres.log"
        with _server(command, directory, log, owner, signal.SIGINT) as process:
            _wait_until(lambda: _postgres_ready(data, port), process, log, "PostgreSQL")
            yield RunningPostgres("127.0.0.1", port, process.pid, directory)


@contextlib.contextmanager
def redis() -> Iterator[RunningRedis]:
    """A fresh Redis on 127.0.0.1 with ``appendonly yes``, ``appendfsync everysec`` and
    no RDB snapshots; its data and log stay in its temporary directory."""
    if not REDIS_SERVER.exists():
        raise ServiceError("redis-server is not installed (see ensure_installed)")
    with _temporary_directory("redis", None) as directory:
        port = free_port()
        command = [str(REDIS_SERVER)]
        # Options on the command line only: no config file is read.
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "dir": str(directory),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",
            "daemonize": "no",
            "logfile": str(directory / "redis.log"),
        }
        for name, value in options.items():
            command += [f"--{name}", value]
        log = directory / "redis.log"
        with _server(command, directory, log, None, signal.SIGTERM) as process:
            _wait_until(lambda: _redis_ready(port), process, log, "Redis")
            yield RunningRedis("127.0.0.1", port, process.pid, directory)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class _Owner:
    uid: int
    gid: int


def _server_owner(user: str) -> _Owner | None:
    """Who runs the server: ``user`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ServiceError(f"no `{user}` system user (the Debian package creates it)") from None
    return _Owner(entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def _temporary_directory(kind: str, owner: _Owner | None) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=f"stockcast-bench-{kind}-"))
    try:
        if owner is not None:
            os.chown(directory, owner.uid, owner.gid)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _server(
    command: list[str],
    directory: Path,
    log: Path,
    owner: _Owner | None,
    stop_signal: signal.Signals,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block exits, then stop it with ``stop_signal`` (SIGKILL
    after a grace period). Its own session keeps a terminal's Ctrl-C for us: we stop it."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=directory,
            env=_SERVER_ENV,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            user=owner.uid if owner else None,
            group=owner.gid if owner else None,
            extra_groups=[] if owner else None,
        )
    try:
        yield process
    finally:
        _stop(process, stop_signal)


def _stop(process: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(stop_signal)
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: the kernel kills it if the bench dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, name: str
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with {process.returncode}:\n{_read_tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{name} not ready after {_START_TIMEOUT_S:.0f}s:\n{_read_tail(log)}"
            )
        time.sleep(0.05)


def _read_tail(log: Path) -> str:
    try:
        return _tail(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return "(no log)"


def _postgres_ready(data: Path, port: int) -> bool:
    """The postmaster writes ``ready`` as the 8th line of postmaster.pid once it accepts
    connections."""
    try:
        lines = (data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready" and _listening(port)


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False
