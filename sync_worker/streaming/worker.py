"""Runs the daemon: the faust worker with our HTTP and publisher services beside it."""

from __future__ import annotations

import asyncio

import faust

from sync_worker.config import Settings
from sync_worker.streaming.app import create_app
from sync_worker.streaming.topics import ensure_topics


def run_worker(settings: Settings) -> None:
    """Block until SIGTERM or SIGINT, then stop every service cleanly."""
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    stockcast = create_app(settings)
    asyncio.run(ensure_topics(settings.kafka, stockcast.topics))
    worker = faust.Worker(
        stockcast.faust_app,
        *stockcast.services,
        loglevel=settings.worker.log_level,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
