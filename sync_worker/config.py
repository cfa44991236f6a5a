"""Settings: a ``stockcast.toml`` file plus environment overrides, validated once at start.

Nothing here reads the environment: ``load_settings`` takes the file's text and an
environment mapping, so tests (and faust) never see settings nobody passed in.
Environment overrides use ``STOCKCAST_<SECTION>__<KEY>``, e.g.
``STOCKCAST_KAFKA__BOOTSTRAP_SERVERS=10.0.0.5:9092``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    WrapSerializer,
)

from sync_worker.domain.allocation import AllocationPolicy
from sync_worker.publishing import WRITES_IN_FLIGHT

ENV_PREFIX = "STOCKCAST_"
CONFIG_PATH_ENV = "STOCKCAST_CONFIG"
"""Names the settings file; read by the CLI, not a setting itself."""
_NESTING = "__"


_V = TypeVar("_V")
_ReadOnly = Annotated[
    Mapping[str, _V],
    AfterValidator(MappingProxyType),
    WrapSerializer(lambda mapping, nested: nested(dict(mapping))),
]
"""A mapping that stays read-only after validation, as the rest of the settings are."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "stockcast"
    partitions: Annotated[int, Field(ge=1, le=1024)] = 8
    replication_factor: Annotated[int, Field(ge=1, le=7)] = 1
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None


class WorkerSettings(_Frozen):
    app_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "stockcast"
    data_dir: Path = Path("var/worker")
    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=0, le=65535)] = 6066
    processing_guarantee: Literal["at_least_once"] = "at_least_once"
    """Crash exactness comes from the ledger's replay guard, not from Kafka transactions:
    faust-streaming 0.15's exactly_once lost orders in our SIGKILL test (see
    docs/ledger.md), so it is not offered."""
    session_timeout_s: Annotated[float, Field(ge=6, le=300)] = 10.0
    """How long a dead worker keeps its partitions before another takes them over."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    webhook_max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    """Webhook bodies above this are refused (413) before they are read."""
    webhook_ack_timeout_s: Annotated[float, Field(gt=0, le=30)] = 2.5
    """How long a webhook may wait for Kafka before it is refused (503, the platform
    redelivers); below every platform's own timeout (Kuaishou 3 s, Shopify 5 s)."""
    hydrate_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    """Notifications hydrated at once (each may call the platform's order API)."""
    batch_max: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """SKU events the ledger takes from a poll at most, decided as one batch (each SKU's
    position written once per batch): the fast path of docs/performance.md."""
    batch_wait_ms: Annotated[float, Field(gt=0, le=1000)] = 1.0
    """How long the ledger waits for a batch to fill before deciding what it has: the
    latency it may add to a lone order when the stream is quiet."""


class LedgerSettings(_Frozen):
    """Defaults for SKUs without their own safety reserve (product tiers refine them)."""

    default_reserve_percent: Annotated[int, Field(ge=0, le=100)] = 5
    default_reserve_units: Annotated[int, Field(ge=0)] = 0
    partial_fulfilment_channels: tuple[str, ...] = ()
    """Channels whose multi-line orders may be partly fulfilled; all others are
    all-or-nothing."""
    payment_timeout_s: _ReadOnly[Annotated[float, Field(gt=0, le=30 * 86_400)]] = Field(
        default_factory=dict
    )
    """Per platform (as order events name it, e.g. ``douyin``): how long an accepted but
    unpaid order line holds its units. When it lapses, they return to the pool at once.
    Platforms not listed keep unpaid units until the platform cancels the order."""


_ALLOCATION = AllocationPolicy()
"""The allocator's own defaults, so the settings cannot drift from them."""

AllocationPolicyName = Literal["static", "fixed_ratio", "shared_pool", "adaptive", "session_aware"]


class AllocationSettings(_Frozen):
    """How each SKU's sellable stock is split into channel quotas (docs/allocation.md)."""

    policy: AllocationPolicyName = "adaptive"
    sku_policies: _ReadOnly[AllocationPolicyName] = Field(default_factory=dict)
    """Per-SKU policy, e.g. ``{ "flash-lipstick" = "shared_pool" }``."""
    refresh_s: Annotated[float, Field(gt=0)] = _ALLOCATION.refresh_ms / 1000
    """static: how often the fixed split is set again."""
    lease_units: Annotated[int, Field(ge=1)] = _ALLOCATION.lease_units
    """shared_pool: units per top-up."""
    min_buffer: Annotated[int, Field(ge=0)] = _ALLOCATION.min_buffer
    """adaptive: units every listed channel shows while the pool has any."""
    cover: Annotated[float, Field(ge=1)] = _ALLOCATION.cover
    """adaptive: a channel's quota covers rate x latency x cover."""
    rate_half_life_ms: Annotated[int, Field(ge=10)] = _ALLOCATION.rate_half_life_ms
    """How fast measured sales rates forget the past."""
    dry_claw_ratio: Annotated[float, Field(gt=1)] = _ALLOCATION.dry_claw_ratio
    """When the pool is dry, a channel outsold this many times gives its units back."""


def looks_secret(option: str) -> bool:
    """A connector option that holds a credential by its name (app_secret, access_token…)."""
    return any(word in option.lower() for word in ("secret", "token", "password"))


