"""Node pressure: eviction signals against --eviction-hard thresholds, as the kubelet's eviction manager.

Signals (Kubernetes' names and, where cheap, its formulas):
- memory.available: memory capacity minus the root cgroup's working set (usage - inactive file), or
  MemAvailable from /proc/meminfo when the cgroup is not readable;
- nodefs.available / nodefs.inodesFree: statvfs of the kubelet's root dir;
- imagefs.available / imagefs.inodesFree: statvfs of the runtime's image filesystem (CRI ImageFsInfo);
- pid.available: kernel.pid_max minus the tasks that exist now.
A condition turns True as soon as one of its signals crosses a threshold and back to False only after
--eviction-pressure-transition-period (5 m) without crossing, so it does not flap. The conditions go on
the Node (node_agent.nodestatus: the node lifecycle controller taints from them, the scheduler keeps new pods
away); refusing new pods and evicting running ones under pressure is node_agent.eviction's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pybernetes.api import quantity

# Kubernetes' Linux defaults for evictionHard.
DEFAULT_EVICTION_HARD = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%"
# What kind gives its nodes: disk signals off, since every node of a lab shares the host's disk and a
# nearly full laptop would otherwise taint them all. Memory pressure stays as Kubernetes has it.
LAB_EVICTION_HARD = "memory.available<100Mi,nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"
SIGNALS = ("memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available",
           "imagefs.inodesFree", "pid.available")
CONDITION_OF = {"memory": "MemoryPressure", "nodefs": "DiskPressure", "imagefs": "DiskPressure",
                "pid": "PIDPressure"}


@dataclass(frozen=True)
class Threshold:
    signal: str
    quantity: int | None = None  # absolute amount (bytes, inodes or pids)
    percent: float | None = None  # or a share of the capacity, 0-100
    text: str = ""  # as written, for messages

    def limit(self, capacity: int) -> float:
        """The amount below which the signal is crossed, given the signal's capacity."""
        if self.quantity is not None:
            return self.quantity
        assert self.percent is not None
        return capacity * self.percent / 100.0

    def crossed(self, available: int, capacity: int) -> bool:
        if self.quantity is None and capacity <= 0:
            return False  # a share of nothing is unknown, not crossed
        return available < self.limit(capacity)

    def __str__(self) -> str:
        return self.text or (f"{self.signal}<{self.percent:g}%" if self.percent is not None
                             else f"{self.signal}<{self.quantity}")


def parse_thresholds(text: str) -> list[Threshold]:
    """`memory.available<100Mi,nodefs.available<10%` -> thresholds; ValueError naming the bad part."""
    out: list[Threshold] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        signal, sep, value = part.partition("<")
        signal, value = signal.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"eviction threshold {part!r}: want SIGNAL<QUANTITY or SIGNAL<PERCENT%")
        if signal not in SIGNALS:
            raise ValueError(f"eviction threshold {part!r}: unknown signal {signal!r} (one of {', '.join(SIGNALS)})")
        if value.endswith("%"):
            pct = float(value[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(f"eviction threshold {part!r}: percentage must be within 0-100")
            out.append(Threshold(signal, percent=pct, text=f"{signal}<{value}"))
        else:
            try:
                amount = quantity.value(value)
            except quantity.QuantityError as e:
                raise ValueError(f"eviction threshold {part!r}: {e}") from None
            out.append(Threshold(signal, quantity=amount, text=f"{signal}<{value}"))
    return out


# ---- observations ------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def meminfo(text: str | None = None) -> dict[str, int]:
    """/proc/meminfo (or `text`) as numbers: kB values in bytes, unit-less counts as they are."""
    kv: dict[str, int] = {}
    for line in (text if text is not None else _read("/proc/meminfo")).splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            kv[key] = int(fields[0]) * (1024 if fields[1:2] == ["kB"] else 1)
    return kv


def memory_observation(meminfo_text: str | None = None,
                       cgroup_root: str = "/sys/fs/cgroup/memory") -> tuple[int, int]:
    """(available, capacity) bytes: capacity minus the root cgroup's working set, as the kubelet."""
    kv = meminfo(meminfo_text)
    capacity = kv.get("MemTotal", 0)
    usage = _read(f"{cgroup_root}/memory.usage_in_bytes").strip()
    stat = dict(line.split(" ", 1) for line in _read(f"{cgroup_root}/memory.stat").splitlines() if " " in line)
    if usage.isdigit() and stat.get("total_inactive_file", "").strip().isdigit():
        working_set = max(int(usage) - int(stat["total_inactive_file"]), 0)
        return max(capacity - working_set, 0), capacity
    return kv.get("MemAvailable", kv.get("MemFree", 0)), capacity


def fs_observation(path: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((available bytes, capacity bytes), (free inodes, inodes)) of the filesystem holding `path`."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return (st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize), (st.f_favail, st.f_files)


def pid_observation(loadavg: str | None = None, pid_max: str | None = None) -> tuple[int, int]:
    """(available, capacity) pids: pid_max minus the tasks that exist (4th field of /proc/loadavg)."""
    cap_text = (pid_max if pid_max is not None else _read("/proc/sys/kernel/pid_max")).strip()
    capacity = int(cap_text) if cap_text.isdigit() else 0
    fields = (loadavg if loadavg is not None else _read("/proc/loadavg")).split()
    tasks = int(fields[3].split("/")[1]) if len(fields) > 3 and "/" in fields[3] else 0
    return max(capacity - tasks, 0), capacity


Observations = dict[str, tuple[int, int]]  # signal -> (available, capacity)


def observe(nodefs: str, imagefs: str | None) -> Observations:
    obs: Observations = {"memory.available": memory_observation(), "pid.available": pid_observation()}
    for prefix, path in (("nodefs", nodefs), ("imagefs", imagefs or nodefs)):
        fs = fs_observation(path)
        if fs is not None:
            obs[f"{prefix}.available"], obs[f"{prefix}.inodesFree"] = fs
    return obs


def crossed(thresholds: list[Threshold], obs: Observations) -> list[tuple[Threshold, int, int]]:
    """The thresholds `obs` crosses, in their order, each with its signal's (available, capacity)."""
    return [(t, *obs[t.signal]) for t in thresholds if t.signal in obs and t.crossed(*obs[t.signal])]


# ---- conditions --------------------------------------------------------------------------------------


class PressureTracker:
    """Which pressure conditions hold, with the transition period so they do not flap."""

    def __init__(self, thresholds: list[Threshold], transition_period: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.thresholds = thresholds
        self.transition_period = transition_period
        self.clock = clock
        self._last_crossed: dict[str, float] = {}  # condition -> when a threshold was last crossed
        self.crossed: dict[str, list[str]] = {}  # condition -> the thresholds crossed at the last update

    def update(self, obs: Observations) -> dict[str, bool]:
        now = self.clock()
        self.crossed = {}
        for t, _, _ in crossed(self.thresholds, obs):
            cond = CONDITION_OF[t.signal.split(".")[0]]
            self.crossed.setdefault(cond, []).append(str(t))
            self._last_crossed[cond] = now
        return {cond: cond in self.crossed or (cond in self._last_crossed
                                                and now - self._last_crossed[cond] < self.transition_period)
                for cond in ("MemoryPressure", "DiskPressure", "PIDPressure")}
