"""Connector discovery through the ``stockcast.connectors`` entry-point group.

Loaded lazily, by name, so a broken third-party plugin only fails the channels that
use it, and nothing imports a platform connector except through here.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector

ENTRY_POINT_GROUP = "stockcast.connectors"


class UnknownConnector(LookupError):
    """No installed plugin registers the requested connector name."""


def available() -> dict[str, EntryPoint]:
    """Every registered connector by name, without importing any of them."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(name: str) -> type[Connector]:
    """Import and return the connector class registered as ``name``."""
    try:
        entry_point = available()[name]
    except KeyError:
        known = ", ".join(sorted(available())) or "none"
        raise UnknownConnector(f"no connector named {name!r} (installed: {known})") from None
    connector: type[Connector] = entry_point.load()
    return connector
