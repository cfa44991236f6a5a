"""``stockcast bench``: stockcast against the baselines a user would pick instead, under
the same load generator and the same workloads (issue 8).

- ``system``: the ``System`` / ``Decider`` interface every benchmarked system implements;
- ``catalog``: the systems by name; ``floor``, ``baseline_postgres``, ``baseline_redis``;
- ``workloads``: the seeded workloads; ``loadgen``: closed and open loop;
- ``services``: PostgreSQL and Redis from Debian packages, started on loopback;
- ``runner``: sweeps and invariant checks; ``report``: table, JSON and the latency plot.
"""
