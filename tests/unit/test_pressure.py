"""Eviction thresholds and pressure conditions (node_agent.pressure), on fixed observations."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_agent import pressure
from node_agent.eviction import pressure_rejection
from node_agent.pressure import PressureTracker, Threshold, parse_thresholds
from pybernetes.api.core.v1 import core_pb2 as core

GI = 1024**3


def test_parse_kubernetes_defaults() -> None:
    got = {t.signal: t for t in parse_thresholds(pressure.DEFAULT_EVICTION_HARD)}
    assert got["memory.available"].quantity == 100 * 1024**2
    assert got["nodefs.available"].percent == 10
    assert got["nodefs.inodesFree"].percent == 5
    assert got["imagefs.available"].percent == 15
    assert str(got["memory.available"]) == "memory.available<100Mi"


@pytest.mark.parametrize(("text", "message"), [
    ("memory.available>1Gi", "want SIGNAL<QUANTITY"),
    ("memory.free<1Gi", "unknown signal 'memory.free'"),
    ("nodefs.available<120%", "within 0-100"),
    ("memory.available<lots", "quantities must match"),
    ("pid.available<", "want SIGNAL<QUANTITY"),
])
def test_parse_errors_name_the_threshold(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as e:
        parse_thresholds(text)
    assert text in str(e.value)


def test_threshold_crossing() -> None:
    assert Threshold("memory.available", quantity=100).crossed(99, 1000)
    assert not Threshold("memory.available", quantity=100).crossed(100, 1000)
    assert Threshold("nodefs.available", percent=10).crossed(99, 1000)
    assert not Threshold("nodefs.available", percent=10).crossed(100, 1000)
    assert not Threshold("nodefs.available", percent=0).crossed(0, 1000)  # 0% switches a signal off


def test_conditions_follow_signals_and_do_not_flap() -> None:
    now = [0.0]
    tracker = PressureTracker(parse_thresholds(pressure.DEFAULT_EVICTION_HARD + ",pid.available<1000"),
                              transition_period=300, clock=lambda: now[0])
    healthy = {"memory.available": (8 * GI, 16 * GI), "nodefs.available": (50 * GI, 100 * GI),
               "nodefs.inodesFree": (900, 1000), "imagefs.available": (50 * GI, 100 * GI),
               "pid.available": (30000, 32768)}
    assert tracker.update(healthy) == {"MemoryPressure": False, "DiskPressure": False, "PIDPressure": False}

    tight = {**healthy, "imagefs.available": (14 * GI, 100 * GI), "pid.available": (999, 32768)}
    assert tracker.update(tight) == {"MemoryPressure": False, "DiskPressure": True, "PIDPressure": True}
    assert tracker.crossed == {"DiskPressure": ["imagefs.available<15%"], "PIDPressure": ["pid.available<1000"]}

    now[0] = 299.0  # recovered, but within the transition period: still True
    assert tracker.update(healthy)["DiskPressure"] is True
    assert tracker.crossed == {}
    now[0] = 301.0
    assert tracker.update(healthy) == {"MemoryPressure": False, "DiskPressure": False, "PIDPressure": False}

    low_mem = {**healthy, "memory.available": (50 * 1024**2, 16 * GI)}
    assert tracker.update(low_mem)["MemoryPressure"] is True


def test_zero_transition_period_follows_at_once() -> None:
    tracker = PressureTracker(parse_thresholds("memory.available<1Gi"), transition_period=0)
    assert tracker.update({"memory.available": (1, GI)})["MemoryPressure"] is True
    assert tracker.update({"memory.available": (2 * GI, 4 * GI)})["MemoryPressure"] is False


def test_observations_from_proc_and_cgroup_files(tmp_path: Path) -> None:
    cg = tmp_path
    (cg / "memory.usage_in_bytes").write_text(f"{6 * GI}\n")
    (cg / "memory.stat").write_text(f"cache 10\ntotal_inactive_file {2 * GI}\n")
    meminfo = f"MemTotal: {16 * GI // 1024} kB\nMemAvailable: {9 * GI // 1024} kB\n"
    # capacity - (usage - inactive file), as the kubelet computes it
    assert pressure.memory_observation(meminfo, str(cg)) == (12 * GI, 16 * GI)
    # no readable cgroup: MemAvailable
    assert pressure.memory_observation(meminfo, str(cg / "missing")) == (9 * GI, 16 * GI)
    assert pressure.pid_observation("0.1 0.2 0.3 2/250 999\n", "32768\n") == (32518, 32768)
    (avail, cap), (ifree, inodes) = pressure.fs_observation(str(cg)) or ((0, 0), (0, 0))
    assert 0 < avail <= cap and 0 < ifree <= inodes
    assert pressure.fs_observation(str(cg / "missing")) is None


def _pod(qos: str = "", priority: int = 0, tolerate_memory: bool = False) -> core.Pod:
    p = core.Pod()
    p.spec.containers.add(name="c")
    p.status.qos_class = qos
    p.spec.priority = priority
    if tolerate_memory:
        p.spec.tolerations.add(key="node.kubernetes.io/memory-pressure", operator="Exists", effect="NoSchedule")
    return p


def test_admission_under_pressure_as_the_eviction_manager() -> None:
    assert pressure_rejection(_pod(), []) == ""
    # memory pressure alone: only BestEffort pods that do not tolerate it are refused
    assert pressure_rejection(_pod(), ["MemoryPressure"]) == "The node had condition: [MemoryPressure]. "
    assert pressure_rejection(_pod("Burstable"), ["MemoryPressure"]) == ""
    assert pressure_rejection(_pod(tolerate_memory=True), ["MemoryPressure"]) == ""
    # disk or PID pressure: everyone, unless critical
    both = ["MemoryPressure", "DiskPressure"]
    assert pressure_rejection(_pod("Guaranteed"), both) == "The node had condition: [MemoryPressure DiskPressure]. "
    assert pressure_rejection(_pod("Guaranteed"), ["PIDPressure"]) != ""
    assert pressure_rejection(_pod(priority=2_000_001_000), both) == ""
