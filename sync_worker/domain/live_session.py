"""A live session as the live team plans and runs it: schedule, rooms, lineup, moves.

Each command is pure: ``(session, command, at_ms, actor) -> Outcome``, the session's
next state plus the events it means for each SKU. The session service stores the
state on a compacted Kafka topic and sends the events to each SKU's own stream, where
the rules are enforced inside the SKU's decision. Event ids are derived from the
session, the command's place in its log and the SKU, so a command sent again after a
crash repeats the very same events, which the ledger answers as duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from sync_worker.domain import events, tiers
from sync_worker.domain.events import Tier

DEFAULT_PIN_MS = 10 * 60_000
DEFAULT_PIN_UNITS_PER_S = 50


class SessionState(StrEnum):
    PLANNED = "planned"
    LIVE = "live"
    ENDED = "ended"


class SessionError(ValueError):
    """A command that does not fit the session (unknown SKU, ended already...)."""


class SessionConflict(SessionError):
    """Another command changed the session first; nothing of this one was applied."""


class StoreUnavailable(RuntimeError):
    """The sessions' log cannot be reached; nothing of the command was applied."""


@dataclass(frozen=True, slots=True)
class LineupItem:
    """One product of the lineup. ``None`` settings take the tier's default."""

    sku: str
    tier: Tier = Tier.BEST_SELLER
    name: str = ""
    spec: str = ""
    cap: int | None = None
    """Units this session may sell, all rooms together (a traffic item's exact count)."""
    buyer_limit: int | None = None
    isolate: bool | None = None
    regions_allow: tuple[str, ...] = ()
    regions_deny: tuple[str, ...] = ()
    warn_percent: int | None = None
    critical_percent: int | None = None
    rearm_points: int = 5
    margin_percent: float | None = None
    replenish_quantity: int | None = None
    """Expected replenishment: how many units and when (pre-live checklist)."""
    replenish_eta_ms: int | None = None

    def policy(self) -> tiers.TierPolicy:
        return tiers.POLICIES[self.tier]


@dataclass(frozen=True, slots=True)
class Move:
    """One line of the session's audit log: who did what, when, to which SKU."""

    at_ms: int
    actor: str
    action: str
    sku: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: str
    title: str
    channels: tuple[str, ...]
    lineup: tuple[LineupItem, ...]
    starts_at_ms: int
    ends_at_ms: int
    state: SessionState = SessionState.PLANNED
    pinned: str | None = None
    skipped: tuple[str, ...] = ()
    moves: tuple[Move, ...] = ()
    version: int = 0
    """Grows by one with every command; the store keeps only the next version."""

    def item(self, sku: str) -> LineupItem:
        for item in self.lineup:
            if item.sku == sku:
                return item
        raise SessionError(f"SKU {sku!r} is not in the lineup of session {self.session_id!r}")

    def selling(self) -> tuple[LineupItem, ...]:
        """The lineup without the SKUs the host skipped."""
        return tuple(item for item in self.lineup if item.sku not in self.skipped)


@dataclass(frozen=True, slots=True)
class Outcome:
    session: LiveSession
    events: tuple[events.SkuEvent, ...] = ()


# --- commands ---------------------------------------------------------------------------


def plan_problems(session: LiveSession) -> list[str]:
    """Every reason the plan cannot be a session (empty when it can): rooms, lineup,
    schedule, and each item's settings after its tier's defaults."""
    problems = []
    if not session.channels:
        problems.append("a session needs at least one room (channel)")
    rooms = list(session.channels)
    twice = sorted({room for room in rooms if rooms.count(room) > 1})
    if twice:
        problems.append(f"rooms listed twice: {', '.join(twice)}")
    if not session.lineup:
        problems.append("a session needs a lineup of at least one SKU")
    skus = [item.sku for item in session.lineup]
    duplicated = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicated:
        problems.append(f"SKUs listed twice in the lineup: {', '.join(duplicated)}")
    if session.ends_at_ms <= session.starts_at_ms:
        problems.append("the session must end after it starts")
    for item in session.lineup:
        policy = item.policy()
        if item.isolate and item.cap is None:
            problems.append(f"{item.sku}: an isolated (flash-sale) item needs a cap")
        if item.tier is Tier.TRAFFIC and item.cap is None:
            problems.append(f"{item.sku}: a traffic item needs its exact count as cap")
        warn = policy.warn_percent if item.warn_percent is None else item.warn_percent
        critical = (
            policy.critical_percent if item.critical_percent is None else item.critical_percent
        )
        if critical >= warn:  # the low alert must come before the critical one
            problems.append(
                f"{item.sku}: critical_percent ({critical}) must be below warn_percent ({warn})"
            )
    return problems


