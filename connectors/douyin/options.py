"""The Douyin connector's settings, read from a channel's option strings once, at build time.

Every option is a string from ``stockcast.toml``; a missing required one or an unreadable
value is a ``ValueError`` naming it, so a bad configuration fails at startup rather than on
the first write. Secrets are kept out of the repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Self

from connectors.base import WriteMode
from connectors.douyin.api import SIGN_METHOD_HMAC_SHA256, SIGN_METHODS, WEBHOOK_WINDOW_S
from connectors.http_support import seconds_option

REQUIRED: Final = ("base_url", "app_key", "app_secret", "access_token", "shop_id")
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_THROTTLE_WAIT_S: Final = 1.0
"""In-band throttling carries no wait hint; one second is a polite first back-off."""
DEFAULT_WEBHOOK_WINDOW_S: Final = float(WEBHOOK_WINDOW_S)
"""A push's redelivery horizon is not published; see ``api.WEBHOOK_WINDOW_S``."""
DEFAULT_WRITE_MODES: Final = frozenset({WriteMode.DELTA})
SUPPORTED_WRITE_MODES: Final = frozenset({WriteMode.DELTA, WriteMode.ABSOLUTE})


@dataclass(frozen=True, slots=True, kw_only=True)
class DouyinOptions:
    base_url: str
    app_key: str
    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    shop_id: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    write_modes: frozenset[WriteMode] = DEFAULT_WRITE_MODES
    sign_method: str = SIGN_METHOD_HMAC_SHA256
    throttle_wait_s: float = DEFAULT_THROTTLE_WAIT_S
    webhook_window_s: float = DEFAULT_WEBHOOK_WINDOW_S
    """How long after its newest message time a push is still taken."""

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> Self:
        for name in REQUIRED:
            if not options.get(name, "").strip():
                raise ValueError(f"the douyin connector needs the option {name!r}")
        shop_id = options["shop_id"].strip()
        if not shop_id.isdigit():
            raise ValueError(f"shop_id must be the shop's decimal id, got {shop_id!r}")
        sign_method = options.get("sign_method", SIGN_METHOD_HMAC_SHA256).strip().lower()
        if sign_method not in SIGN_METHODS:
            raise ValueError(f"sign_method must be hmac-sha256 or md5, got {sign_method!r}")
        modes = options.get("write_modes")
        return cls(
            base_url=options["base_url"].strip(),
            app_key=options["app_key"].strip(),
            app_secret=options["app_secret"],
            access_token=options["access_token"],
            shop_id=str(int(shop_id)),
            timeout_s=seconds_option(options, "timeout_s", DEFAULT_TIMEOUT_S),
            write_modes=DEFAULT_WRITE_MODES if modes is None else parse_write_modes(modes),
            sign_method=sign_method,
            throttle_wait_s=seconds_option(options, "throttle_wait_s", DEFAULT_THROTTLE_WAIT_S),
            webhook_window_s=seconds_option(options, "webhook_window_s", DEFAULT_WEBHOOK_WINDOW_S),
        )


def parse_write_modes(option: str) -> frozenset[WriteMode]:
    """``"delta,absolute"`` -> the modes; an unknown or unsupported name is a settings error.

    Douyin offers no compare-and-swap: ``sku.syncStock`` has no expected-count parameter.
    """
    names = [name.strip() for name in option.split(",") if name.strip()]
    try:
        modes = frozenset(WriteMode(name) for name in names)
    except ValueError:
        modes = frozenset()
    if not modes or not modes <= SUPPORTED_WRITE_MODES:
        raise ValueError(f"write_modes must list delta and/or absolute, got {option!r}")
    return modes
