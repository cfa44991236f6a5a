"""The metric handles: every name documented, the series known at start primed at 0, the
label vocabularies in step with the code that uses them, process metrics where asked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sync_worker.domain.alerts import LEVELS
from sync_worker.metrics import (
    CONNECTOR_ERROR_KINDS,
    DEAD_LETTER_REASONS,
    OTHER_CHANNEL,
    PUSH_RESULTS,
    WEBHOOK_OUTCOMES,
    BatchCounts,
    Metrics,
    channel_label,
)
from sync_worker.streaming.alert_service import ALERT_UNDELIVERED, INVALID_ALERT

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "metrics.md"
PROCESS_METRICS = ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info")


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """What a scrape shows, as users write it in queries (counters with ``_total``)."""
    names = set()
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def documented_names() -> set[str]:
    """The metric names in the first column of the reference tables of docs/metrics.md."""
    text = DOCS.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `((?:stockcast|process|python)_[a-z_]+)`", text, re.MULTILINE))


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_stockcast_metric_is_documented_and_every_documented_one_exists() -> None:
    exposed = exposed_names(Metrics.create(process=True).registry)

    stockcast = {name for name in exposed if name.startswith("stockcast_")}
    assert stockcast == {name for name in documented_names() if name.startswith("stockcast_")}
    assert set(PROCESS_METRICS) <= documented_names() <= exposed


def test_the_new_observability_metrics_have_their_agreed_names() -> None:
    exposed = exposed_names(Metrics.create().registry)

    assert {
        "stockcast_order_lines_received_total",
        "stockcast_channel_quota_units",
        "stockcast_sku_sellable_units",
        "stockcast_sku_quota_units",
        "stockcast_consumer_lag_records",
        "stockcast_worker_rebalancing",
        "stockcast_assigned_partitions",
        "stockcast_connector_retries_total",
        "stockcast_connector_errors_total",
        "stockcast_session_alert_level",
    } <= exposed


def test_process_metrics_only_on_a_registry_that_asks_for_them() -> None:
    worker, private = Metrics.create(process=True), Metrics.create()

    assert set(PROCESS_METRICS) <= exposed_names(worker.registry)
    assert not exposed_names(private.registry) & set(PROCESS_METRICS)
    assert (sample(worker, "process_resident_memory_bytes") or 0) > 0


def test_two_metric_sets_never_share_state() -> None:
    one, two = Metrics.create(), Metrics.create()

    one.connector_retries.labels("tiktok_shop").inc()

    assert sample(one, "stockcast_connector_retries_total", connector="tiktok_shop") == 1
    assert sample(two, "stockcast_connector_retries_total", connector="tiktok_shop") is None


def test_connector_series_are_primed_at_zero() -> None:
    metrics = Metrics.create()

    metrics.prime_connectors([("tiktok-room-1", "tiktok_shop"), ("shop-1", "shopify")])

    for connector in ("tiktok_shop", "shopify"):
        for result in PUSH_RESULTS:
            assert (
                sample(metrics, "stockcast_pushes_total", connector=connector, result=result) == 0
            )
        for kind in CONNECTOR_ERROR_KINDS:
            name = "stockcast_connector_errors_total"
            assert sample(metrics, name, connector=connector, kind=kind) == 0
        assert sample(metrics, "stockcast_connector_retries_total", connector=connector) == 0
        assert sample(metrics, "stockcast_push_latency_seconds_count", connector=connector) == 0
        name = "stockcast_rate_limit_waits_seconds_total"
        assert sample(metrics, name, connector=connector) == 0
    for channel in ("tiktok-room-1", "shop-1"):
        assert sample(metrics, "stockcast_connector_circuit_open", channel=channel) == 0


def test_worker_series_are_primed_at_zero() -> None:
    metrics = Metrics.create()

    metrics.prime_worker(["room-a", "room-b"], inbound_platforms=["shopify"])

    for channel in ("room-a", "room-b", OTHER_CHANNEL):
        assert sample(metrics, "stockcast_order_lines_received_total", channel=channel) == 0
    name = "stockcast_order_lines_decided_total"
    assert sample(metrics, name, outcome="accepted", reason="") == 0
    for level in LEVELS:
        assert sample(metrics, "stockcast_alerts_fired_total", level=level.value) == 0
    for reason in DEAD_LETTER_REASONS:
        assert sample(metrics, "stockcast_dead_letters_total", reason=reason) == 0
    for outcome in WEBHOOK_OUTCOMES:
        name = "stockcast_webhooks_total"
        assert sample(metrics, name, platform="shopify", outcome=outcome) == 0
    assert sample(metrics, "stockcast_worker_rebalancing") == 0


@pytest.mark.parametrize(
    ("channel", "label"), [("room-a", "room-a"), ("room-typo", "other"), ("", "other")]
)
def test_an_unconfigured_channel_is_labelled_other(channel: str, label: str) -> None:
    assert channel_label(channel, frozenset({"room-a", "room-b"})) == label


def _string_constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def _reasons_in(path: Path) -> set[str]:
    """Reasons passed where dead letters are made: ``InvalidEvent(reason, …)``,
    ``_letter(record, reason, …)``, ``DeadLetter.of_record(record, reason, …)`` and
    ``reason=`` of ``DeadLetter.of``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _string_constants(tree)
    position = {"InvalidEvent": 0, "_letter": 1, "of_record": 1}
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        args = list(node.args)
        if name in position and len(args) > position[name]:
            args = [args[position[name]]]
        elif name == "of":
            args = [k.value for k in node.keywords if k.arg == "reason"]
        else:
            continue
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.add(constants[arg.id])
    return found


def test_every_dead_letter_reason_in_the_code_is_primed_and_documented() -> None:
    in_code = set().union(*(_reasons_in(p) for p in (ROOT / "sync_worker").rglob("*.py")))

    assert {INVALID_ALERT, ALERT_UNDELIVERED} <= in_code  # the scan sees through constants
    assert in_code == set(DEAD_LETTER_REASONS)
    events_doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert [r for r in DEAD_LETTER_REASONS if f"`{r}`" not in events_doc] == []


def test_every_webhook_outcome_in_the_code_is_primed() -> None:
    source = (ROOT / "sync_worker" / "web" / "webhooks.py").read_text(encoding="utf-8")

    counted = set(re.findall(r'outcome\("(\w+)"\)', source))
    counted |= set(re.findall(r'name = "(\w+)" if .* else "(\w+)"', source)[0])

    assert counted == set(WEBHOOK_OUTCOMES)


def test_batch_counts_add_up_per_series_and_only_once_applied() -> None:
    metrics = Metrics.create()
    counts = BatchCounts()
    for _ in range(3):
        counts.inc(metrics.order_lines_decided, "accepted", "")
    counts.inc(metrics.order_lines_decided, "rejected", "insufficient_stock")
    counts.inc(metrics.oversold_units, amount=2)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("stockcast_order_lines_decided_total", outcome="accepted", reason="") is None
    counts.apply()
    counts.apply()  # applied counts are gone: nothing is added twice
    assert value("stockcast_order_lines_decided_total", outcome="accepted", reason="") == 3
    rejected = {"outcome": "rejected", "reason": "insufficient_stock"}
    assert value("stockcast_order_lines_decided_total", **rejected) == 1
    assert value("stockcast_oversold_units_total") == 2