def create(session: LiveSession, at_ms: int, actor: str) -> Outcome:
    """A new session, planned, at version 1; its plan is checked now, not at start
    (``SessionError`` naming every problem of ``plan_problems``)."""
    problems = plan_problems(session)
    if problems:
        raise SessionError("; ".join(problems))
    created = replace(
        session, state=SessionState.PLANNED, pinned=None, skipped=(), moves=(), version=0
    )
    return Outcome(_logged(created, Move(at_ms, actor, "create")))


def start(session: LiveSession, at_ms: int, actor: str) -> Outcome:
    """Open every SKU of the lineup in the session's rooms, with its rules. Starting a
    live session again re-sends the same events (a start cut short by a crash)."""
    if session.state is SessionState.ENDED:
        raise SessionError(f"session {session.session_id!r} has ended")
    live = session
    if session.state is SessionState.PLANNED:
        live = _logged(replace(session, state=SessionState.LIVE), Move(at_ms, actor, "start"))
    opened = tuple(
        _sku_opened(live, item, _id(live, "start", item.sku, once=True), at_ms, actor)
        for item in live.selling()
    )
    return Outcome(live, opened)


def end(session: LiveSession, at_ms: int, actor: str) -> Outcome:
    """Close every SKU still selling: rules lapse, isolated units return to the pool."""
    if session.state is SessionState.PLANNED:
        raise SessionError(f"session {session.session_id!r} has not started")
    ended = session
    if session.state is SessionState.LIVE:
        move = Move(at_ms, actor, "end")
        ended = _logged(replace(session, state=SessionState.ENDED, pinned=None), move)
    closing: list[events.SkuEvent] = [
        _closed(ended, item.sku, _id(ended, "end", item.sku, once=True), at_ms, actor, "ended")
        for item in ended.selling()
    ]
    if session.pinned is not None:
        closing += _unpins(ended, session.pinned, at_ms, actor)
    return Outcome(ended, tuple(closing))


def pin(
    session: LiveSession,
    sku: str,
    at_ms: int,
    actor: str,
    *,
    duration_ms: int = DEFAULT_PIN_MS,
    units_per_s: int = DEFAULT_PIN_UNITS_PER_S,
) -> Outcome:
    """The host pins the product ("上链接"): every room sizes its quota for the burst,
    and the product pinned before is unpinned."""
    _require_live(session)
    _require_selling(session, sku)
    move = Move(at_ms, actor, "pin", sku, f"{duration_ms} ms at {units_per_s}/s expected")
    pinned = _logged(replace(session, pinned=sku), move)
    unpins = _unpins(pinned, session.pinned, at_ms, actor) if session.pinned != sku else []
    pins = [
        events.ChannelPinned(
            event_id=_id(pinned, "pin", sku, channel),
            sku=sku,
            event_time_ms=at_ms,
            actor=actor,
            channel=channel,
            duration_ms=duration_ms,
            expected_units_per_s=units_per_s,
        )
        for channel in pinned.channels
    ]
    return Outcome(pinned, (*unpins, *pins))


def unpin(session: LiveSession, at_ms: int, actor: str) -> Outcome:
    _require_live(session)
    if session.pinned is None:
        raise SessionError("no product is pinned")
    unpinned = _logged(replace(session, pinned=None), Move(at_ms, actor, "unpin", session.pinned))
    return Outcome(unpinned, tuple(_unpins(unpinned, session.pinned, at_ms, actor)))


