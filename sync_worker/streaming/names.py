"""Every persistent Kafka name, spelled out.

Topic, table and agent names are data, not derived from module or function names,
so renaming code renames nothing on the broker. The ``.v1`` suffix is the wire
schema version (see ``sync_worker/schemas``). The prefix comes from settings so
that several deployments (or test runs) can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

SKU_EVENTS = "sku-events.v1"
"""Input, keyed by SKU: order lines and stock movements (order_line.*, stock.*)."""

DECISIONS = "decisions.v1"
"""Output, keyed by SKU: one order_line.decided per order-line placement."""

STOCK_LEVELS = "stock-levels.v1"
"""Output, keyed by SKU: stock.level_changed with a SKU's newest position after each
batch that changed it, and
stock.quota_changed for every change of a channel's quota (the publisher pushes those)."""

DEAD_LETTERS = "dead-letters.v1"
"""Inputs that could not be handled, with the reason; nothing is dropped silently."""

CANCELLATION_REQUESTS = "cancellation-requests.v1"
"""Output, keyed by SKU: lines stockcast could not accept, for their platforms to cancel."""

AUDIT = "audit.v1"
"""Output, keyed by SKU: every change with who, what, why, before and after."""

ORDER_DECISIONS = "order-decisions.v1"
"""Internal, keyed by order: the answers to lines of multi-line orders, gathered per order."""

NOTIFICATIONS = "notifications.v1"
"""Input, keyed by platform order: verified webhook notifications, before hydration into
order-line events. Only the webhook ingress writes here, and only what it verified."""

ALERTS = "alerts.v1"
"""Output, keyed by SKU: alert.raised when a live session's stock crosses a threshold.
Written by the ledger step through a plain producer; notifications are sent from it."""

SESSIONS = "sessions.v1"
"""Compacted, keyed by session id: the latest state of every live session (schedule,
rooms, lineup, audited moves). Every worker reads it whole into memory."""

LEDGER_STATE = "ledger-state.v1"
"""Compacted, keyed like ``streaming.state``, one partition per SKU-events partition: the
ledger's changelog. A SKU's position and the records of its order lines and stock
movements, all in its input partition's number, and after each batch where that input
partition resumes (``streaming.ledger_service``)."""

ORDERS_TABLE = "orders"
"""Table: order key -> OrderTally of an all-or-nothing order still being decided."""

ORDERS_AGENT = "orders"
PUBLISHER_GROUP = "publisher"
"""Consumer group ``<app_id>-publisher``: where the publisher's feed keeps its offsets
(it reads the stock levels beside faust, on the partitions the ledger has here)."""
LEDGER_GROUP = "ledger"
"""Consumer group ``<app_id>-ledger``: the SKU events, read by the ledger outside faust."""
FAUST_LEDGER_CHANGELOG = "ledger-changelog"
"""``<app_id>-ledger-changelog``: the ledger's state while it was a faust table, imported
once per partition into ``LEDGER_STATE`` by a worker upgraded from then."""
INBOUND_GROUP = "inbound"
"""Consumer group ``<app_id>-inbound``: notifications are read apart from faust's group."""
ALERTS_GROUP = "alerts"
"""Consumer group ``<app_id>-alerts``: sends the alert notifications."""
PAYMENTS_GROUP = "payments"
"""Consumer group ``<app_id>-payments``: the payment clock, reading accepted decisions."""


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The full topic names for one deployment prefix."""

    sku_events: str
    decisions: str
    stock_levels: str
    dead_letters: str
    cancellation_requests: str
    audit: str
    order_decisions: str
    notifications: str
    alerts: str
    sessions: str
    ledger_state: str

    @classmethod
    def for_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            sku_events=f"{prefix}.{SKU_EVENTS}",
            decisions=f"{prefix}.{DECISIONS}",
            stock_levels=f"{prefix}.{STOCK_LEVELS}",
            dead_letters=f"{prefix}.{DEAD_LETTERS}",
            cancellation_requests=f"{prefix}.{CANCELLATION_REQUESTS}",
            audit=f"{prefix}.{AUDIT}",
            order_decisions=f"{prefix}.{ORDER_DECISIONS}",
            notifications=f"{prefix}.{NOTIFICATIONS}",
            alerts=f"{prefix}.{ALERTS}",
            sessions=f"{prefix}.{SESSIONS}",
            ledger_state=f"{prefix}.{LEDGER_STATE}",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.sku_events,
            self.decisions,
            self.stock_levels,
            self.dead_letters,
            self.cancellation_requests,
            self.audit,
            self.order_decisions,
            self.notifications,
            self.alerts,
            self.sessions,
            self.ledger_state,
        )
