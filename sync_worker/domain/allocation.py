"""Global allocation: one SKU's sellable units split into per-channel quotas.

Every platform keeps its own counter and sells from it without asking us; we hear of
a sale only later. A quota we grant is therefore out of our hands until the channel
sells it or gives it back, and the allocator keeps, per channel, ``out``: the units
the channel may still sell or has sold unheard. Units nobody holds form the pool::

    free = sellable - sum(out)

Invariants (checked by the property tests):

- a grant never exceeds ``free``, so platforms can never together sell more than
  exists, whatever the delays;
- a reduction is a *reclaim*: the units stay counted in ``out`` until the publisher
  reports (``Settled``) how many the platform really took off display, so a unit the
  platform sold meanwhile is never granted to another channel;
- when the stock itself shrinks below ``sum(out)`` (a count, damage), quotas are
  reclaimed at once, from the slowest channels first.

Pure and deterministic: time is the event time, so replaying the log reproduces every
quota and every change exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple


class PolicyKind(StrEnum):
    STATIC = "static"
    """ERP-style: a fixed split of sellable, set again only every ``refresh_ms``."""
    FIXED_RATIO = "fixed_ratio"
    """Ratio of sellable per channel, plus / floor / ceiling, recomputed on every change;
    below its floor a channel is delisted (0), above it relisted."""
    SHARED_POOL = "shared_pool"
    """Small leases topped up from the pool to whichever channel sells; when the pool
    runs dry, channels a hungry one far outsells keep one unit of their lease."""
    ADAPTIVE = "adaptive"
    """Each channel's quota covers its measured sales rate times its round-trip latency;
    idle quota is clawed back from slow channels when the pool runs dry."""
    SESSION_AWARE = "session_aware"
    """Adaptive, and a pinned room ("上链接") is sized for its expected burst at once."""


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """One channel's allocation settings. ``ratio`` None means an equal share of what
    the explicit ratios leave; ``latency_ms`` is hearing of a sale plus a push landing."""

    channel: str
    ratio: float | None = None
    plus: int = 0
    floor: int = 0
    ceiling: int | None = None
    latency_ms: int = 100


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    kind: PolicyKind = PolicyKind.ADAPTIVE
    channels: tuple[ChannelRule, ...] = ()
    refresh_ms: int = 180_000
    """STATIC: how often the split is set again (ERPs refresh every few minutes)."""
    lease_units: int = 10
    """SHARED_POOL: units per top-up."""
    min_buffer: int = 2
    """ADAPTIVE: every listed channel shows at least this while the pool has units
    (one unit when it runs dry)."""
    cover: float = 5.0
    """ADAPTIVE: quota = rate x latency x cover; topped up when below two thirds of it."""
    rate_half_life_ms: int = 500
    """How fast the measured sales rate forgets the past."""
    dry_claw_ratio: float = 10.0
    """ADAPTIVE: when the pool is dry, a channel selling this many times slower than a
    hungry one gives its quota back."""
    drift_confirm_ms: int = 5_000
    """A read-back showing more than a channel holds is acted on only when another, at
    least this much later, shows it too."""

    def rule(self, channel: str) -> ChannelRule:
        for rule in self.channels:
            if rule.channel == channel:
                return rule
        return ChannelRule(channel)

    def ratios(self) -> dict[str, float]:
        """Each channel's share; unset ratios split what the set ones leave equally."""
        fixed = sum(rule.ratio for rule in self.channels if rule.ratio is not None)
        unset = [rule for rule in self.channels if rule.ratio is None]
        share = max(0.0, 1.0 - fixed) / len(unset) if unset else 0.0
        return {
            rule.channel: rule.ratio if rule.ratio is not None else share for rule in self.channels
        }