def restock(
    session: LiveSession,
    sku: str,
    quantity: int,
    at_ms: int,
    actor: str,
    *,
    warehouse: str = "main",
    eta_ms: int | None = None,
    batch_id: str | None = None,
) -> Outcome:
    """Units arrive now (closing ``batch_id`` when it was announced), or are announced
    in transit with ``eta_ms`` for the host to tell the room."""
    _require_open(session)
    session.item(sku)
    detail = f"{quantity} to {warehouse}" + (f", due {eta_ms}" if eta_ms is not None else "")
    moved = _logged(session, Move(at_ms, actor, "restock", sku, detail))
    event_id = _id(moved, "restock", sku)
    event: events.SkuEvent
    if eta_ms is None:
        event = events.StockReceived(
            event_id=event_id,
            sku=sku,
            event_time_ms=at_ms,
            actor=actor,
            warehouse=warehouse,
            quantity=quantity,
            batch_id=batch_id,
        )
    else:
        event = events.StockIncomingAnnounced(
            event_id=event_id,
            sku=sku,
            event_time_ms=at_ms,
            actor=actor,
            warehouse=warehouse,
            batch_id=batch_id or event_id,
            quantity=quantity,
            eta_ms=eta_ms,
        )
    return Outcome(moved, (event,))


def transfer_from_warehouse(
    session: LiveSession,
    sku: str,
    quantity: int,
    source: str,
    at_ms: int,
    actor: str,
    *,
    eta_ms: int,
    warehouse: str = "main",
) -> Outcome:
    """Units leave ``source`` now and are in transit to ``warehouse`` until ``eta_ms``;
    a restock naming the returned batch id closes the transfer when they arrive."""
    _require_open(session)
    session.item(sku)
    if source == warehouse:
        raise SessionError("a transfer needs two different warehouses")
    detail = f"{quantity} from {source} to {warehouse}, due {eta_ms}"
    moved = _logged(session, Move(at_ms, actor, "transfer", sku, detail))
    transfer_id = _id(moved, "transfer", sku)
    out = events.StockTransferredOut(
        sku=sku,
        event_time_ms=at_ms,
        actor=actor,
        event_id=f"{transfer_id}:out",
        warehouse=source,
        quantity=quantity,
        transfer_id=transfer_id,
        destination=warehouse,
    )
    announced = events.StockIncomingAnnounced(
        sku=sku,
        event_time_ms=at_ms,
        actor=actor,
        event_id=f"{transfer_id}:in",
        warehouse=warehouse,
        batch_id=transfer_id,
        quantity=quantity,
        eta_ms=eta_ms,
    )
    return Outcome(moved, (out, announced))


def transfer_between_rooms(
    session: LiveSession, sku: str, units: int, source: str, target: str, at_ms: int, actor: str
) -> Outcome:
    """Quota moves from one room to another: the source's platform takes the units off
    display first, then the target gets them."""
    _require_live(session)
    _require_selling(session, sku)
    if source == target:
        raise SessionError("a transfer needs two different rooms")
    unknown = sorted({source, target} - set(session.channels))
    if unknown:
        raise SessionError(f"not rooms of this session: {', '.join(unknown)}")
    moved = _logged(
        session, Move(at_ms, actor, "transfer", sku, f"{units} from {source} to {target}")
    )
    event = events.QuotaMoved(
        event_id=_id(moved, "transfer", sku),
        sku=sku,
        event_time_ms=at_ms,
        actor=actor,
        from_channel=source,
        to_channel=target,
        units=units,
    )
    return Outcome(moved, (event,))


def set_listing(
    session: LiveSession,
    sku: str,
    listed: bool,
    at_ms: int,
    actor: str,
    *,
    channels: Sequence[str] = (),
    reason: str = "operator",
) -> Outcome:
    """Delist (quota to 0, no grants) or relist a SKU in some or all of the rooms."""
    _require_live(session)
    session.item(sku)
    rooms = tuple(dict.fromkeys(channels)) or session.channels  # each room once
    unknown = sorted(set(rooms) - set(session.channels))
    if unknown:
        raise SessionError(f"not rooms of this session: {', '.join(unknown)}")
    action = "relist" if listed else "delist"
    moved = _logged(session, Move(at_ms, actor, action, sku, f"{', '.join(rooms)}: {reason}"))
    changes = tuple(
        events.ListingChanged(
            event_id=_id(moved, action, sku, channel),
            sku=sku,
            event_time_ms=at_ms,
            actor=actor,
            channel=channel,
            listed=listed,
            reason=reason,
        )
        for channel in rooms
    )
    return Outcome(moved, changes)


