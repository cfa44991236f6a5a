"""Finding and fetching Prometheus (sync_worker/devprometheus.py) without the network: a
fake ``apt-get`` hands out a tiny package built with the real ``dpkg-deb``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_worker import devprometheus
from sync_worker.cli import main
from sync_worker.devprometheus import DevPrometheusConfig, DevPrometheusError, PrometheusTools

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

FAKE_APT_GET = """#!/bin/sh
# download: refused until `update` ran (lists missing), then copies the package here.
echo "$@" >> "{log}"
case "$1" in
  update) touch "{updated}" ;;
  download)
    if [ ! -e "{updated}" ]; then
      echo "E: Unable to locate package $2"; exit 100
    fi
    cp "{deb}" . ;;
esac
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """prometheus_9.9.9_amd64.deb holding two shell scripts as the binaries."""
    tree = tmp_path / "package"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: prometheus\nVersion: 9.9.9\nArchitecture: amd64\n"
        "Maintainer: test <test@example.org>\nDescription: fake\n"
    )
    (tree / "usr" / "bin").mkdir(parents=True)
    for name in ("prometheus", "promtool"):
        executable(tree / "usr" / "bin" / name, f"#!/bin/sh\necho '{name}, version 9.9.9'\n")
    deb = tmp_path / "prometheus_9.9.9_amd64.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def fake_apt(tmp_path: Path, package: Path) -> Callable[..., DevPrometheusConfig]:
    """A config whose apt-get is the fake; PATH is never used for the binaries."""
    script = executable(
        tmp_path / "apt-get",
        FAKE_APT_GET.format(
            log=tmp_path / "apt.log", updated=tmp_path / "lists-updated", deb=package
        ),
    )

    def config(*, as_root: bool) -> DevPrometheusConfig:
        return DevPrometheusConfig(
            cache_dir=tmp_path / "cache", use_path=False, apt_get=str(script), as_root=as_root
        )

    return config


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


@needs_dpkg
def test_root_updates_missing_package_lists_then_downloads_and_unpacks(
    fake_apt: Callable[..., DevPrometheusConfig], tmp_path: Path
) -> None:
    config = fake_apt(as_root=True)

    tools = devprometheus.fetch(config)

    assert apt_calls(tmp_path) == ["download prometheus", "update", "download prometheus"]
    assert tools.prometheus == config.unpacked_dir / "usr" / "bin" / "prometheus"
    assert devprometheus.version(tools) == "prometheus, version 9.9.9"
    assert tools.web_assets == config.unpacked_dir / "usr" / "share" / "prometheus" / "web"
    assert not list(config.cache_dir.glob("*.partial"))


@needs_dpkg
def test_a_fetched_package_is_not_fetched_again(
    fake_apt: Callable[..., DevPrometheusConfig], tmp_path: Path
) -> None:
    config = fake_apt(as_root=True)
    first = devprometheus.fetch(config)
    calls = len(apt_calls(tmp_path))

    again = devprometheus.fetch(config)

    assert again == first
    assert len(apt_calls(tmp_path)) == calls


@needs_dpkg
def test_without_root_stale_lists_are_reported_with_what_to_run(
    fake_apt: Callable[..., DevPrometheusConfig], tmp_path: Path
) -> None:
    config = fake_apt(as_root=False)

    with pytest.raises(DevPrometheusError, match="apt-get update"):
        devprometheus.fetch(config)

    assert apt_calls(tmp_path) == ["download prometheus"]  # never `update`
    assert devprometheus.locate(config) is None


def test_without_apt_get_the_error_says_to_install_prometheus(tmp_path: Path) -> None:
    config = DevPrometheusConfig(
        cache_dir=tmp_path / "cache", use_path=False, apt_get=str(tmp_path / "no-apt-get")
    )

    with pytest.raises(DevPrometheusError, match="put it on PATH"):
        devprometheus.fetch(config)


def test_binaries_on_path_are_used_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("prometheus", "promtool"):
        executable(tmp_path / name, "#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path))

    found = devprometheus.locate(DevPrometheusConfig(cache_dir=tmp_path / "cache"))

    assert found == PrometheusTools(tmp_path / "prometheus", tmp_path / "promtool")
    assert devprometheus.on_path(DevPrometheusConfig(use_path=False)) is None


@pytest.mark.parametrize(
    ("output", "stale"),
    [
        ("E: Unable to locate package prometheus", True),
        ("E: Package 'prometheus' has no installation candidate", True),
        ("E: Failed to fetch http://deb.debian.org/.../prometheus.deb  404  Not Found", True),
        ("E: Could not get lock /var/lib/apt/lists/lock", False),
    ],
)
def test_stale_package_lists_are_told_from_other_apt_failures(output: str, stale: bool) -> None:
    assert devprometheus.lists_need_update(output) is stale


def test_the_checks_cover_the_config_every_rule_file_and_every_unit_test() -> None:
    tools = PrometheusTools(Path("/p/prometheus"), Path("/p/promtool"))
    config = DevPrometheusConfig()

    config_check, rules_check, tests_check = devprometheus.check_commands(tools, config)

    assert config_check == ["/p/promtool", "check", "config", str(config.config_file)]
    assert rules_check[:3] == ["/p/promtool", "check", "rules"]
    assert config.rule_files
    assert rules_check[3:] == [str(path) for path in config.rule_files]
    assert config.rule_tests
    assert tests_check[3:] == [str(path) for path in config.rule_tests]


def test_the_server_command_points_an_unpacked_package_at_its_web_assets() -> None:
    tools = PrometheusTools(Path("/c/prometheus"), Path("/c/promtool"), Path("/c/web"))

    command = devprometheus.server_command(
        tools, config_file=Path("/x.yml"), storage_dir=Path("/d"), listen_address="127.0.0.1:1"
    )

    assert command == [
        "/c/prometheus",
        "--config.file=/x.yml",
        "--storage.tsdb.path=/d",
        "--web.listen-address=127.0.0.1:1",
        "--web.local-assets=/c/web",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["dev", "prometheus", "--help"],
        *[["dev", "prometheus", c, "--help"] for c in ("fetch", "check", "run")],
    ],
)
def test_the_prometheus_commands_have_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, args, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
