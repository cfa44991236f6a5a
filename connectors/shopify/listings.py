"""Where each stockcast SKU lives on a shop: its inventory item and location.

A listing reference is ``<inventory_item_id>[@<location_id>]`` with numeric ids, the
ones the admin shows in URLs; the connector builds the ``gid://`` forms itself so a
settings file never has to spell them. Everything is checked at construction, so a
typo fails the channel at start-up rather than at its first sale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.shopify import api


@dataclass(frozen=True, slots=True)
class Listing:
    """One SKU's stock counter on the shop: an inventory item at a location."""

    item_id: str
    location_id: str

    @property
    def item_gid(self) -> str:
        return api.inventory_item_gid(self.item_id)

    @property
    def location_gid(self) -> str:
        return api.location_gid(self.location_id)

    def reference(self) -> str:
        return f"{self.item_id}@{self.location_id}"


def parse_listings(listings: Mapping[str, str], default_location: str | None) -> dict[str, Listing]:
    """Every SKU's listing; ``default_location`` stands in where a reference names none.

    Raises ``ValueError`` naming the first SKU whose reference is not of the form, or that
    names no location while there is no default.
    """
    parsed = {}
    for sku, reference in listings.items():
        item_id, at, location_id = reference.strip().partition("@")
        if not at:
            location_id = default_location or ""
        if not _numeric(item_id) or (at and not location_id):
            raise ValueError(
                f"listing of SKU {sku!r} must be '<inventory_item_id>[@<location_id>]' "
                f"with numeric ids, got {reference!r}"
            )
        if not location_id:
            raise ValueError(
                f"listing of SKU {sku!r} names no location and the option 'location_id' is not set"
            )
        if not _numeric(location_id):
            raise ValueError(f"listing of SKU {sku!r} has a non-numeric location {reference!r}")
        parsed[sku] = Listing(item_id, location_id)
    return parsed


def parse_variants(option: str | None) -> dict[str, str]:
    """The ``variants`` option: ``<variant_id>=<sku>`` pairs, comma-separated, naming the
    stockcast SKU of a variant whose seller SKU is not stockcast's own code."""
    if option is None:
        return {}
    variants = {}
    for pair in option.split(","):
        if not pair.strip():
            continue
        variant_id, sep, sku = (part.strip() for part in pair.partition("="))
        if not sep or not _numeric(variant_id) or not sku:
            raise ValueError(f"option 'variants' must list '<variant_id>=<sku>' pairs: {pair!r}")
        variants[variant_id] = sku
    return variants


def default_location(option: str | None) -> str | None:
    """The ``location_id`` option, numeric or as a Location gid."""
    if option is None or not option.strip():
        return None
    text = option.strip()
    number = api.gid_number(text, api.LOCATION_GID) if text.startswith("gid://") else text
    if number is None or not _numeric(number):
        raise ValueError(f"option 'location_id' must be a numeric location id, got {option!r}")
    return number


def _numeric(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()
