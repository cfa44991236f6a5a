"""The composition root: ``create_app(settings)`` builds the faust app and its services.

No module-level app and no side effects at import. faust gets an empty environment
mapping and ``autodiscover=False``, so everything it does comes from ``Settings``.
The ledger's step and the orders agent are thin: decode at the edge, call the pure
domain, write each state key once per batch, emit. The ledger's input is read outside
faust (``ledger_service``, docs/ledger.md); pushing to platforms happens in the
publisher, fed beside faust too. The worker's metrics (docs/metrics.md) are built on
one registry, which ``/metrics`` serves; the gauges that summarise state are refreshed
by services beside the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import mode
import orjson
from aiohttp import web
from aiokafka import ConsumerRecord
from faust.tables.manager import TableManager

from connectors import registry
from connectors.base import (
    Connector,
    InboundConnector,
    StockUpdate,
)
from sync_worker.config import Settings
from sync_worker.domain import allocation, ledger, orders
from sync_worker.domain.decide import Decided, Policies
from sync_worker.domain.events import (
    ChannelObserved,
    OrderLinePlaced,
    ReclaimSettled,
    SkuEvent,
    StockLevelChanged,
)
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.metrics import BatchCounts, Metrics, channel_label
from sync_worker.notify import Notifier
from sync_worker.publishing import Publisher
from sync_worker.streaming import codecs, names, state
from sync_worker.streaming.alert_service import AlertService
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.delivering_producer import DeliveringApp
from sync_worker.streaming.inbound_service import InboundService, accept_into
from sync_worker.streaming.kafka_clients import kafka_client_options
from sync_worker.streaming.ledger_batch import decide_batch, newest_levels
from sync_worker.streaming.ledger_service import LedgerService, WriteThrough
from sync_worker.streaming.ledger_store import PartitionStores
from sync_worker.streaming.pace import SessionPace
from sync_worker.streaming.partition_gauges import PartitionGauges
from sync_worker.streaming.payment_service import PaymentService
from sync_worker.streaming.publisher_feed import PublisherFeed
from sync_worker.streaming.session_service import SessionStore
from sync_worker.streaming.side_producer import SideProducer
from sync_worker.streaming.stock_gauges import StockGauges
from sync_worker.web.checklist import checklist_routes
from sync_worker.web.health import create_health_app
from sync_worker.web.live import LiveHub, LiveStock, live_routes
from sync_worker.web.sessions import session_routes
from sync_worker.web.stock import stock_routes
from sync_worker.web.webhooks import webhook_routes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StockcastApp:
    """The faust app plus the services that run beside it in one worker."""

    faust_app: faust.App
    topics: names.TopicNames
    services: tuple[mode.Service, ...]


class _HttpService(mode.Service):
    def __init__(
        self, app: web.Application, host: str, port: int, before_stop: Callable[[], None]
    ) -> None:
        super().__init__()
        self._runner = web.AppRunner(app)
        self._host, self._port = host, port
        self._before_stop = before_stop

    async def on_start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def on_stop(self) -> None:
        self._before_stop()  # ends the live streams, which would hold the shutdown open
        await self._runner.cleanup()


class _PublisherService(mode.Service):
    def __init__(self, publisher: Publisher) -> None:
        super().__init__()
        self.publisher = publisher

    async def on_start(self) -> None:
        await self.publisher.start()

    async def on_stop(self) -> None:
        await self.publisher.stop()


@dataclass(frozen=True)
class _Outputs:
    """Where a ledger step's events go, and what each one counts."""

    topics: names.TopicNames
    send: Callable[[str, bytes, bytes], None]
    """``send(topic, key, value)`` queues a record of the batch."""
    metrics: Metrics
    counts: BatchCounts
    """The batch's counter increments (``apply``-ed once the batch is decided)."""

    def emit(self, key: bytes, decided: Decided) -> None:
        """Queues the step's events but its stock level (``levels``)."""
        step, topics, send = decided.step, self.topics, self.send
        if step.decision is not None:
            decision = step.decision
            if decision.order_line_count > 1:  # gathered per order for all-or-nothing
                order = orders.order_key(decision.platform, decision.order_id).encode()
                send(topics.order_decisions, order, codecs.encode(decision))
            metrics = self.metrics
            self.counts.inc(metrics.order_lines_decided, decision.outcome, decision.reason or "")
            metrics.decision_latency.observe(max(0.0, time.time() - decision.event_time_ms / 1000))
            if step.oversold_units:
                self.counts.inc(metrics.oversold_units, amount=step.oversold_units)
            send(topics.decisions, key, codecs.encode(decision))
        if step.cancellation is not None:
            send(topics.cancellation_requests, key, codecs.encode(step.cancellation))
        if step.audit is not None:
            send(topics.audit, key, codecs.encode(step.audit))
        for change in decided.quota_changes:
            send(topics.stock_levels, key, codecs.encode(change))

    def levels(self, levels: Iterable[StockLevelChanged]) -> None:
        """Queues stock levels."""
        for level in levels:
            self.send(self.topics.stock_levels, level.sku.encode(), codecs.encode(level))


