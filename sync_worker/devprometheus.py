"""Prometheus and promtool for development and tests, taken from Debian's package.

Why: the alert and recording rules in deploy/prometheus are code, and only a real
Prometheus tells whether they parse, evaluate and fire (``promtool test rules``, and a
server scraping a real worker in the integration tests). Binaries already on ``PATH``
(a system install, a CI image) are used as they are; otherwise Debian's ``prometheus``
package is downloaded with ``apt-get download`` into ``deploy/prometheus/.cache`` and
unpacked there with ``dpkg-deb -x``.

Why unpacked rather than installed system-wide: ``apt-get install prometheus`` would also
create a ``prometheus`` user, enable and start a system Prometheus on port 9090 (the
package's maintainer scripts) and pull in a dozen JavaScript packages for the web UI;
none of that is needed by a test or by ``stockcast dev prometheus run``, all of it would
outlive ``make clean``, and a system server on 9090 would collide with the developer's
own. The two binaries are statically linked Go programs that need only libc, so they run
from wherever they are unpacked; the download needs no privileges beyond readable package
lists. Only when those lists are missing or stale does the fetch run ``apt-get update``,
and only as root; anyone else gets an error saying what to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sync_worker.filelock import file_lock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = PROJECT_ROOT / "deploy" / "prometheus"
PACKAGE = "prometheus"

_FETCHED_MARKER = ".fetched"
_BINARIES = ("prometheus", "promtool")
# apt-get's words when its package lists are missing or older than the archive.
_STALE_LISTS = (
    "Unable to locate package",
    "has no installation candidate",
    "no candidate",
    "Failed to fetch",
    "404",
)


class DevPrometheusError(RuntimeError):
    """Prometheus could not be found, fetched or unpacked."""


@dataclass(frozen=True)
class PrometheusTools:
    """Where the two binaries are; ``web_assets`` is set for an unpacked package, whose
    UI files are not where the binary looks for them by default."""

    prometheus: Path
    promtool: Path
    web_assets: Path | None = None


@dataclass(frozen=True)
class DevPrometheusConfig:
    """Where to look for and put Prometheus; pure data, safe to build in tests."""

    cache_dir: Path = DEPLOY_DIR / ".cache"
    deploy_dir: Path = DEPLOY_DIR
    package: str = PACKAGE
    use_path: bool = True
    """Use binaries found on PATH before the unpacked package."""
    apt_get: str = "apt-get"
    dpkg_deb: str = "dpkg-deb"
    as_root: bool | None = None
    """Whether ``apt-get update`` may be run; None asks the operating system."""

    @property
    def unpacked_dir(self) -> Path:
        """The package's file tree (``usr/bin/prometheus``…) once fetched."""
        return self.cache_dir / self.package

    @property
    def config_file(self) -> Path:
        return self.deploy_dir / "prometheus.yml"

    @property
    def rule_files(self) -> list[Path]:
        return sorted((self.deploy_dir / "rules").glob("*.yml"))

    @property
    def rule_tests(self) -> list[Path]:
        return sorted((self.deploy_dir / "tests").glob("*.yml"))


# --------------------------------------------------------------------------
# Pure parts: commands
# --------------------------------------------------------------------------


def check_commands(tools: PrometheusTools, config: DevPrometheusConfig) -> list[list[str]]:
    """promtool's three checks of deploy/prometheus: the scrape config (with the rule
    files it names), every rule file, and the rules' unit tests."""
    promtool = str(tools.promtool)
    return [
        [promtool, "check", "config", str(config.config_file)],
        [promtool, "check", "rules", *map(str, config.rule_files)],
        [promtool, "test", "rules", *map(str, config.rule_tests)],
    ]


