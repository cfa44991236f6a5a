"""What TikTok Shop's Partner API (version 202309) publishes, as constants both sides share.

The connector and the mock platform agree on paths, codes and limits through this module
only; payload shapes are built and read separately (``mapping`` on the connector side, the
``mock_*`` modules on the platform side), so a misread shape shows up as a failing test.

Tags follow the research notes: the common codes are documented ([D]); the endpoint
business codes were not in the corpora, so their numbers are placeholders ([U]) and the
connector keys on none of them: every non-zero code it does not know is permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

API_VERSION: Final = "202309"

INVENTORY_SEARCH_PATH: Final = "/product/202309/inventory/search"
INVENTORY_UPDATE_ROUTE: Final = "/product/202309/products/{product_id}/inventory/update"
ORDERS_PATH: Final = "/order/202309/orders"
RETURNS_SEARCH_PATH: Final = "/return_refund/202309/returns/search"

ACCESS_TOKEN_HEADER: Final = "x-tts-access-token"
WEBHOOK_SIGNATURE_HEADER: Final = "authorization"
"""Lower-case, as our ingress hands headers over; the platform sends ``Authorization``."""

MAX_QUANTITY: Final = 99_998
"""A SKU's warehouse quantity must be >= 0 and < 99999 [D]."""
MAX_SEARCH_SKU_IDS: Final = 600
MAX_SEARCH_PRODUCT_IDS: Final = 100
MAX_ORDER_IDS: Final = 50

TIMESTAMP_PAST_WINDOW_S: Final = 300
"""A request timestamp may lie up to 5 minutes before the platform's clock [D]..."""
TIMESTAMP_FUTURE_WINDOW_S: Final = 30
"""...and up to 30 seconds after it [D]. Webhooks keep this future skew too."""

WEBHOOK_REDELIVERY_S: Final = 72 * 3600
"""How long after an event a webhook may still arrive: TikTok redelivers an unacknowledged
notification with its original body (and ``timestamp``) for up to 72 hours, with
exponential backoff, then drops it (TikTok for Developers, "Webhooks overview",
developers.tiktok.com/doc/webhooks-overview) [U: the TikTok Shop partner docs in reach do
not restate it for shop webhooks]. The connector's default webhook window."""

# Common codes [D] (partner.tiktokshop.com/docv2/page/common-errors).
SUCCESS: Final = 0
TOO_MANY_REQUESTS: Final = 36009002
INTERNAL_ERROR: Final = 36009003
INVALID_REQUEST: Final = 36009004
"""Overloaded: missing sign, bad app_key, bad token header, bad timestamp, unexpected
shop_cipher. Only the message tells them apart."""
REQUEST_TIMEOUT: Final = 36009007
INVALID_PATH: Final = 36009009
INVALID_METHOD: Final = 36009010
INVALID_FORMAT: Final = 36009022
EXPIRED_TOKEN: Final = 105002
INVALID_SIGN: Final = 106001
MISSING_SHOP_CIPHER: Final = 106013
INVALID_IDENTIFIER: Final = 101000

RETRYABLE_CODES: Final = frozenset({INTERNAL_ERROR, REQUEST_TIMEOUT})

# Endpoint business codes [U]: placeholders, see the module docstring.
INVALID_PARAMETER: Final = 12052001
PRODUCT_NOT_FOUND: Final = 12052002
SKU_NOT_FOUND: Final = 12052003
SKU_NOT_LIVE: Final = 12052004
WAREHOUSE_REQUIRED: Final = 12052005
WAREHOUSE_NOT_FOUND: Final = 12052006

# Webhook event types [S] (SKIT sample events).
ORDER_STATUS_CHANGE: Final = 1
CANCELLATION_STATUS_CHANGE: Final = 11
RETURN_STATUS_CHANGE: Final = 12
ORDER_EVENT_TYPES: Final = frozenset(
    {ORDER_STATUS_CHANGE, CANCELLATION_STATUS_CHANGE, RETURN_STATUS_CHANGE}
)

# Order statuses [D] (Get Order Detail 202309).
UNPAID: Final = "UNPAID"
ON_HOLD: Final = "ON_HOLD"
AWAITING_SHIPMENT: Final = "AWAITING_SHIPMENT"
PARTIALLY_SHIPPING: Final = "PARTIALLY_SHIPPING"
AWAITING_COLLECTION: Final = "AWAITING_COLLECTION"
IN_TRANSIT: Final = "IN_TRANSIT"
DELIVERED: Final = "DELIVERED"
COMPLETED: Final = "COMPLETED"
CANCELLED: Final = "CANCELLED"
SHIPPED_STATUSES: Final = frozenset(
    {PARTIALLY_SHIPPING, AWAITING_COLLECTION, IN_TRANSIT, DELIVERED, COMPLETED}
)
"""Only once goods left can a buyer get a refund that is not a cancellation."""

# Returns [D] (Search Returns 202309).
REFUND_RETURN_TYPES: Final = frozenset({"REFUND", "RETURN_AND_REFUND"})
RETURN_COMPLETE: Final = "RETURN_OR_REFUND_REQUEST_COMPLETE"


def inventory_update_path(product_id: str) -> str:
    return INVENTORY_UPDATE_ROUTE.format(product_id=product_id)


@dataclass(frozen=True, slots=True)
class ListingRef:
    """Where a stockcast SKU lives on TikTok Shop: ``<product_id>:<sku_id>[@<warehouse_id>]``.

    Without a warehouse the SKU is stocked in the shop's single default warehouse, where
    the platform lets an update leave ``warehouse_id`` out [D].
    """

    product_id: str
    sku_id: str
    warehouse_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> ListingRef:
        """Raises ``ValueError`` saying what is wrong (the caller adds which SKU)."""
        head, at, warehouse = text.partition("@")
        product_id, colon, sku_id = head.partition(":")
        if not colon or not product_id.strip() or not sku_id.strip() or ":" in sku_id:
            raise ValueError(f"expected '<product_id>:<sku_id>[@<warehouse_id>]', got {text!r}")
        if at and not warehouse.strip():
            raise ValueError(f"the warehouse after '@' is empty in {text!r}")
        return cls(product_id.strip(), sku_id.strip(), warehouse.strip() if at else None)

    def __str__(self) -> str:
        base = f"{self.product_id}:{self.sku_id}"
        return base if self.warehouse_id is None else f"{base}@{self.warehouse_id}"
