"""CPU time per role over one run: the bench's own process (``client``) and whatever a
system names (``server``; ``worker`` and ``broker``), children included."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence

import psutil

CLIENT = "client"


class CpuMeter:
    """``start()`` before the run, ``stop()`` after it: CPU seconds per role in between.

    Children are found at both ends; a child that started and ended within the run is
    missed (the servers here keep their processes for the whole run). The kernel counts
    in ticks (10 ms), so only runs of a second or more give meaningful figures."""

    def __init__(self, roles: Mapping[str, Sequence[int]]) -> None:
        self._roles = dict(roles)
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self) -> dict[str, float]:
        after = self._snapshot()
        used: dict[str, float] = {}
        for role, times in after.items():
            before = self._before.get(role, {})
            used[role] = sum(max(0.0, spent - before.get(pid, 0.0)) for pid, spent in times.items())
        return used

    def _snapshot(self) -> dict[str, dict[int, float]]:
        taken = {CLIENT: _cpu_seconds(psutil.Process(os.getpid()), children=False)}
        for role, pids in self._roles.items():
            taken[role] = {}
            for pid in pids:
                try:
                    taken[role].update(_cpu_seconds(psutil.Process(pid), children=True))
                except psutil.Error:
                    continue  # gone: nothing more to count
        return taken


def _cpu_seconds(process: psutil.Process, *, children: bool) -> dict[int, float]:
    processes = [process]
    if children:
        with contextlib.suppress(psutil.Error):
            processes += process.children(recursive=True)
    spent: dict[int, float] = {}
    for each in processes:
        try:
            times = each.cpu_times()
        except psutil.Error:
            continue
        spent[int(each.pid)] = float(times.user + times.system)
    return spent