def server_command(
    tools: PrometheusTools,
    *,
    config_file: Path,
    storage_dir: Path,
    listen_address: str,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv of a Prometheus server with its data in ``storage_dir``."""
    command = [
        str(tools.prometheus),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={storage_dir}",
        f"--web.listen-address={listen_address}",
    ]
    if tools.web_assets is not None:
        command.append(f"--web.local-assets={tools.web_assets}")
    return command + list(extra_args)


def lists_need_update(apt_output: str) -> bool:
    """True when apt-get failed because its package lists are missing or stale."""
    return any(words in apt_output for words in _STALE_LISTS)


# --------------------------------------------------------------------------
# Finding and fetching
# --------------------------------------------------------------------------


def on_path(config: DevPrometheusConfig) -> PrometheusTools | None:
    """Both binaries from PATH, or None when either is missing or PATH is not used."""
    if not config.use_path:
        return None
    found = [shutil.which(name) for name in _BINARIES]
    if None in found:
        return None
    prometheus, promtool = (Path(path) for path in found if path is not None)
    return PrometheusTools(prometheus, promtool)


def unpacked(config: DevPrometheusConfig) -> PrometheusTools | None:
    """The binaries of a completely unpacked package in the cache, or None."""
    root = config.unpacked_dir
    binaries = [root / "usr" / "bin" / name for name in _BINARIES]
    if not (root / _FETCHED_MARKER).is_file() or not all(os.access(b, os.X_OK) for b in binaries):
        return None
    prometheus, promtool = binaries
    return PrometheusTools(prometheus, promtool, root / "usr" / "share" / "prometheus" / "web")


def locate(config: DevPrometheusConfig) -> PrometheusTools | None:
    """PATH first, then the cache; None when Prometheus still has to be fetched."""
    return on_path(config) or unpacked(config)


def fetch(config: DevPrometheusConfig) -> PrometheusTools:
    """Prometheus and promtool, downloading and unpacking the package the first time.

    The package is unpacked into a staging directory renamed on success, so an
    interrupted fetch is never mistaken for a complete one; a file lock serialises
    parallel fetches (make and pytest may both ask).
    """
    found = locate(config)
    if found is not None:
        return found
    with file_lock(config.cache_dir / "fetch.lock"):
        found = unpacked(config)
        if found is not None:
            return found
        staging = config.cache_dir / f"{config.package}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        deb = _download(config, staging)
        tree = staging / "tree"
        _run([config.dpkg_deb, "-x", str(deb), str(tree)], f"unpacking {deb.name}")
        if not all((tree / "usr" / "bin" / name).is_file() for name in _BINARIES):
            raise DevPrometheusError(f"{deb.name} holds no usr/bin/prometheus and promtool")
        (tree / _FETCHED_MARKER).write_text(deb.name + "\n")
        shutil.rmtree(config.unpacked_dir, ignore_errors=True)
        tree.rename(config.unpacked_dir)
        shutil.rmtree(staging)
    found = unpacked(config)
    if found is None:
        raise DevPrometheusError(f"{config.unpacked_dir} holds no executable prometheus")
    return found


def version(tools: PrometheusTools) -> str:
    """The first line of ``prometheus --version``, e.g. ``prometheus, version 2.42.0…``."""
    output = _run([str(tools.prometheus), "--version"], "asking prometheus its version")
    return output.splitlines()[0] if output else ""


def _download(config: DevPrometheusConfig, directory: Path) -> Path:
    """``apt-get download`` the package into ``directory``; update stale lists as root."""
    if shutil.which(config.apt_get) is None:
        raise DevPrometheusError(
            f"Prometheus is not on PATH and {config.apt_get!r} is not available to fetch "
            f"Debian's {config.package!r} package: install Prometheus 2.x (prometheus and "
            "promtool) and put it on PATH"
        )
    download = [config.apt_get, "download", config.package]
    proc = _apt(download, directory)
    if proc.returncode != 0 and lists_need_update(proc.stdout):
        as_root = os.geteuid() == 0 if config.as_root is None else config.as_root
        if not as_root:
            raise DevPrometheusError(
                f"apt-get cannot find the {config.package!r} package; its package lists "
                "look missing or stale. Run `sudo apt-get update` (or install Prometheus "
                f"yourself and put it on PATH), then retry.\n{proc.stdout[-2000:]}"
            )
        update = _apt([config.apt_get, "update"], directory)
        if update.returncode != 0:
            raise DevPrometheusError(f"apt-get update failed:\n{update.stdout[-4000:]}")
        proc = _apt(download, directory)
    if proc.returncode != 0:
        raise DevPrometheusError(
            f"apt-get download {config.package} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}"
        )
    debs = sorted(directory.glob(f"{config.package}_*.deb"))
    if not debs:
        raise DevPrometheusError(f"apt-get download left no {config.package}_*.deb behind")
    return debs[-1]


def _apt(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def _run(command: list[str], doing: str) -> str:
    proc = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DevPrometheusError(f"{doing} failed (exit {proc.returncode}):\n{proc.stdout}")
    return proc.stdout
