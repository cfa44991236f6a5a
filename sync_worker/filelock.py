"""An exclusive lock on a file, held across processes: parallel ``make`` targets, pytest
workers and benches that fetch, start or stop the same local services take turns."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its parent directories)
    until the block exits. With ``wait=False`` a lock held elsewhere raises
    ``BlockingIOError`` at once instead of waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
