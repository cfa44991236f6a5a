"""Runs the daemon: the faust worker with our HTTP and publisher services beside it."""

from __future__ import annotations

import asyncio
import shutil

import faust

from sync_worker.config import Settings
from sync_worker.streaming.app import create_app
from sync_worker.streaming.topics import ensure_topics


def run_worker(settings: Settings) -> None:
    """Block until SIGTERM or SIGINT, then stop every service cleanly."""
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    stockcast = create_app(settings)
    # The changelog is the only truth: local tables may hold writes that never reached
    # it (a crash between the two), and recovering over them could undo the replay
    # guard's work (docs/ledger.md). RocksDB keeps large tables off the heap, not warm.
    shutil.rmtree(stockcast.faust_app.conf.tabledir, ignore_errors=True)
    asyncio.run(ensure_topics(settings.kafka, stockcast.topics))
    worker = faust.Worker(
        stockcast.faust_app,
        *stockcast.services,
        loglevel=settings.worker.log_level,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
