"""deploy/systemd: the unit runs the real worker command, keeps the tables in its
StateDirectory, stops gracefully and is hardened. Read with a small unit-file parser;
`systemd-analyze` checks it too where systemd is installed (no running systemd needed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync_worker import cli
from sync_worker.config import ENV_PREFIX, load_settings
from tests.unit.deploy_support import DEPLOY_DIR, drain_bound_s, parse_stockcast

UNIT_PATH = DEPLOY_DIR / "systemd" / "stockcast.service"
ENV_FILE_PATH = DEPLOY_DIR / "systemd" / "stockcast.env"
STATE_ROOT = Path("/var/lib")  # where StateDirectory= puts a system service's state


@dataclass(frozen=True)
class UnitFile:
    sections: Mapping[str, tuple[tuple[str, str], ...]]

    @classmethod
    def parse(cls, text: str) -> UnitFile:
        sections: dict[str, list[tuple[str, str]]] = {}
        entries: list[tuple[str, str]] | None = None
        continued = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not continued and (not line or line[0] in "#;"):
                continue
            if line.endswith("\\"):
                continued += line[:-1] + " "
                continue
            line, continued = continued + line, ""
            if line.startswith("[") and line.endswith("]"):
                entries = sections.setdefault(line[1:-1], [])
                continue
            key, equals, value = line.partition("=")
            assert equals, f"not a unit file line: {raw!r}"
            assert entries is not None, f"a setting before any [section]: {raw!r}"
            entries.append((key.strip(), value.strip()))
        return cls({name: tuple(entries) for name, entries in sections.items()})

    def all(self, section: str, key: str) -> list[str]:
        return [value for name, value in self.sections.get(section, ()) if name == key]

    def get(self, section: str, key: str) -> str:
        values = self.all(section, key)
        assert values, f"[{section}] has no {key}="
        return values[-1]


def read_env_file(text: str, *, commented_too: bool = False) -> dict[str, str]:
    """An EnvironmentFile's assignments; with ``commented_too``, also the example
    assignments commented out with a leading ``#``."""
    pattern = r"#?" if commented_too else r""
    assignments = {}
    for line in text.splitlines():
        match = re.fullmatch(pattern + r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
        if match:
            assignments[match[1]] = match[2]
    return assignments


def service_environment(unit: UnitFile, env_file: Mapping[str, str]) -> dict[str, str]:
    """What the worker sees: Environment= first, then the EnvironmentFile=, which wins."""
    env = {}
    for value in unit.all("Service", "Environment"):
        for assignment in shlex.split(value):
            name, _, setting = assignment.partition("=")
            env[name] = setting
    return env | dict(env_file)


def timespan_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    assert parts, f"not a time span: {text!r}"
    return sum(float(number) * units[unit or "s"] for number, unit in parts)


@pytest.fixture
def unit() -> UnitFile:
    return UnitFile.parse(UNIT_PATH.read_text(encoding="utf-8"))


def test_the_unit_runs_the_worker_with_options_it_accepts(unit: UnitFile) -> None:
    argv = shlex.split(unit.get("Service", "ExecStart"))

    command, options = parse_stockcast(argv)

    assert Path(argv[0]).is_absolute()
    assert command is cli.run
    assert isinstance(options["config"], Path)
    assert options["config"].is_absolute()


def test_the_tables_live_in_the_state_directory_whatever_the_settings_file_says(
    unit: UnitFile,
) -> None:
    state_dir = STATE_ROOT / unit.get("Service", "StateDirectory")
    # Every example override enabled, and a settings file that names another data dir.
    example = read_env_file(ENV_FILE_PATH.read_text(encoding="utf-8"), commented_too=True)
    env = service_environment(unit, example)

    settings = load_settings('[worker]\ndata_dir = "var/worker"\n', env)

    assert settings.worker.data_dir == state_dir
    # Only the StateDirectory is writable under ProtectSystem=strict.
    assert unit.get("Service", "ProtectSystem") == "strict"
    assert unit.get("Service", "WorkingDirectory") == str(state_dir)


def test_the_example_environment_file_names_real_settings(unit: UnitFile) -> None:
    example = read_env_file(ENV_FILE_PATH.read_text(encoding="utf-8"), commented_too=True)

    load_settings("", example)  # an unknown STOCKCAST_ variable would be refused

    assert example
    assert all(name.startswith(ENV_PREFIX) for name in example)
    assert "STOCKCAST_WORKER__DATA_DIR" not in example  # would win over the unit's
    assert unit.get("Service", "EnvironmentFile").lstrip("-").endswith("/" + ENV_FILE_PATH.name)


def test_the_unit_does_not_wait_for_a_readiness_notification_the_worker_never_sends(
    unit: UnitFile,
) -> None:
    sources = Path(cli.__file__).parent.rglob("*.py")

    notifies = [path for path in sources if "NOTIFY_SOCKET" in path.read_text(encoding="utf-8")]

    assert notifies == [], "the worker notifies systemd now: make the unit Type=notify"
    assert unit.get("Service", "Type") in {"exec", "simple"}


def test_stopping_lets_the_worker_commit_and_leave_the_group(unit: UnitFile) -> None:
    assert unit.get("Service", "KillSignal") == "SIGTERM"
    assert timespan_s(unit.get("Service", "TimeoutStopSec")) > drain_bound_s()


def test_failures_restart_within_a_start_limit(unit: UnitFile) -> None:
    assert unit.get("Service", "Restart") == "on-failure"
    assert timespan_s(unit.get("Service", "RestartSec")) >= 1
    assert int(unit.get("Unit", "StartLimitBurst")) >= 1
    assert timespan_s(unit.get("Unit", "StartLimitIntervalSec")) > 0


def test_many_live_subscribers_fit_under_one_open_file_limit(unit: UnitFile) -> None:
    limit = unit.get("Service", "LimitNOFILE")

    assert ":" not in limit  # soft = hard: RocksDB sizes its file cache from the hard one
    assert int(limit) >= 16_384


def test_the_worker_runs_as_its_own_user_in_a_hardened_sandbox(unit: UnitFile) -> None:
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }

    assert unit.get("Service", "User") not in {"root", "nobody"}
    assert {key: unit.get("Service", key) for key in hardening} == hardening


@pytest.fixture
def verifiable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's stockcast, which
    `systemd-analyze verify` requires to exist."""
    stockcast = Path(sys.executable).with_name("stockcast")
    text = UNIT_PATH.read_text(encoding="utf-8")
    installed = shlex.split(UnitFile.parse(text).get("Service", "ExecStart"))[0]
    path = tmp_path / UNIT_PATH.name
    path.write_text(text.replace(installed, str(stockcast)), encoding="utf-8")
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd not installed")
def test_systemd_accepts_the_unit_without_a_warning(verifiable_unit: Path) -> None:
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(verifiable_unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(verifiable_unit)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    assert security.returncode == 0, security.stdout[-400:]  # exposure 2.0 or better