@dataclass(frozen=True, slots=True)
class ChannelQuota:
    """What one channel holds of the SKU. ``quota`` is what it should show once every
    write in flight has landed."""

    channel: str
    out: int = 0
    """Units the channel may sell or has sold unheard (reclaims in flight included)."""
    reclaiming: int = 0
    """Units asked back whose settlement has not arrived yet."""
    rate_per_s: float = 0.0
    """Exponentially decayed sales rate, as of ``rate_at_ms``."""
    rate_at_ms: int = 0
    drained_want: float = 0.0
    """ADAPTIVE: a quota the channel proved it needs by asking for a top-up again before
    the last one could have landed: its sales are capped by our grants, so its measured
    rate understates its demand. Doubles at each such moment (like TCP's slow start)
    and decays like the rate."""
    granted_ms: int = -1
    """When the last top-up was granted (event time)."""
    isolated: bool = False
    excess_seen: int = 0
    """Units a read-back showed beyond ``out``, waiting for a second read-back to confirm."""
    excess_seen_ms: int = -1
    pinned_until_ms: int = 0
    pinned_rate_per_s: float = 0.0
    delisted: bool = False
    """Delisted by an operator: holds nothing and gets no grants until relisted."""
    claim: int = 0
    carved: int = 0
    """Isolated: the units the flash sale still owes the room (its carve less what it
    sold). Topped up toward it whenever stock allows, so a sale opened short of stock
    fills up when a restock lands."""
    """Units moved here from another channel, granted first as soon as they are free."""

    @property
    def quota(self) -> int:
        return max(0, self.out - self.reclaiming)

    def rate(self, now_ms: int, half_life_ms: int) -> float:
        return self.rate_per_s * self._decay(now_ms, half_life_ms)

    def drained(self, now_ms: int, half_life_ms: int) -> float:
        return self.drained_want * self._decay(now_ms, half_life_ms)

    def _decay(self, now_ms: int, half_life_ms: int) -> float:
        return float(0.5 ** (max(0, now_ms - self.rate_at_ms) / half_life_ms))


@dataclass(frozen=True, slots=True)
class Allocation:
    """A SKU's quotas; ``version`` counts the changes ever emitted."""

    channels: tuple[ChannelQuota, ...] = ()
    version: int = 0
    refreshed_ms: int = -1
    """STATIC: when the split was last set (-1: never)."""

    def channel(self, name: str) -> ChannelQuota | None:
        for quota in self.channels:
            if quota.channel == name:
                return quota
        return None


@dataclass(frozen=True, slots=True)
class QuotaChange:
    """Apply ``delta`` to the channel's count; ``quota`` is the count once it lands."""

    channel: str
    quota: int
    delta: int
    version: int


# --- what happened ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sold:
    """The channel sold ``units`` (an accepted order line): its platform took them off."""

    channel: str
    units: int


@dataclass(frozen=True, slots=True)
class Released:
    """A cancelled line gave ``units`` back to the channel's display."""

    channel: str
    units: int


@dataclass(frozen=True, slots=True)
class Settled:
    """A reclaim of ``requested`` units landed; the platform removed ``applied`` of them."""

    channel: str
    requested: int
    applied: int


@dataclass(frozen=True, slots=True)
class Observed:
    """A read-back: the platform shows ``displayed`` units in the channel."""

    channel: str
    displayed: int


@dataclass(frozen=True, slots=True)
class Pinned:
    channel: str
    until_ms: int
    units_per_s: float


@dataclass(frozen=True, slots=True)
class Isolated:
    channel: str
    units: int


@dataclass(frozen=True, slots=True)
class IsolationEnded:
    channel: str


@dataclass(frozen=True, slots=True)
class Unpinned:
    channel: str


@dataclass(frozen=True, slots=True)
class Listing:
    channel: str
    listed: bool


