"""How fast one change reaches every subscriber of a live room (SSE), measured.

    .venv/bin/python tools/live_fanout.py [SUBSCRIBERS] [CHANGES]

The worker's live-room server runs in one process, raw-socket subscribers in another
(so the subscribers' own reading does not share the server's core). Prints the time
the server spends writing each change to every connection, and the delay from the
change to each subscriber reading it. Numbers for the issue notes, not a test.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import statistics
import sys
import time

from aiohttp import web

from sync_worker.metrics import Metrics
from sync_worker.web.live import LiveHub, live_routes

ROOM = "room"
_CHANGE_TIME = re.compile(rb'"event_time_ms":(\d+)')


def serve(port: int, subscribers: int, changes: int, writes: multiprocessing.Queue) -> None:
    async def main() -> None:
        hub, metrics = LiveHub(), Metrics.create()
        app = web.Application()
        app.add_routes(live_routes(hub, metrics))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        while hub.subscriber_count(ROOM) < subscribers:  # noqa: ASYNC110 - nothing to await
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        for version in range(1, changes + 1):
            # The change's time, in microseconds, rides in event_time_ms for this tool only.
            started = time.perf_counter()
            hub.update(ROOM, "lipstick", changes - version, version, time.time_ns() // 1000)
            writes.put(time.perf_counter() - started)
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        hub.close()
        await runner.cleanup()

    asyncio.run(main())


async def subscribe(port: int, subscribers: int, changes: int) -> list[float]:
    delays: list[float] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /live/{ROOM} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        seen = 0
        while seen < changes and (data := await reader.read(65536)):
            now_us = time.time_ns() / 1000
            for match in _CHANGE_TIME.finditer(data):
                delays.append((now_us - int(match.group(1))) / 1000)
                seen += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(subscribers)))
    return delays


def main() -> None:
    subscribers = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    changes = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    port = 18777
    writes: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port, subscribers, changes, writes))
    server.start()
    time.sleep(1.0)
    delays = sorted(asyncio.run(subscribe(port, subscribers, changes)))
    server.join()
    spent = sorted(writes.get() * 1000 for _ in range(changes))
    print(
        f"{subscribers} SSE subscribers, {changes} changes: server writes each change to all "
        f"in {statistics.median(spent):.1f} ms (max {spent[-1]:.1f}); delivered "
        f"p50 {delays[len(delays) // 2]:.1f} ms, p99 {delays[int(len(delays) * 0.99)]:.1f} ms"
    )


if __name__ == "__main__":
    main()
