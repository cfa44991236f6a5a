"""Metric handles, built from an injected registry so tests and workers never share state.

Names follow Prometheus conventions (base units, ``_total`` counters). Labels are
bounded: outcomes, reasons and connector names, never order ids; SKUs only for the
SKUs of a live session's lineup, and only while the session is live.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    sku_events: Counter
    order_lines_decided: Counter
    decision_latency: Histogram
    dead_letters: Counter
    oversold_units: Counter
    pushes: Counter
    push_latency: Histogram
    quota_changes: Counter
    reclaims: Counter
    worker_up: Gauge
    webhooks: Counter
    live_subscribers: Gauge
    rate_limit_waits: Counter
    circuit_open: Gauge
    drift_repairs: Counter
    alerts_fired: Counter
    alert_notifications: Counter
    unpaid_released: Counter
    session_remaining: Gauge
    session_velocity: Gauge
    session_eta: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            sku_events=Counter(
                "stockcast_sku_events_total",
                "SKU events consumed, by event type.",
                ["type"],
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
                "From the stock change's event time to the platform's acknowledgement.",
                ["connector"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            quota_changes=Counter(
                "stockcast_quota_changes_total",
                "Quota changes offered to the publisher, by connector and result "
                "(queued, duplicate: a version already handled, dropped).",
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
        )
