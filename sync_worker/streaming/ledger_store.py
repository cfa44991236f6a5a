"""The ledger's local state: one RocksDB store per input partition this worker owns.

The Kafka changelog is the truth and these stores only its cache, rebuilt from the
changelog every time a partition is assigned (a store left on disk may hold writes
the changelog never got). RocksDB keeps a large ledger off the Python heap. Every
key of a SKU lives in the store of the SKU's partition, so dropping a revoked
partition drops exactly its SKUs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from rocksdict import Options, Rdict, WriteOptions


class PartitionStores:
    """Byte stores by partition, under ``directory`` (one subdirectory each)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._stores: dict[int, Rdict] = {}

    def fresh(self, partition: int) -> Rdict:
        """An empty store for ``partition``, whatever was on disk before."""
        self.drop(partition)
        path = self._directory / str(partition)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = self._stores[partition] = Rdict(str(path), Options(raw_mode=True))
        # RocksDB's write-ahead log would make the cache survive a crash, which nothing
        # wants (it is rebuilt from the changelog); without it a write costs a fifth.
        unlogged = WriteOptions()
        unlogged.disable_wal = True  # type: ignore[assignment]  # a property; the stub says a method
        store.set_write_options(unlogged)
        return store

    def store(self, partition: int) -> Rdict:
        return self._stores[partition]

    def drop(self, partition: int) -> None:
        store = self._stores.pop(partition, None)
        if store is not None:
            store.close()

    def close(self) -> None:
        for partition in list(self._stores):
            self.drop(partition)

    def get(self, key: bytes) -> bytes | None:
        """``key`` from whichever owned partition holds it."""
        for store in self._stores.values():
            value: bytes | None = store.get(key)
            if value is not None:
                return value
        return None

    def items(self, partition: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every key of one owned partition, or of every one."""
        stores = list(self._stores.values()) if partition is None else [self._stores[partition]]
        for store in stores:
            yield from store.items()
