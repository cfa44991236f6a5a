"""The mock shop's rate limits, in Shopify's two documented shapes.

GraphQL: a leaky bucket of cost points per app and shop. A call whose requested cost is
more than the bucket holds is refused with HTTP 200, ``errors[].extensions.code ==
"THROTTLED"``, and ``extensions.cost`` telling what is left and how fast it refills; an
accepted call is charged its requested cost, and the part it did not use is given back.
REST: a bucket of requests (40, leaking 2 a second on the Standard plan) answered with
429, ``Retry-After`` and ``X-Shopify-Shop-Api-Call-Limit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

REST_BUCKET_SIZE: Final = 40
REST_LEAK_PER_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may run, and the ``extensions.cost`` to answer it with."""

    admitted: bool
    cost: dict[str, Any]


class CostBucket:
    """Cost points: ``maximum_available`` when full, refilled at ``restore_rate`` a second."""

    def __init__(
        self,
        *,
        maximum_available: float,
        restore_rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum_available <= 0 or restore_rate <= 0:
            raise ValueError("the cost bucket needs a positive size and restore rate")
        self.maximum_available = maximum_available
        self.restore_rate = restore_rate
        self._clock = clock
        self._available = maximum_available
        self._at = clock()

    def admit(self, requested: int) -> Admission:
        """Charge ``requested`` points if the bucket holds them."""
        available = self._refill()
        if requested > available:
            return Admission(False, self._cost(requested, None, available))
        self._available = available - requested
        return Admission(True, self._cost(requested, requested, self._available))

    def refund(self, admission: Admission, actual: int) -> dict[str, Any]:
        """Give back what an admitted call did not use; the final ``extensions.cost``."""
        requested = int(admission.cost["requestedQueryCost"])
        self._available = min(self.maximum_available, self._refill() + max(0, requested - actual))
        return self._cost(requested, actual, self._available)

    def refused(self, requested: int) -> dict[str, Any]:
        """The cost block of a call refused for another reason than this bucket: as if the
        bucket had run dry (another app of the shop's, a forced throttle)."""
        return self._cost(requested, None, 0.0)

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._available = min(self.maximum_available, self._available + elapsed * self.restore_rate)
        return self._available

    def _cost(self, requested: int, actual: int | None, available: float) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum_available,
                "currentlyAvailable": int(available),
                "restoreRate": self.restore_rate,
            },
        }


class RestBucket:
    """Requests: ``size`` when full, one leaks out every ``1 / leak_per_s`` seconds."""

    def __init__(
        self,
        size: int = REST_BUCKET_SIZE,
        leak_per_s: float = REST_LEAK_PER_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self._leak_per_s = leak_per_s
        self._clock = clock
        self._level = 0.0
        self._at = clock()

    def admit(self) -> tuple[bool, str, float]:
        """(admitted, the call-limit header, seconds until a place frees up)."""
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self._leak_per_s)
        self._at = now
        if self._level + 1 > self.size:
            wait = (self._level + 1 - self.size) / self._leak_per_s
            return False, self.header(), wait
        self._level += 1
        return True, self.header(), 0.0

    def header(self) -> str:
        return f"{int(self._level + 0.999)}/{self.size}"
