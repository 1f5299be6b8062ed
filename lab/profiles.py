"""Lab timing profiles (`lab up --profile`): extra flags per component on top of the lab's command lines.

lab.commands appends them; lab.topology's Plan carries the chosen one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    controller_manager: tuple[str, ...] = ()
    scheduler: tuple[str, ...] = ()
    kubelet: tuple[str, ...] = ()
    # passed only when the apiserver's --help lists them (DefaultTolerationSeconds lives there)
    apiserver_optional: tuple[str, ...] = ()


PROFILES = {
    # Kubernetes' defaults: node monitor grace 40 s, NoExecute tolerations 300 s, status every 10 s.
    "default": Profile("default", "Kubernetes' defaults (node grace 40 s, eviction after 300 s)"),
    # Failure handling visible within a minute: a dead node is NotReady after ~10 s, its pods are
    # evicted 20 s later. Single replicas, so leader election only costs time on restarts.
    "fast": Profile(
        "fast", "short timings (node grace 10 s, eviction after 20 s)",
        controller_manager=("--node-monitor-grace-period=10s", "--node-monitor-period=1s",
                            "--pod-eviction-timeout=20s", "--default-not-ready-toleration-seconds=20",
                            "--default-unreachable-toleration-seconds=20", "--leader-elect=false"),
        scheduler=("--leader-elect=false",),
        kubelet=("--node-status-update-frequency=2s", "--node-lease-duration=8", "--sync-frequency=5s"),
        apiserver_optional=("--default-not-ready-toleration-seconds=20",
                            "--default-unreachable-toleration-seconds=20"),
    ),
}
