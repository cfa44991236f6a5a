"""A deterministic allocation simulator: the real ledger and allocator against
platforms that sell on their own, with delays, rate limits and bursts of buyers.

No Kafka, no asyncio, no wall clock: a scenario (``trace``) is expanded into the
same buyers for every policy (``arrivals``), played by a discrete-event loop
(``engine``) and compared (``report``). See ``docs/allocation.md``.
"""
