"""Installing the baselines' servers: apt-get only as root, update only when needed,
a clear message otherwise. apt-get itself is replaced by a recorder here; the real
install and the real servers are exercised by tests/integration/test_bench_baselines.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from sync_worker.bench import services
from sync_worker.bench.services import ServiceError


class FakeApt:
    """Answers apt-get runs in order with the given return codes; installs on success."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *codes: int, missing: list[str]) -> None:
        self.codes = list(codes)
        self.commands: list[list[str]] = []
        self.missing = missing
        monkeypatch.setattr(services, "_run", self.run)
        monkeypatch.setattr(services, "missing_packages", lambda: list(self.missing))
        monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
        monkeypatch.setattr(os, "geteuid", lambda: 0)

    def run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        code = self.codes.pop(0)
        if code == 0 and "install" in command:
            self.missing = []
        return subprocess.CompletedProcess(command, code, stdout=f"apt said {code}\n")

    def verbs(self) -> list[str]:
        return [next(word for word in command if word in ("install", "update"))
                for command in self.commands]  # fmt: skip


def test_nothing_is_installed_when_the_servers_are_there(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, missing=[])

    services.ensure_installed()

    assert apt.commands == []


def test_a_missing_server_is_installed_without_recommends(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, 0, missing=["redis-server"])

    services.ensure_installed()

    (command,) = apt.commands
    assert command[-4:] == ["install", "-y", "--no-install-recommends", "redis-server"]
    assert "DEBIAN_FRONTEND=noninteractive" in command


def test_the_package_lists_are_updated_only_when_the_install_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apt = FakeApt(monkeypatch, 100, 0, 0, missing=["postgresql", "redis-server"])

    services.ensure_installed()

    assert apt.verbs() == ["install", "update", "install"]


def test_a_failed_install_says_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApt(monkeypatch, 100, 0, 100, missing=["postgresql"])

    with pytest.raises(ServiceError, match=r"apt-get install .* postgresql.*\n.*apt said 100"):
        services.ensure_installed()


def test_only_the_packages_asked_for_are_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, 0, missing=["postgresql", "redis-server"])

    services.ensure_installed(["redis-server"])

    assert apt.commands[0][-1] == "redis-server"
    assert "postgresql" not in apt.commands[0]


def test_without_root_a_missing_server_is_explained_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apt = FakeApt(monkeypatch, missing=["redis-server"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with pytest.raises(ServiceError, match=r"run as root: apt-get install .*redis-server"):
        services.ensure_installed()
    assert apt.commands == []


def test_the_newest_postgresql_with_a_server_binary_is_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path
    for version, server in (("13", True), ("15", True), ("16", False)):
        bin_dir = root / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "initdb").touch()
        if server:
            (bin_dir / "postgres").touch()
    monkeypatch.setattr(services, "POSTGRES_ROOT", root)

    assert services.postgres_bin() == root / "15" / "bin"


def test_a_free_port_is_on_loopback_and_bindable() -> None:
    port = services.free_port()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