def _no_secret_in_options(options: Mapping[str, str]) -> Mapping[str, str]:
    exposed = sorted(key for key in options if looks_secret(key))
    if exposed:
        raise ValueError(f"{', '.join(exposed)} must go in `secrets`, which is never shown")
    return options


class ChannelSettings(_Frozen):
    """A shop or live room that stock counts are pushed to, and its allocation rule."""

    name: Annotated[str, Field(min_length=1)]
    connector: Annotated[str, Field(min_length=1)]
    options: Annotated[_ReadOnly[str], AfterValidator(_no_secret_in_options)] = Field(
        default_factory=dict
    )
    secrets: _ReadOnly[SecretStr] = Field(default_factory=dict)
    listings: _ReadOnly[str] = Field(default_factory=dict)
    """stockcast SKU -> the platform's listing, in the connector's format (README)."""
    writes_per_s: Annotated[float, Field(gt=0)] | None = None
    """Cap on stock writes per second to this channel (the platform's published limit)."""
    writes_in_flight: Annotated[int, Field(ge=1, le=256)] = WRITES_IN_FLIGHT
    """Stock writes to this channel at once, each for another SKU."""
    ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    """static / fixed_ratio: share of sellable (default: an equal share of the rest)."""
    plus: int = 0
    floor: Annotated[int, Field(ge=0)] = 0
    ceiling: Annotated[int, Field(ge=0)] | None = None
    latency_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    """Hearing of a sale plus a push landing, for sizing adaptive quotas."""


AlertFormat = Literal["json", "wecom", "dingtalk", "slack"]
Audience = Literal["ops", "host"]


class AlertTargetSettings(_Frozen):
    """Where alert notifications go: an incoming-webhook URL in one of the formats."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")]
    format: AlertFormat = "json"
    """json (stockcast's own AlertRaised), or the incoming-webhook message formats of
    WeCom (企业微信), DingTalk (钉钉) or Slack."""
    url: SecretStr
    """The webhook URL; its query carries the robot's key, so it is masked like a secret."""
    secret: SecretStr | None = None
    """DingTalk only: the robot's signing secret (加签), when the robot requires it."""
    audience: tuple[Audience, ...] = ("ops", "host")
    """Alerts go here when one of their audience is listed: 20% alerts are for ops,
    10% and sold out for host and ops."""


class AlertSettings(_Frozen):
    targets: tuple[AlertTargetSettings, ...] = ()
    attempts: Annotated[int, Field(ge=1, le=50)] = 8
    """Tries per notification and target (back-off with jitter) before it is
    dead-lettered."""
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Per HTTP request to a target."""


def _sku_list(value: Any) -> Any:
    """A list from the file, or comma-separated from the environment."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _distinct(skus: tuple[str, ...]) -> tuple[str, ...]:
    if repeated := sorted({sku for sku in skus if skus.count(sku) > 1}):
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return skus


MAX_WATCHED_SKUS = 1000
"""A bound on the SKU series one deployment may ask for (docs/metrics.md)."""


class MetricsSettings(_Frozen):
    """Which SKUs get their own series (``stockcast_sku_*``); everything else is summed."""

    sku_allowlist: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=200)], ...],
        BeforeValidator(_sku_list),
        AfterValidator(_distinct),
        Field(max_length=MAX_WATCHED_SKUS),
    ] = ()
    """SKUs always watched, e.g. a launch's hero products. From the environment:
    ``STOCKCAST_METRICS__SKU_ALLOWLIST=sku-a,sku-b``."""
    top_skus: Annotated[int, Field(ge=0, le=100)] = 10
    """Also watch this many of the hottest SKUs (most order lines recently); 0: none."""


class Settings(_Frozen):
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    allocation: AllocationSettings = Field(default_factory=AllocationSettings)
    channels: tuple[ChannelSettings, ...] = ()
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def masked(self) -> dict[str, Any]:
        """The settings as shown to people: every secret replaced by asterisks."""
        return self.model_dump(mode="json")


class SettingsError(ValueError):
    """Every problem with the settings at once, so one restart fixes them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid settings ({len(problems)} problem(s)):\n{listing}")


def load_settings(toml_text: str = "", env: Mapping[str, str] | None = None) -> Settings:
    """Parse ``toml_text``, apply ``STOCKCAST_*`` overrides from ``env``, and validate."""
    try:
        raw: dict[str, Any] = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError([f"stockcast.toml: {error}"]) from None
    problems = _apply_env_overrides(raw, env or {})
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        problems += [_describe(detail) for detail in error.errors()]
        raise SettingsError(problems) from None
    if problems:
        raise SettingsError(problems)
    return settings


DEFAULT_CONFIG_FILE = Path("stockcast.toml")


def load_settings_file(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Load from ``path``; without one, from ./stockcast.toml if there, else defaults.
    The environment overrides either."""
    if path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    if path is None:
        return load_settings("", env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError([f"{path}: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        raise SettingsError(
            [f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]
        ) from None
    return load_settings(text, env)


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition(_NESTING)
        if not key or section not in Settings.model_fields or section == "channels":
            problems.append(f"{name}: not a setting (use {ENV_PREFIX}<SECTION>__<KEY>)")
            continue
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            problems.append(f"{name}: [{section}] in stockcast.toml is not a table")
            continue
        table[key] = value
    return problems


def _describe(detail: Any) -> str:
    where = ".".join(str(part) for part in detail["loc"]) or "settings"
    return f"{where}: {detail['msg']}"
