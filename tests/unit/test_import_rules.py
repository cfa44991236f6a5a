"""The import rules of STYLE.md, checked on the source text (parsed with ``ast``, never imported).

- ``sync_worker/domain`` imports only the standard library and itself;
- ``connectors/base.py`` imports nothing of ``sync_worker``;
- platform connectors (``connectors/<platform>/``) never import ``sync_worker``, faust or
  aiokafka;
- only ``sync_worker/streaming`` imports faust (and mode, faust's service library);
- only ``sync_worker/cli.py`` reads the process environment;
- nothing in ``sync_worker`` imports a platform connector (only the registry loads them),
  with one deliberate exception: the demo (``demo.py``, ``demo_platforms.py``) plays the
  platforms' side of a live session (buyers, the platform mocks and their servers), so
  it drives the mocks directly; the worker it starts still reaches every platform only
  through the registry.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYNC_WORKER = ROOT / "sync_worker"
CONNECTORS = ROOT / "connectors"

DEMO = (SYNC_WORKER / "demo.py", SYNC_WORKER / "demo_platforms.py")
"""The modules of sync_worker allowed to import a platform's package (see above)."""

ENVIRONMENT_READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


@dataclass(frozen=True)
class Import:
    module: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), is_package=path.name == "__init__.py")


def imports_in(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every module an ``import`` or ``from ... import`` can bind, relative ones resolved.

    ``from a import b`` counts as importing ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                imported = ".".join([*base, *([node.module] if node.module else [])])
            else:
                imported = node.module or ""
            found.append(Import(imported, node.lineno))
            found += [Import(f"{imported}.{alias.name}", node.lineno) for alias in node.names]
    return found


def environment_reads(path: Path) -> list[int]:
    """Lines that touch the process environment through ``os``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENVIRONMENT_READERS
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in ENVIRONMENT_READERS]
    return sorted(lines)


def top(module: str) -> str:
    return module.partition(".")[0]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def sources(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def platform_packages() -> list[str]:
    """``connectors.<platform>`` for every platform connector package in the tree."""
    return sorted(f"connectors.{init.parent.name}" for init in CONNECTORS.glob("*/__init__.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def violations(paths: list[Path], forbidden: Callable[[str], bool]) -> Iterator[str]:
    for path in paths:
        for imported in imports_of(path):
            if forbidden(imported.module):
                yield f"{relative(path)}:{imported.line} imports {imported.module}"


# --- the checker itself -----------------------------------------------------------------


def test_the_checker_sees_plain_from_and_relative_imports() -> None:
    source = (
        "import os, faust.app\n"
        "from typing import Any\n"
        "from . import names\n"
        "from ..domain import ledger\n"
        "from .names import TopicNames\n"
        "def later():\n"
        "    from connectors import simulator\n"
    )

    found = {imported.module for imported in imports_in(source, "sync_worker.streaming.codecs")}

    assert found == {
        "os",
        "faust.app",
        "typing",
        "typing.Any",
        "sync_worker.streaming",
        "sync_worker.streaming.names",
        "sync_worker.domain",
        "sync_worker.domain.ledger",
        "sync_worker.streaming.names.TopicNames",
        "connectors",
        "connectors.simulator",
    }


def test_relative_imports_in_a_package_init_resolve_from_the_package() -> None:
    found = imports_in("from . import rooms\n", "connectors.simulator", is_package=True)

    assert [imported.module for imported in found] == [
        "connectors.simulator",
        "connectors.simulator.rooms",
    ]


def test_the_checker_sees_environment_reads(tmp_path: Path) -> None:
    path = tmp_path / "reader.py"
    path.write_text(
        "import os\nfrom os import getenv\nA = os.environ['X']\nB = os.getenv('Y')\n"
        "C = os.path.join('a')\n",
        encoding="utf-8",
    )

    assert environment_reads(path) == [2, 3, 4]


def test_the_checker_finds_every_platform_and_every_package() -> None:
    assert "connectors.simulator" in platform_packages()
    assert SYNC_WORKER / "domain" / "ledger.py" in sources(SYNC_WORKER)
    assert SYNC_WORKER / "cli.py" in sources(SYNC_WORKER)


# --- the rules --------------------------------------------------------------------------


def test_the_checker_sees_every_module_of_the_domain() -> None:
    found = {path.stem for path in sources(SYNC_WORKER / "domain")}

    assert {"events", "ledger", "orders", "position", "records", "replay"} <= found


@pytest.mark.parametrize("path", sources(SYNC_WORKER / "domain"), ids=relative)
def test_the_domain_imports_only_the_standard_library_and_itself(path: Path) -> None:
    def forbidden(module: str) -> bool:
        return top(module) not in sys.stdlib_module_names and not within(
            module, "sync_worker.domain"
        )

    assert list(violations([path], forbidden)) == []


def test_the_connector_sdk_imports_nothing_of_sync_worker() -> None:
    def forbidden(module: str) -> bool:
        return top(module) == "sync_worker"

    assert list(violations([CONNECTORS / "base.py"], forbidden)) == []


@pytest.mark.parametrize("platform", platform_packages())
def test_a_platform_connector_never_imports_the_worker_or_kafka(platform: str) -> None:
    def forbidden(module: str) -> bool:
        return top(module) in {"sync_worker", "faust", "aiokafka", "mode"}

    directory = CONNECTORS / platform.removeprefix("connectors.")
    assert list(violations(sources(directory), forbidden)) == []


def test_only_the_streaming_package_imports_faust() -> None:
    streaming = SYNC_WORKER / "streaming"
    outside = [
        path
        for path in sources(SYNC_WORKER) + sources(CONNECTORS)
        if not path.is_relative_to(streaming)
    ]

    def forbidden(module: str) -> bool:
        return top(module) in {"faust", "mode"}

    assert list(violations(outside, forbidden)) == []


@pytest.mark.parametrize(
    "path",
    [path for path in sources(SYNC_WORKER) if path != SYNC_WORKER / "cli.py"],
    ids=relative,
)
def test_only_the_cli_reads_the_environment(path: Path) -> None:
    assert environment_reads(path) == [], f"{relative(path)} reads os.environ"


def test_the_cli_is_where_the_environment_is_read() -> None:
    assert environment_reads(SYNC_WORKER / "cli.py") != []


def test_the_demo_receives_its_environment_instead_of_reading_it() -> None:
    assert [line for path in DEMO for line in environment_reads(path)] == []


def test_nothing_in_the_worker_imports_a_platform_connector() -> None:
    platforms = platform_packages()

    def forbidden(module: str) -> bool:
        return any(within(module, platform) for platform in platforms)

    worker = [path for path in sources(SYNC_WORKER) if path not in DEMO]
    sdk = sorted(CONNECTORS.glob("*.py"))  # base, registry, testing: the SDK
    assert list(violations(worker + sdk, forbidden)) == []


def test_the_demo_is_the_documented_exception() -> None:
    """If a demo module stops importing a platform's package, drop it from the exception."""
    platforms = platform_packages()
    for path in DEMO:
        imported = {imported.module for imported in imports_of(path)}
        assert any(within(module, platform) for module in imported for platform in platforms)


@pytest.mark.parametrize("path", sources(SYNC_WORKER / "domain"), ids=relative)
def test_the_domain_has_no_async_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    asynchronous = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)

    assert [node.lineno for node in ast.walk(tree) if isinstance(node, asynchronous)] == []
