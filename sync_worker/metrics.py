"""Metric handles, built from an injected registry so tests and workers never share state.

Names follow Prometheus conventions (base units, ``_total`` counters); docs/metrics.md
lists every metric with its labels and what bounds them. Labels are bounded: outcomes,
reasons, kinds, configured channel and connector names and the worker's own topics and
partitions, never order ids. SKUs appear in only two places: the SKUs of a live
session's lineup while the session is live, and the watched SKUs (``[metrics]
sku_allowlist`` plus the ``top_skus`` hottest), each worker only for the SKUs of the
partitions it owns. Series whose subject went away (a session ended, a partition was
revoked, a SKU cooled down) are removed, not left at their last value.

``prime_*`` create the labelled series known at start at 0, so a dashboard shows a flat
0 instead of "no data" before the first event.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from sync_worker.domain.alerts import LEVELS
from sync_worker.domain.events import Outcome

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_PUSH_BUCKETS = (*_LATENCY_BUCKETS, 10.0, 30.0, 60.0)
"""A push also waits for the platform's rate limit and for retries: up to a minute."""

OTHER_CHANNEL: Final = "other"
"""The ``channel`` label of order lines from a channel that is not configured."""

PUSH_RESULTS: Final = ("ok", "deferred", "rejected", "error", "dead_lettered")
CONNECTOR_ERROR_KINDS: Final = (
    "rate_limited",
    "transient",
    "rejected",
    "quota_exhausted",
    "contract",
)
QUOTA_CHANGE_RESULTS: Final = ("queued", "duplicate")
RECLAIM_RESULTS: Final = ("full", "partial", "none", "unreported")
WEBHOOK_OUTCOMES: Final = (
    "accepted",
    "forged",
    "replayed",
    "too_large",
    "malformed",
    "unknown_shop",
    "unavailable",
)
DEAD_LETTER_REASONS: Final = (
    # the SKU-event codec
    "empty_value",
    "malformed_json",
    "unknown_type",
    "unsupported_schema_version",
    "schema_violation",
    "key_mismatch",
    # the inbound service
    "invalid_notification",
    "unknown_channel",
    "hydration_failed",
    "unknown_sku",
    "invalid_line",
    # the alert service, the payment clock, the publisher
    "invalid_alert",
    "alert_undelivered",
    "invalid_decision",
    "push_failed",
)
"""Every reason a dead letter is sent with (docs/events.md); a test keeps them in step."""


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    sku_events: Counter
    order_lines_received: Counter
    order_lines_decided: Counter
    decision_latency: Histogram
    dead_letters: Counter
    oversold_units: Counter
    pushes: Counter
    push_latency: Histogram
    connector_retries: Counter
    connector_errors: Counter
    quota_changes: Counter
    reclaims: Counter
    worker_up: Gauge
    worker_rebalancing: Gauge
    assigned_partitions: Gauge
    consumer_lag: Gauge
    channel_quota: Gauge
    sku_sellable: Gauge
    sku_quota: Gauge
    webhooks: Counter
    live_subscribers: Gauge
    rate_limit_waits: Counter
    circuit_open: Gauge
    writes_in_flight: Gauge
    drift_repairs: Counter
    alerts_fired: Counter
    alert_notifications: Counter
    unpaid_released: Counter
    session_remaining: Gauge
    session_velocity: Gauge
    session_eta: Gauge
    session_alert_level: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, *, process: bool = False) -> Metrics:
        """The handles, on ``registry`` (a fresh one if None). ``process`` adds the
        process, platform and garbage-collector collectors (``process_cpu_seconds_total``,
        ``process_resident_memory_bytes``, ``python_info``...): for the worker's own
        registry, not for a test's."""
        registry = registry if registry is not None else CollectorRegistry()
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        return cls(
            registry=registry,
            sku_events=Counter(
                "stockcast_sku_events_total",
                "SKU events consumed, by event type.",
                ["type"],
                registry=registry,
            ),
            order_lines_received=Counter(
                "stockcast_order_lines_received_total",
                "Order-line placements the ledger consumed, by channel (a configured "
                "channel's name, or 'other').",
                ["channel"],
                registry=registry,
            ),
            order_lines_decided=Counter(
                "stockcast_order_lines_decided_total",
                "Order-line decisions, by outcome and reason.",
                ["outcome", "reason"],
                registry=registry,
            ),
            decision_latency=Histogram(
                "stockcast_decision_latency_seconds",
                "From the order's event time to stockcast's decision.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            dead_letters=Counter(
                "stockcast_dead_letters_total",
                "Inputs sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
            oversold_units=Counter(
                "stockcast_oversold_units_total",
                "Units committed beyond sellable stock. Must stay 0.",
                registry=registry,
            ),
            pushes=Counter(
                "stockcast_pushes_total",
                "Stock writes to platforms, by connector and result "
                "(ok, deferred: every attempt failed and it will be retried, "
                "rejected: refused for good, error: the connector broke its contract, "
                "dead_lettered: given up after every round failed).",
                ["connector", "result"],
                registry=registry,
            ),
            push_latency=Histogram(
                "stockcast_push_latency_seconds",
                "From the ledger's decision (when the worker produced the quota change) "
                "to the platform's acknowledgement of the write, by connector.",
                ["connector"],
                buckets=_PUSH_BUCKETS,
                registry=registry,
            ),
            connector_retries=Counter(
                "stockcast_connector_retries_total",
                "Platform writes attempted again after a retryable failure, by connector.",
                ["connector"],
                registry=registry,
            ),
            connector_errors=Counter(
                "stockcast_connector_errors_total",
                "Failed attempts of platform writes, by connector and kind (rate_limited, "
                "transient, rejected, quota_exhausted, contract: the connector raised "
                "something outside the SDK's errors).",
                ["connector", "kind"],
                registry=registry,
            ),
            quota_changes=Counter(
                "stockcast_quota_changes_total",
                "Quota changes offered to the publisher, by connector and result "
                "(queued, duplicate: a version already handled).",
                ["connector", "result"],
                registry=registry,
            ),
            reclaims=Counter(
                "stockcast_reclaims_total",
                "Quota reductions settled, by connector and result (full, partial: buyers "
                "took units first, none, unreported: the settlement could not be sent).",
                ["connector", "result"],
                registry=registry,
            ),
            worker_up=Gauge(
                "stockcast_worker_up",
                "1 while the worker is running and assigned its partitions.",
                registry=registry,
            ),
            worker_rebalancing=Gauge(
                "stockcast_worker_rebalancing",
                "1 while a rebalance is in progress (partitions revoked, not yet assigned "
                "and recovered), else 0.",
                registry=registry,
            ),
            assigned_partitions=Gauge(
                "stockcast_assigned_partitions",
                "Partitions of each input topic assigned to this worker.",
                ["topic"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                "stockcast_consumer_lag_records",
                "Records of an assigned input partition not yet processed by this worker "
                "(highwater minus the worker's position).",
                ["topic", "partition"],
                registry=registry,
            ),
            channel_quota=Gauge(
                "stockcast_channel_quota_units",
                "Units a channel shows (its quotas), summed over the SKUs this worker owns.",
                ["channel"],
                registry=registry,
            ),
            sku_sellable=Gauge(
                "stockcast_sku_sellable_units",
                "Sellable units of a watched SKU ([metrics] sku_allowlist and the top_skus "
                "hottest), on the worker that owns it.",
                ["sku"],
                registry=registry,
            ),
            sku_quota=Gauge(
                "stockcast_sku_quota_units",
                "Units a channel shows of a watched SKU (its quota), on the worker that owns it.",
                ["sku", "channel"],
                registry=registry,
            ),
            webhooks=Counter(
                "stockcast_webhooks_total",
                "Webhook deliveries received, by platform and outcome (accepted, "
                "forged: bad signature, replayed: outside the timestamp window, too_large, "
                "malformed, unknown_shop, unavailable: could not be stored, retry later).",
                ["platform", "outcome"],
                registry=registry,
            ),
            live_subscribers=Gauge(
                "stockcast_live_subscribers",
                "Live-room stream subscribers connected now, by protocol (sse, websocket).",
                ["protocol"],
                registry=registry,
            ),
            rate_limit_waits=Counter(
                "stockcast_rate_limit_waits_seconds_total",
                "Seconds writes waited for a platform's rate limit, ours or its own hint.",
                ["connector"],
                registry=registry,
            ),
            circuit_open=Gauge(
                "stockcast_connector_circuit_open",
                "1 while a channel's writes are paused because its platform quota is spent.",
                ["channel"],
                registry=registry,
            ),
            writes_in_flight=Gauge(
                "stockcast_connector_writes_in_flight",
                "Stock writes of a channel on their way now, each for another SKU.",
                ["channel"],
                registry=registry,
            ),
            drift_repairs=Counter(
                "stockcast_drift_repairs_total",
                "Read-backs that found a channel showing more than its quota, by connector; "
                "the allocator reclaims the excess once a second read-back confirms it.",
                ["connector"],
                registry=registry,
            ),
            alerts_fired=Counter(
                "stockcast_alerts_fired_total",
                "Session stock alerts fired, by level (low, critical, sold_out).",
                ["level"],
                registry=registry,
            ),
            alert_notifications=Counter(
                "stockcast_alert_notifications_total",
                "Alert notifications to webhook targets, by target and outcome "
                "(delivered, retried, failed).",
                ["target", "outcome"],
                registry=registry,
            ),
            unpaid_released=Counter(
                "stockcast_unpaid_released_total",
                "Order lines whose payment window lapsed, by platform: the payment clock sent "
                "their unpaid_timeout cancellation (the ledger ignores it for paid lines).",
                ["platform"],
                registry=registry,
            ),
            session_remaining=Gauge(
                "stockcast_session_remaining_units",
                "Units a live session can still sell of a SKU in its lineup.",
                ["session", "sku"],
                registry=registry,
            ),
            session_velocity=Gauge(
                "stockcast_session_velocity_units_per_minute",
                "Smoothed sales rate of a lineup SKU in a live session, per room.",
                ["session", "sku", "channel"],
                registry=registry,
            ),
            session_eta=Gauge(
                "stockcast_session_sellout_eta_seconds",
                "Seconds until a lineup SKU sells out at its current rate (+Inf when idle).",
                ["session", "sku"],
                registry=registry,
            ),
            session_alert_level=Gauge(
                "stockcast_session_alert_level",
                "Stock alert level of a lineup SKU in a live session: 0 none, 1 low, "
                "2 critical, 3 sold out.",
                ["session", "sku"],
                registry=registry,
            ),
        )

    def prime_connectors(self, channels: Iterable[tuple[str, str]]) -> None:
        """The series of each ``(channel, connector)``: pushes, errors, retries, latency,
        waits, quota changes, reclaims, drift repairs per connector; circuit and writes in
        flight per channel."""
        for channel, connector in channels:
            for result in PUSH_RESULTS:
                self.pushes.labels(connector, result)
            for kind in CONNECTOR_ERROR_KINDS:
                self.connector_errors.labels(connector, kind)
            for result in QUOTA_CHANGE_RESULTS:
                self.quota_changes.labels(connector, result)
            for result in RECLAIM_RESULTS:
                self.reclaims.labels(connector, result)
            self.connector_retries.labels(connector)
            self.push_latency.labels(connector)
            self.rate_limit_waits.labels(connector)
            self.drift_repairs.labels(connector)
            self.circuit_open.labels(channel).set(0)
            self.writes_in_flight.labels(channel).set(0)

    def prime_worker(self, channels: Iterable[str], inbound_platforms: Iterable[str]) -> None:
        """The ledger's, alerts' and webhooks' series: order lines received per configured
        channel and ``other``, accepted decisions, every alert level and dead-letter
        reason, every webhook outcome of each inbound platform."""
        for channel in (*channels, OTHER_CHANNEL):
            self.order_lines_received.labels(channel)
        self.order_lines_decided.labels(Outcome.ACCEPTED.value, "")
        for level in LEVELS:
            self.alerts_fired.labels(level.value)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for platform in inbound_platforms:
            for outcome in WEBHOOK_OUTCOMES:
                self.webhooks.labels(platform, outcome)
        self.worker_rebalancing.set(0)


class BatchCounts:
    """Counter increments gathered over a batch, added once per series by ``apply``:
    ``labels()`` and ``inc()`` take a lock each, and a hot SKU's batch repeats the same
    few series hundreds of times."""

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[Counter, tuple[str, ...]]] = collections.Counter()

    def inc(self, metric: Counter, *labels: str, amount: int = 1) -> None:
        self._counts[(metric, labels)] += amount

    def apply(self) -> None:
        for (metric, labels), amount in self._counts.items():
            (metric.labels(*labels) if labels else metric).inc(amount)
        self._counts.clear()


def channel_label(channel: str, configured: frozenset[str]) -> str:
    """The ``channel`` label of an order line: its channel if configured, else
    ``other``, so a typo on a platform cannot grow the series."""
    return channel if channel in configured else OTHER_CHANNEL
