"""The ``stockcast`` command. The only module that reads ``os.environ``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from sync_worker import devkafka, devprometheus
from sync_worker.cli_bench import bench
from sync_worker.cli_checklist import checklist
from sync_worker.cli_session import session
from sync_worker.cli_simulate import simulate
from sync_worker.cli_stock import stock
from sync_worker.config import CONFIG_PATH_ENV, Settings, SettingsError, load_settings_file


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings_file(config, os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


_config_option = click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_PATH_ENV,
    help="Settings file (default: ./stockcast.toml if present). "
    "STOCKCAST_<SECTION>__<KEY> variables override it.",
)


@click.group()
@click.version_option(package_name="stockcast")
@click.pass_context
def main(ctx: click.Context) -> None:
    """stockcast: one true stock position per SKU, every live room in step with it."""
    ctx.obj = dict(os.environ)  # subcommand modules get the environment from here


main.add_command(stock)
main.add_command(simulate)
main.add_command(session)
main.add_command(checklist)
main.add_command(bench)


@main.command()
@_config_option
def run(config: Path | None) -> None:
    """Run the worker daemon until SIGTERM or Ctrl-C.

    Consumes order and stock events, decides every order line, keeps the per-SKU
    stock table, emits stock levels and pushes counts to every configured channel.
    Serves /healthz and /metrics on the configured web port.
    """
    from sync_worker.streaming.worker import run_worker

    run_worker(_settings(config))


@main.group()
def settings() -> None:
    """Inspect settings."""


@settings.command("show")
@_config_option
def settings_show(config: Path | None) -> None:
    """Print the effective settings as JSON, secrets masked."""
    shown = _settings(config).masked()
    click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


@main.group()
def connectors() -> None:
    """Installed platform connectors."""


@connectors.command("list")
def connectors_list() -> None:
    """List the connectors registered under the ``stockcast.connectors`` entry point."""
    from connectors import registry

    for name, entry_point in sorted(registry.available().items()):
        click.echo(f"{name}\t{entry_point.value}")


@main.group()
def dev() -> None:
    """Local tools for development, fetched by stockcast: Apache Kafka (KRaft) and
    Prometheus."""


def _dev_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that say which local cluster a `dev` command means."""
    options = [
        click.option(
            "--brokers",
            type=click.Choice(["1", "3"]),
            default="1",
            show_default=True,
            help="1 for development, 3 for fault tests.",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where broker data and logs live (default: var/kafka).",
        ),
        click.option(
            "--port",
            type=int,
            default=None,
            help="First broker port (default 9092; broker i uses port+i).",
        ),
        click.option(
            "--controller-port",
            type=int,
            default=None,
            help="First KRaft controller port (default 9192).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _dev_config(
    brokers: str, data_dir: Path | None, port: int | None, controller_port: int | None
) -> devkafka.DevKafkaConfig:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else "java"
    config = devkafka.DevKafkaConfig(brokers=int(brokers), java=java)
    if data_dir is not None:
        config = replace(config, data_dir=data_dir.resolve())
    if port is not None:
        config = replace(config, base_port=port)
    if controller_port is not None:
        config = replace(config, controller_base_port=controller_port)
    return config


@dev.command("fetch")
def dev_fetch() -> None:
    """Download the pinned Kafka release from Maven Central (once; cached after)."""
    try:
        click.echo(devkafka.fetch(devkafka.DevKafkaConfig()))
    except devkafka.DevKafkaError as error:
        raise click.ClickException(str(error)) from None


@dev.command("up")
@_dev_options
def dev_up(**where: Any) -> None:
    """Fetch Kafka (first time only), start it, and wait until it answers."""
    try:
        bootstrap = devkafka.up(_dev_config(**where))
    except devkafka.DevKafkaError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"kafka up: {bootstrap}")


@dev.command("down")
@_dev_options
def dev_down(**where: Any) -> None:
    """Stop the local brokers; data stays for the next `up`."""
    devkafka.down(_dev_config(**where))
    click.echo("kafka down")