@dataclass(frozen=True, slots=True)
class Moved:
    """An operator moves ``units`` of quota from one channel to another."""

    from_channel: str
    to_channel: str
    units: int


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """A flash-sale session isolates these units per room (nothing for other tiers)."""

    carve: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A session ended: its isolated rooms return their unsold units."""

    isolated: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StockMoved:
    """Sellable changed for a reason no channel caused (receipt, count, shipment...)."""


Cause = (
    Sold
    | Released
    | Settled
    | Observed
    | Pinned
    | Unpinned
    | Isolated
    | IsolationEnded
    | Listing
    | Moved
    | SessionOpened
    | SessionClosed
    | StockMoved
)


@dataclass(frozen=True, slots=True)
class CapGroup:
    """Rooms that may together show at most ``remaining`` units (a session's cap left)."""

    channels: frozenset[str]
    remaining: int


def reallocate(
    allocation: Allocation,
    sellable: int,
    cause: Cause,
    policy: AllocationPolicy,
    now_ms: int,
    caps: tuple[CapGroup, ...] = (),
) -> tuple[Allocation, tuple[QuotaChange, ...]]:
    """Account for ``cause``, then move quota where the policy wants it, never letting a
    cap group show more than it has left.

    ``sellable`` is the ledger's, after the event. Returns the new allocation and the
    changes to push, in version order.
    """
    if not allocation.channels and not policy.channels and policy.kind is not PolicyKind.STATIC:
        # No channel holds or wants quota (a SKU sold outside any configured channel): the
        # plan would change nothing. STATIC is planned regardless: it stamps its refresh.
        return allocation, ()
    plan = _Plan(allocation, policy, now_ms, caps)
    plan.account(cause)
    # Events naming a channel nobody configured move nothing (the pool covers its sales).
    carve: tuple[tuple[str, int], ...] = ()
    if isinstance(cause, Isolated):
        carve = ((cause.channel, cause.units),)
    if isinstance(cause, SessionOpened):
        carve = cause.carve
    for channel, units in carve:
        if channel in plan.quotas:
            plan.carve(channel, units, sellable)
    plan.rebalance(sellable)
    return plan.result()


# --- the working state of one reallocation ----------------------------------------------


class _Target(NamedTuple):  # a tuple: several are built per reallocation
    want: int
    refill_below: int
    """Top up only when the quota is below this: fewer, larger pushes."""


class _Plan:
    def __init__(
        self,
        allocation: Allocation,
        policy: AllocationPolicy,
        now_ms: int,
        caps: tuple[CapGroup, ...],
    ) -> None:
        self.caps = caps
        self.quotas = {quota.channel: quota for quota in allocation.channels}
        for rule in policy.channels:
            if rule.channel not in self.quotas:  # a first quota only where none is held
                self.quotas[rule.channel] = ChannelQuota(rule.channel, rate_at_ms=now_ms)
        self.names = sorted(self.quotas)
        """The channels in name order (the plan adds and drops none)."""
        self.policy = policy
        self.now_ms = now_ms
        self.version = allocation.version
        self.refreshed_ms = allocation.refreshed_ms
        self.changes: list[QuotaChange] = []
        self.sold: str | None = None
        """The channel whose sale this reallocation answers."""
        self.ended: set[str] = set()
        """Channels whose isolation just ended (all the rooms of a closed session): their
        unsold units beyond the policy's want return to the pool."""

    def result(self) -> tuple[Allocation, tuple[QuotaChange, ...]]:
        channels = tuple(self.quotas[name] for name in self.names)
        return Allocation(channels, self.version, self.refreshed_ms), tuple(self.changes)

    # accounting

    def account(self, cause: Cause) -> None:
        match cause:
            case Sold(channel, units) if channel in self.quotas:
                self.sold = channel
                quota = self.quotas[channel]
                half_life = self.policy.rate_half_life_ms
                rate = quota.rate(self.now_ms, half_life)
                rate += units * math.log(2) * 1000 / half_life
                self.quotas[channel] = replace(
                    quota,
                    out=max(0, quota.out - units),
                    carved=max(0, quota.carved - units) if quota.isolated else 0,
                    rate_per_s=rate,
                    rate_at_ms=max(quota.rate_at_ms, self.now_ms),
                    drained_want=quota.drained(self.now_ms, half_life),
                )
            case Released(channel, units) if channel in self.quotas:
                quota = self.quotas[channel]
                carved = quota.carved + units if quota.isolated else 0
                self.quotas[channel] = replace(quota, out=quota.out + units, carved=carved)
            case Settled(channel, requested, applied) if channel in self.quotas:
                quota = self.quotas[channel]
                self.quotas[channel] = replace(
                    quota,
                    out=max(0, quota.out - applied),
                    reclaiming=max(0, quota.reclaiming - requested),
                )
            case Observed(channel, displayed) if channel in self.quotas:
                self.observe(channel, displayed)
            case Pinned(channel, until_ms, units_per_s) if channel in self.quotas:
                self.quotas[channel] = replace(
                    self.quotas[channel], pinned_until_ms=until_ms, pinned_rate_per_s=units_per_s
                )
            case Unpinned(channel) if channel in self.quotas:
                self.quotas[channel] = replace(self.quotas[channel], pinned_until_ms=0)
            case Isolated(channel) if channel in self.quotas:
                self.quotas[channel] = replace(self.quotas[channel], isolated=True)
            case SessionOpened(carve):
                for channel, _ in carve:
                    if channel in self.quotas:
                        self.quotas[channel] = replace(self.quotas[channel], isolated=True)
            case IsolationEnded(channel) if channel in self.quotas:
                self.end_isolation(channel)
            case SessionClosed(isolated):
                for channel in isolated:
                    if channel in self.quotas:
                        self.end_isolation(channel)
            case Listing(channel, listed) if channel in self.quotas:
                self.quotas[channel] = replace(self.quotas[channel], delisted=not listed)
            case Moved(source, target, units) if source in self.quotas and target in self.quotas:
                moving = min(units, self.quotas[source].quota)
                self.reclaim(source, moving)
                claimed = self.quotas[target]
                self.quotas[target] = replace(claimed, claim=claimed.claim + moving)

    def end_isolation(self, channel: str) -> None:
        self.ended.add(channel)
        # The flash sale's rate says nothing about the room's demand after it.
        self.quotas[channel] = replace(
            self.quotas[channel],
            isolated=False,
            carved=0,
            rate_per_s=0.0,
            drained_want=0.0,
            rate_at_ms=self.now_ms,
        )

    # moving quota

    def free(self, sellable: int) -> int:
        return sellable - sum(quota.out for quota in self.quotas.values())

    def room(self, channel: str, sellable: int) -> int:
        """Units the channel may still be granted: what is free, within its cap groups."""
        room = self.free(sellable)
        for group in self.caps:
            if channel in group.channels:
                shown = sum(self.quotas[c].quota for c in group.channels if c in self.quotas)
                room = min(room, group.remaining - shown)
        return room

    def grant(self, channel: str, units: int) -> None:
        quota = self.quotas[channel]
        self.quotas[channel] = replace(quota, out=quota.out + units, granted_ms=self.now_ms)
        self._emit(channel, units)

    def observe(self, channel: str, displayed: int) -> None:
        """A channel never shows more than ``out`` unless something went wrong; a cancel
        the platform restored before we heard of it is the one innocent cause, and it is
        heard within seconds. So an excess seen twice, ``drift_confirm_ms`` apart, is
        counted as the channel's (no other channel is granted those units) and reclaimed.
        """
        quota = self.quotas[channel]
        excess = displayed - quota.out
        if excess <= 0:
            self.quotas[channel] = replace(quota, excess_seen=0, excess_seen_ms=-1)
        elif quota.excess_seen_ms < 0:
            self.quotas[channel] = replace(quota, excess_seen=excess, excess_seen_ms=self.now_ms)
        elif self.now_ms - quota.excess_seen_ms >= self.policy.drift_confirm_ms:
            units = min(excess, quota.excess_seen)
            self.quotas[channel] = replace(
                quota, out=quota.out + units, excess_seen=0, excess_seen_ms=-1
            )
            self.reclaim(channel, units)

    def reclaim(self, channel: str, units: int) -> None:
        if units <= 0:
            return
        quota = self.quotas[channel]
        self.quotas[channel] = replace(quota, reclaiming=quota.reclaiming + units)
        self._emit(channel, -units)

    def _emit(self, channel: str, delta: int) -> None:
        self.version += 1
        quota = self.quotas[channel].quota
        self.changes.append(QuotaChange(channel, quota, delta, self.version))

    def rate(self, channel: str) -> float:
        """The rate to plan with: measured, or a pin's expectation if that is higher."""
        quota = self.quotas[channel]
        measured = quota.rate(self.now_ms, self.policy.rate_half_life_ms)
        pinned = (
            self.policy.kind is PolicyKind.SESSION_AWARE and quota.pinned_until_ms > self.now_ms
        )
        return max(measured, quota.pinned_rate_per_s) if pinned else measured

    def fit(self, sellable: int) -> None:
        """The stock shrank below what the channels hold: reclaim the excess at once,
        slowest channels first, isolated ones last. Measured on what the channels show:
        a reclaim in flight on a channel that has sold its units since (reclaiming > out)
        takes nothing more off display, so it must not count for the others."""
        excess = sum(quota.quota for quota in self.quotas.values()) - sellable
        if excess <= 0:  # the usual case: skip ordering the channels
            return
        order = sorted(self.quotas, key=lambda c: (self.quotas[c].isolated, self.rate(c), c))
        for channel in order:
            if excess <= 0:
                return
            units = min(excess, self.quotas[channel].quota)
            self.reclaim(channel, units)
            excess -= units

    def cap(self) -> None:
        """No cap group shows more than it has left: the excess is reclaimed at once,
        slowest rooms first. A session that sold its cap shows 0 everywhere."""
        for group in self.caps:
            members = [c for c in group.channels if c in self.quotas]
            excess = sum(self.quotas[c].quota for c in members) - max(0, group.remaining)
            if excess <= 0:  # the usual case: skip ordering the rooms
                continue
            members.sort(key=lambda c: (self.rate(c), c))
            for channel in members:
                if excess <= 0:
                    break
                units = min(excess, self.quotas[channel].quota)
                self.reclaim(channel, units)
                excess -= units

    def carve(self, channel: str, units: int, sellable: int) -> None:
        """Flash-sale isolation: the channel holds exactly ``units``, as far as the pool
        allows. A delisted room is granted nothing (``rebalance`` takes back what it holds)."""
        self.quotas[channel] = replace(self.quotas[channel], carved=units)
        held = self.quotas[channel].quota
        if self.quotas[channel].delisted:
            return
        if held > units:
            self.reclaim(channel, held - units)
        elif held < units:
            give = min(units - held, self.room(channel, sellable))
            if give > 0:
                self.grant(channel, give)

    def rebalance(self, sellable: int) -> None:
        """The policy's reclaims, then whatever the shrunken stock and the caps still
        demand, then moved units to their channels, then what flash sales are owed, then
        the grants from what is free."""
        targets = self._targets(sellable)
        hungry = [c for c, t in targets.items() if self.quotas[c].quota < t.refill_below]
        needed = sum(targets[c].want - self.quotas[c].quota for c in hungry)
        dry = self.free(sellable) < needed
        for channel, target in targets.items():
            keep = self._keep(channel, target, hungry, dry)
            self.reclaim(channel, self.quotas[channel].quota - keep)
        for channel, quota in self.quotas.items():
            if quota.delisted:
                self.reclaim(channel, quota.quota)
        self.fit(sellable)
        self.cap()
        for channel in self.names:
            quota = self.quotas[channel]
            if not quota.claim or quota.delisted:
                continue
            give = min(quota.claim, self.room(channel, sellable))
            if give > 0:
                self.grant(channel, give)
                self.quotas[channel] = replace(self.quotas[channel], claim=quota.claim - give)
        for channel in self.names:  # flash sales owed units, as stock allows
            quota = self.quotas[channel]
            if quota.isolated and not quota.delisted and quota.quota < quota.carved:
                give = min(quota.carved - quota.quota, self.room(channel, sellable))
                if give > 0:
                    self.grant(channel, give)
        for channel in sorted(hungry, key=lambda c: (-self.rate(c), c)):
            want = targets[channel].want - self.quotas[channel].quota
            give = min(want, self.room(channel, sellable))
            if give > 0:
                self.grant(channel, give)

    def _keep(self, channel: str, target: _Target, hungry: list[str], dry: bool) -> int:
        """How much of its quota a channel keeps (the rest is reclaimed)."""
        held = self.quotas[channel].quota
        kind = self.policy.kind
        if kind in (PolicyKind.STATIC, PolicyKind.FIXED_RATIO) or channel in self.ended:
            return min(held, target.want)
        if not dry:
            return held
        # Only a channel selling far faster takes units away: its need is real, and two
        # channels can never take the same units back and forth.
        fastest = max((self.rate(c) for c in hungry if c != channel), default=0.0)
        outpaced = self.rate(channel) * self.policy.dry_claw_ratio < fastest
        if kind is PolicyKind.SHARED_POOL:
            return min(held, 1) if outpaced and channel not in hungry else held
        # Adaptive: an outpaced channel gives everything back (hungry or not: its unit
        # would sell there much sooner); a quiet channel keeps one unit, not its usual
        # floor; others drop what a finished burst left behind.
        if outpaced:
            return 0
        if channel in hungry:
            return held
        quiet = target.want <= self.policy.min_buffer
        return min(held, 1 if quiet else target.want)

    def _targets(self, sellable: int) -> dict[str, _Target]:
        rules = [
            r
            for r in self.policy.channels
            if not self.quotas[r.channel].isolated and not self.quotas[r.channel].delisted
        ]
        kind = self.policy.kind
        if kind is PolicyKind.STATIC:
            due = self.refreshed_ms < 0 or self.now_ms - self.refreshed_ms >= self.policy.refresh_ms
            if not due:
                return {}
            self.refreshed_ms = self.now_ms
            return self._ratio_targets(rules, sellable, exact=True)
        if kind is PolicyKind.FIXED_RATIO:
            return self._ratio_targets(rules, sellable, exact=False)
        if kind is PolicyKind.SHARED_POOL:
            lease = self.policy.lease_units
            return {r.channel: _Target(lease, lease // 2 + 1) for r in rules}
        return {r.channel: self._adaptive_target(r) for r in rules}

    def _adaptive_target(self, rule: ChannelRule) -> _Target:
        target = self._sized(rule.channel)
        quota = self.quotas[rule.channel]
        # Its sales ate a top-up within two latencies of granting it: it is starving.
        starving = (
            rule.channel == self.sold
            and quota.granted_ms >= 0
            and self.now_ms - quota.granted_ms < 2 * rule.latency_ms
        )
        if quota.quota < target.refill_below and starving:
            half_life = self.policy.rate_half_life_ms
            self.quotas[rule.channel] = replace(
                quota,
                rate_per_s=quota.rate(self.now_ms, half_life),
                rate_at_ms=max(quota.rate_at_ms, self.now_ms),
                drained_want=2.0 * target.want,
            )
            target = self._sized(rule.channel)
        return target

    def _ratio_targets(
        self, rules: list[ChannelRule], sellable: int, *, exact: bool
    ) -> dict[str, _Target]:
        ratios = self.policy.ratios()
        targets = {}
        for rule in rules:
            want = max(0, math.floor(ratios[rule.channel] * sellable) + rule.plus)
            if rule.ceiling is not None:
                want = min(want, rule.ceiling)
            if not exact and want < rule.floor:
                want = 0  # delisted below the floor, relisted above it
            targets[rule.channel] = _Target(want, want if not exact else want + 1)
        return targets

    def _sized(self, channel: str) -> _Target:
        quota, policy = self.quotas[channel], self.policy
        cover = self.rate(channel) * policy.rule(channel).latency_ms / 1000 * policy.cover
        drained = quota.drained(self.now_ms, policy.rate_half_life_ms)
        want = max(policy.min_buffer, math.ceil(cover), math.ceil(drained))
        return _Target(want, max(1, math.ceil(want * 2 / 3)))