def build_connectors(settings: Settings) -> list[tuple[str, Connector]]:
    """One connector per configured channel, loaded through the plugin registry."""
    built = []
    for channel in settings.channels:
        options = dict(channel.options)
        options.update({key: secret.get_secret_value() for key, secret in channel.secrets.items()})
        connector = registry.load(channel.connector).from_options(options, channel.listings)
        built.append((channel.name, connector))
    return built


def inbound_by_platform(
    channels: Sequence[tuple[str, Connector]],
) -> dict[str, list[tuple[str, InboundConnector]]]:
    """The channels whose connectors also receive webhooks, grouped by platform."""
    grouped: dict[str, list[tuple[str, InboundConnector]]] = {}
    for name, connector in channels:
        if isinstance(connector, InboundConnector):
            grouped.setdefault(connector.platform, []).append((name, connector))
    return grouped


def decision_policies(settings: Settings) -> Policies:
    """The ledger and allocation policies the settings describe."""
    config = settings.allocation
    rules = tuple(
        allocation.ChannelRule(
            channel.name,
            ratio=channel.ratio,
            plus=channel.plus,
            floor=channel.floor,
            ceiling=channel.ceiling,
            latency_ms=channel.latency_ms,
        )
        for channel in settings.channels
    )

    def policy(kind: str) -> allocation.AllocationPolicy:
        return allocation.AllocationPolicy(
            kind=allocation.PolicyKind(kind),
            channels=rules,
            refresh_ms=round(config.refresh_s * 1000),
            lease_units=config.lease_units,
            min_buffer=config.min_buffer,
            cover=config.cover,
            rate_half_life_ms=config.rate_half_life_ms,
            dry_claw_ratio=config.dry_claw_ratio,
        )

    reserve = SafetyReserve(
        units=settings.ledger.default_reserve_units,
        percent=settings.ledger.default_reserve_percent,
    )
    return Policies(
        ledger=ledger.LedgerPolicy(default_reserve=reserve),
        allocation=policy(config.policy),
        allocation_by_sku={sku: policy(kind) for sku, kind in config.sku_policies.items()},
    )


def live_seed(
    channel: str, skus: Iterable[str], position_of: Callable[[str], SkuPosition | None]
) -> Iterator[LiveStock]:
    """A room's quotas as the ledger table holds them (SKUs of this worker's partitions)."""
    now_ms = int(time.time() * 1000)
    for sku in skus:
        position = position_of(sku)
        quota = position.allocation.channel(channel) if position is not None else None
        if position is not None and quota is not None:
            yield LiveStock(channel, sku, quota.quota, position.allocation.version, now_ms)


def _payment_services(
    settings: Settings,
    topics: names.TopicNames,
    sku_events: Any,
    dead_letter: Callable[[DeadLetter], Awaitable[Awaitable[Any]]],
    metrics: Metrics,
) -> tuple[mode.Service, ...]:
    """The payment clock, when some platform's payment window is configured."""
    if not settings.ledger.payment_timeout_s:
        return ()
    return (
        PaymentService(
            topic=topics.decisions,
            group_id=f"{settings.worker.app_id}-{names.PAYMENTS_GROUP}",
            consumer_options=kafka_client_options(settings.kafka),
            payment_timeout_s=settings.ledger.payment_timeout_s,
            send_event=_sender(sku_events),
            dead_letter=dead_letter,
            metrics=metrics,
        ),
    )