@dev.command("status")
@_dev_options
def dev_status(**where: Any) -> None:
    """Show each local broker: port, pid, alive. Exit 1 when any is down."""
    nodes = devkafka.status(_dev_config(**where))
    for node in nodes:
        state = "up" if node.alive else "down"
        click.echo(f"node {node.node_id}\tport {node.port}\tpid {node.pid or '-'}\t{state}")
    if not all(node.alive for node in nodes):
        sys.exit(1)


@dev.group("prometheus")
def dev_prometheus() -> None:
    """Prometheus and promtool: from PATH, else Debian's package unpacked into
    deploy/prometheus/.cache (never installed system-wide)."""


def _prometheus_tools() -> devprometheus.PrometheusTools:
    try:
        return devprometheus.fetch(devprometheus.DevPrometheusConfig())
    except devprometheus.DevPrometheusError as error:
        raise click.ClickException(str(error)) from None


@dev_prometheus.command("fetch")
def dev_prometheus_fetch() -> None:
    """Find Prometheus on PATH, or download Debian's package (once; cached after)."""
    tools = _prometheus_tools()
    click.echo(f"{tools.prometheus}\n{tools.promtool}")


@dev_prometheus.command("check")
def dev_prometheus_check() -> None:
    """Check deploy/prometheus with promtool: the scrape config, the rules, and the
    rules' unit tests (every alert fires on its failure and stays silent when healthy)."""
    tools = _prometheus_tools()
    failed = False
    for command in devprometheus.check_commands(tools, devprometheus.DevPrometheusConfig()):
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        click.echo(f"$ promtool {' '.join(command[1:3])}\n{proc.stdout}{proc.stderr}".rstrip())
        failed = failed or proc.returncode != 0
    if failed:
        raise click.ClickException("promtool found problems (above)")


@dev_prometheus.command("run")
@click.option("--port", type=int, default=9090, show_default=True, help="Web UI and API port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/prometheus"),
    show_default=True,
    help="Where Prometheus keeps its samples.",
)
def dev_prometheus_run(port: int, data_dir: Path) -> None:
    """Run Prometheus in the foreground with deploy/prometheus/prometheus.yml: it scrapes
    a local worker on 127.0.0.1:6066 and evaluates the stockcast rules. Ctrl-C stops it."""
    config = devprometheus.DevPrometheusConfig()
    command = devprometheus.server_command(
        _prometheus_tools(),
        config_file=config.config_file,
        storage_dir=data_dir.resolve(),
        listen_address=f"127.0.0.1:{port}",
    )
    click.echo(f"prometheus on http://127.0.0.1:{port} (Ctrl-C stops it)")
    with subprocess.Popen(command) as server:
        try:
            server.wait()
        except KeyboardInterrupt:  # a terminal's Ctrl-C reached Prometheus too; kill -INT not
            server.terminate()
            server.wait()
    if server.returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise click.ClickException(f"prometheus exited with {server.returncode}")


@main.command()
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds of live selling before the summary.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Buyer simulation seed.")
@click.option("--keep-broker", is_flag=True, help="Leave the local broker running afterwards.")
@click.option(
    "--record-arrivals",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Record the hot SKU's buyers (served or refused) as JSON lines, with a trace "
    "beside it (.toml) that `stockcast simulate` replays against every policy.",
)
def demo(duration: float, seed: int, keep_broker: bool, record_arrivals: Path | None) -> None:
    """Play a live session end to end: broker, worker, simulated rooms and buyers.

    Shows stock per SKU and per channel while it runs and ends with a summary whose
    `oversold` line must read 0. Ctrl-C stops everything cleanly.
    """
    from sync_worker.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=duration, seed=seed, keep_broker=keep_broker, record_arrivals=record_arrivals
    )
    sys.exit(run_demo(options, dict(os.environ)))
