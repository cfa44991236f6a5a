"""``stockcast bench``: stockcast against the baselines a user would pick instead, under
the same load generator and the same workloads (issue 8).

- ``system``: the ``System`` / ``Decider`` interface every benchmarked system implements;
- ``catalog``: the systems by name; ``floor``, ``baseline_postgres``, ``baseline_redis``;
- ``stockcast_system``: the full path, on ``stockcast_processes`` (its broker and
  worker), ``stockcast_room`` (the live room), ``stockcast_link`` (its Kafka clients)
  and ``stockcast_books`` (one run);
- ``workloads``: the seeded workloads; ``loadgen``: closed and open loop;
- ``services``: PostgreSQL and Redis from Debian packages, started on loopback;
- ``runner``: sweeps and invariant checks; ``report``: table, JSON and the latency plot.
"""