def _alert_services(
    settings: Settings,
    topics: names.TopicNames,
    dead_letter: Callable[[DeadLetter], Awaitable[Awaitable[Any]]],
    metrics: Metrics,
) -> tuple[mode.Service, ...]:
    """Alert notifications, when targets are configured (the alerts topic is written
    either way)."""
    if not settings.alerts.targets:
        return ()
    return (
        AlertService(
            topic=topics.alerts,
            group_id=f"{settings.worker.app_id}-{names.ALERTS_GROUP}",
            consumer_options=kafka_client_options(settings.kafka),
            notifier=Notifier(settings.alerts, metrics),
            dead_letter=dead_letter,
        ),
    )


def _sender(topic: Any) -> Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]:
    """``send(key, value)`` on a faust topic, returning the delivery to await."""

    async def send(key: bytes, value: bytes) -> Awaitable[Any]:
        delivery: Awaitable[Any] = await topic.send(key=key, value=value)
        return delivery

    return send


def _inbound_service(
    settings: Settings,
    topics: names.TopicNames,
    receivers: Mapping[str, InboundConnector],
    sku_events: Any,
    dead_letter: Callable[[DeadLetter], Awaitable[Awaitable[Any]]],
) -> InboundService:
    return InboundService(
        topic=topics.notifications,
        group_id=f"{settings.worker.app_id}-{names.INBOUND_GROUP}",
        consumer_options=kafka_client_options(settings.kafka),
        receivers=receivers,
        send_event=_sender(sku_events),
        dead_letter=dead_letter,
        concurrency=settings.worker.hydrate_concurrency,
    )


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Every faust setting we rely on, explicitly; faust's own defaults cover the rest."""
    kafka, worker = settings.kafka, settings.worker
    options: dict[str, Any] = {
        "broker": [f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        "env": {},
        "autodiscover": False,
        "store": "rocksdb://",
        "datadir": str(worker.data_dir),
        "web_enabled": False,  # our own aiohttp service serves /healthz and /metrics
        "web_bind": worker.web_host,
        "web_port": worker.web_port,
        "web_transport": "tcp://",
        "topic_partitions": kafka.partitions,
        "topic_replication_factor": kafka.replication_factor,
        "processing_guarantee": worker.processing_guarantee,
        "broker_session_timeout": worker.session_timeout_s,
        "broker_heartbeat_interval": worker.session_timeout_s / 5,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
    }
    # TLS verifies the brokers against the system's CA store.
    tls = ssl.create_default_context() if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=tls,
        )
    elif tls is not None:
        options["broker_credentials"] = faust.SSLCredentials(tls)
    return options


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    channels: Sequence[tuple[str, Connector]] | None = None,
) -> StockcastApp:
    """Build the worker: topics, the ledger service, the orders agent and its table, the
    publisher and its feed, the HTTP service.
    Without ``metrics``, the worker's own registry also carries the process, platform
    and garbage-collector metrics."""
    metrics = metrics or Metrics.create(process=True)
    topics = names.TopicNames.for_prefix(settings.kafka.topic_prefix)
    app = DeliveringApp(settings.worker.app_id, **faust_settings(settings))

    def declared_topic(name: str) -> Any:
        # Created before start by ``ensure_topics``; declared here with the same
        # partitions so faust co-partitions the table changelogs with the input.
        return app.topic(
            name, key_type=bytes, value_type=bytes, partitions=settings.kafka.partitions
        )

    sku_events = declared_topic(topics.sku_events)
    cancellations = declared_topic(topics.cancellation_requests)
    order_decisions = declared_topic(topics.order_decisions)
    dead_letters = declared_topic(topics.dead_letters)

    async def dead_letter(letter: DeadLetter) -> Awaitable[Any]:
        """Sends the letter; returns its delivery, for who must wait for it."""
        metrics.dead_letters.labels(letter.reason).inc()
        key = None if letter.key is None else letter.key.encode()
        delivery: Awaitable[Any] = await dead_letters.send(key=key, value=codecs.encode(letter))
        return delivery

    side = SideProducer(kafka_client_options(settings.kafka))
    sessions = SessionStore(
        topic=topics.sessions,
        sku_events=topics.sku_events,
        client_options=kafka_client_options(settings.kafka),
    )
    listed = {channel.name: tuple(channel.listings) for channel in settings.channels}
    stores = PartitionStores(settings.worker.data_dir / "ledger")

    def position_of(sku: str) -> SkuPosition | None:
        stored = stores.get(state.position_key(sku))
        return state.decode_position(stored) if stored else None

    live = LiveHub(seed=lambda channel: live_seed(channel, listed.get(channel, ()), position_of))
    pace = SessionPace(sessions.all, position_of, live, metrics)
    decoder = codecs.SkuEventDecoder()
    policies = decision_policies(settings)
    configured = frozenset(channel.name for channel in settings.channels)
    stock_gauges = StockGauges(metrics, [c.name for c in settings.channels], settings.metrics)

    async def ledger_assigned(partitions: Sequence[int]) -> None:
        # After each rebalance's rebuild, before the ledger reads on: the gauges count
        # the partitions owned now, and the publisher pushes the same SKUs' quotas.
        try:
            stock_gauges.reload(state.positions_in(stores.items()))
        except Exception:  # stale gauges are better than a worker that stops here
            log.exception("could not rebuild the stock gauges")
        await feed.follow((topics.sku_events, partition) for partition in partitions)

    async def ledger_revoked(partitions: Sequence[int]) -> None:
        await feed.let_go()

    async def ledger_step(
        table: WriteThrough, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        # One partition's fetch: every SKU's position is written once; the outputs go
        # to the ledger's outbox, and they and the dead letters returned here are
        # acknowledged before the batch counts as applied.
        deliveries: list[Awaitable[Any]] = []
        decoded: list[tuple[int, SkuEvent]] = []
        for record in records:
            try:
                sku_event = decoder.decode(record.key, record.value)
            except codecs.InvalidEvent as invalid:
                letter = DeadLetter.of_record(record, invalid.reason, invalid.detail)
                deliveries.append(await dead_letter(letter))
                continue
            counts.inc(metrics.sku_events, sku_event.type)
            if isinstance(sku_event, OrderLinePlaced):
                channel = channel_label(sku_event.channel, configured)
                counts.inc(metrics.order_lines_received, channel)
            decoded.append((record.offset, sku_event))
        batch = decide_batch(table, decoded, policies)
        for stepped in batch:
            sku_event, decided = stepped.event, stepped.decided
            outputs.emit(sku_event.sku.encode(), decided)
            pace.observe(sku_event, stepped.before, decided)
            stock_gauges.observe(sku_event, stepped.before, decided.step.position)
            for alert in decided.alerts:
                metrics.alerts_fired.labels(alert.level.value).inc()
                await side.send_and_wait(topics.alerts, alert.sku.encode(), codecs.encode(alert))
        outputs.levels(newest_levels(batch))
        counts.apply()
        return deliveries

    ledger_service = LedgerService(
        topic=topics.sku_events,
        changelog=topics.ledger_state,
        group_id=f"{settings.worker.app_id}-{names.LEDGER_GROUP}",
        client_options=kafka_client_options(settings.kafka),
        stores=stores,
        step=ledger_step,
        batch_max=settings.worker.batch_max,
        batch_wait_ms=settings.worker.batch_wait_ms,
        session_timeout_s=settings.worker.session_timeout_s,
        on_assigned=ledger_assigned,
        on_revoked=ledger_revoked,
        faust_changelog=f"{settings.worker.app_id}-{names.FAUST_LEDGER_CHANGELOG}",
    )
    counts = BatchCounts()
    outputs = _Outputs(topics, ledger_service.send, metrics, counts)

    tallies = app.Table(names.ORDERS_TABLE, key_type=bytes, value_type=bytes)
    order_policy = orders.OrderPolicy(frozenset(settings.ledger.partial_fulfilment_channels))

    async def orders_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            stored = tallies.get(event.key)
            settled = orders.on_decision(
                event.message.offset,
                state.decode_tally(stored) if stored else None,
                codecs.decode_decision(event.value),
                order_policy,
            )
            if settled.tally is not None:
                tallies[event.key] = state.encode(settled.tally)
            elif stored:
                del tallies[event.key]
            for release in settled.releases:
                await sku_events.send(key=release.sku.encode(), value=codecs.encode(release))
            for request in settled.requests:
                await cancellations.send(key=request.sku.encode(), value=codecs.encode(request))

    app.agent(order_decisions, name=names.ORDERS_AGENT)(orders_agent)

    async def to_sku_stream(report: ReclaimSettled | ChannelObserved) -> None:
        # Back into the SKU's own stream, where the allocator accounts for it.
        await sku_events.send(key=report.sku.encode(), value=codecs.encode(report))

    async def push_given_up(update: StockUpdate, error: str) -> None:
        await dead_letter(
            DeadLetter.of(
                topic=topics.stock_levels,
                partition=-1,
                offset=-1,
                key=update.sku.encode(),
                value=orjson.dumps(dataclasses.asdict(update)),
                reason="push_failed",
                detail=f"{update.channel}: {error}",
            )
        )

    connectors = channels if channels is not None else build_connectors(settings)
    publisher = Publisher(
        connectors,
        metrics,
        to_sku_stream,
        on_dead_letter=push_given_up,
        on_observed=to_sku_stream,
        writes_per_s={c.name: c.writes_per_s for c in settings.channels if c.writes_per_s},
        writes_in_flight={c.name: c.writes_in_flight for c in settings.channels},
    )

    def take_quota_change(value: bytes, timestamp_ms: int | None) -> None:
        change = codecs.decode_quota(value)
        if change is not None:
            live.update(
                change.channel, change.sku, change.quota, change.version, change.event_time_ms
            )
            # The record's timestamp is when the ledger produced the change: push
            # latency counts from the decision, not from the cause's event time.
            publisher.offer(change, decided=timestamp_ms / 1000 if timestamp_ms else None)

    feed = PublisherFeed(
        topic=topics.stock_levels,
        follows=topics.sku_events,
        group_id=f"{settings.worker.app_id}-{names.PUBLISHER_GROUP}",
        consumer_options=kafka_client_options(settings.kafka),
        take=take_quota_change,
        seed_group=settings.worker.app_id,  # where the faust agent that read it committed
    )

    receivers = inbound_by_platform(connectors)
    metrics.prime_worker(configured, inbound_platforms=receivers)
    receiver_of: Mapping[str, InboundConnector] = {
        name: connector for pairs in receivers.values() for name, connector in pairs
    }

    def recovered() -> bool:
        return cast(TableManager, app.tables).recovery.completed.is_set()

    def rebalancing() -> bool:
        return bool(app.rebalancing) or ledger_service.rebalancing

    def ready() -> bool:
        # Partitions assigned and every table recovered from its changelog.
        return (
            bool(app.started)
            and not app.should_stop
            and not rebalancing()
            and recovered()
            and ledger_service.ready
        )

    # Read at scrape time: the gauge must not wait for someone to poll /healthz.
    metrics.worker_up.set_function(lambda: 1.0 if ready() else 0.0)

    def status() -> dict[str, object]:
        return {
            "ok": ready(),
            "app_id": app.conf.id,
            "rebalancing": rebalancing(),
            "recovered": recovered(),
        }

    routes = [
        *stock_routes(position_of),
        *checklist_routes(position_of, sessions.get),
        *session_routes(
            sessions,
            pace.session_board,
            lambda: int(time.time() * 1000),
            channels=[name for name, _ in connectors],
        ),
        *live_routes(live, metrics, channels=[name for name, _ in connectors]),
    ]
    inbound_services: tuple[mode.Service, ...] = ()
    if receiver_of:
        # Notifications are written and read outside faust: a topic declared to faust but
        # consumed by no agent made the SIGKILL test lose committed ledger state
        # (CRASH_SEED=2395085906, see the issue 5 note).
        inbound_service = _inbound_service(settings, topics, receiver_of, sku_events, dead_letter)
        routes += webhook_routes(
            receivers,
            accept_into(inbound_service),
            metrics,
            max_body_bytes=settings.worker.webhook_max_body_bytes,
            accept_timeout_s=settings.worker.webhook_ack_timeout_s,
        )
        inbound_services = (inbound_service,)
    http = _HttpService(
        create_health_app(metrics.registry, status, routes),
        settings.worker.web_host,
        settings.worker.web_port,
        before_stop=live.close,
    )
    services = (
        side,
        feed,  # before the ledger, which tells it what to follow
        ledger_service,
        sessions,
        pace,
        stock_gauges,
        PartitionGauges(
            app, (topics.order_decisions,), metrics, rebalancing, feeds=(ledger_service, feed)
        ),
        http,
        _PublisherService(publisher),
        *inbound_services,
        *_payment_services(settings, topics, sku_events, dead_letter, metrics),
        *_alert_services(settings, topics, dead_letter, metrics),
    )
    return StockcastApp(app, topics, services)