def skip(session: LiveSession, sku: str, at_ms: int, actor: str) -> Outcome:
    """The host moves on without (finishing) the product: its rules lapse now and an
    isolated count returns to the pool."""
    _require_live(session)
    _require_selling(session, sku)
    pinned = None if session.pinned == sku else session.pinned
    move = Move(at_ms, actor, "skip", sku)
    skipped = _logged(replace(session, skipped=(*session.skipped, sku), pinned=pinned), move)
    closing: list[events.SkuEvent] = [
        _closed(skipped, sku, _id(skipped, "skip", sku), at_ms, actor, "skipped")
    ]
    if session.pinned == sku:
        closing += _unpins(skipped, sku, at_ms, actor)
    return Outcome(skipped, tuple(closing))


# --- helpers ----------------------------------------------------------------------------


def _sku_opened(
    session: LiveSession, item: LineupItem, event_id: str, at_ms: int, actor: str
) -> events.SessionSkuOpened:
    """The SKU's rules for this session, tier defaults applied."""
    policy = item.policy()
    isolate = policy.isolate if item.isolate is None else item.isolate
    return events.SessionSkuOpened(
        event_id=event_id,
        sku=item.sku,
        event_time_ms=at_ms,
        actor=actor,
        session_id=session.session_id,
        channels=session.channels,
        tier=item.tier,
        cap=item.cap,
        buyer_limit=policy.buyer_limit if item.buyer_limit is None else item.buyer_limit,
        regions_allow=item.regions_allow,
        regions_deny=item.regions_deny,
        isolate=isolate and item.cap is not None,
        warn_percent=policy.warn_percent if item.warn_percent is None else item.warn_percent,
        critical_percent=(
            policy.critical_percent if item.critical_percent is None else item.critical_percent
        ),
        rearm_points=item.rearm_points,
    )


def _closed(
    session: LiveSession, sku: str, event_id: str, at_ms: int, actor: str, reason: str
) -> events.SessionSkuClosed:
    return events.SessionSkuClosed(
        event_id=event_id,
        sku=sku,
        event_time_ms=at_ms,
        actor=actor,
        session_id=session.session_id,
        reason=reason,
    )


def _unpins(session: LiveSession, sku: str | None, at_ms: int, actor: str) -> list[events.SkuEvent]:
    if sku is None:
        return []
    return [
        events.ChannelUnpinned(
            event_id=_id(session, "unpin", sku, channel),
            sku=sku,
            event_time_ms=at_ms,
            actor=actor,
            channel=channel,
        )
        for channel in session.channels
    ]


def _logged(session: LiveSession, move: Move) -> LiveSession:
    return replace(session, moves=(*session.moves, move), version=session.version + 1)


def _id(
    session: LiveSession, action: str, sku: str, channel: str = "", *, once: bool = False
) -> str:
    """Deterministic per (session, version, action, SKU, room), at most 200 characters.
    A ``once`` action (start, end) happens once per session: its ids leave the version
    out, so sending it again repeats them exactly."""
    version = 0 if once else session.version
    identity = f"{session.session_id}\x00{version}\x00{action}\x00{sku}\x00{channel}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"session:{action}:{digest}"


def _require_live(session: LiveSession) -> None:
    if session.state is not SessionState.LIVE:
        raise SessionError(f"session {session.session_id!r} is {session.state.value}, not live")


def _require_open(session: LiveSession) -> None:
    if session.state is SessionState.ENDED:
        raise SessionError(f"session {session.session_id!r} has ended")


def _require_selling(session: LiveSession, sku: str) -> None:
    session.item(sku)
    if sku in session.skipped:
        raise SessionError(f"{sku!r} was skipped in this session")
