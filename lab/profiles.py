"""Lab timing profiles (`lab up --profile`): settings per component on top of the lab's own.

Each setting names a field of the component's `Config`; lab.commands applies them before turning the Config
into flags. lab.topology's Plan carries the chosen profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    controller_manager: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    kubelet: dict[str, Any] = field(default_factory=dict)
    apiserver: dict[str, Any] = field(default_factory=dict)


PROFILES = {
    # Kubernetes' defaults: node monitor grace 40 s, NoExecute tolerations 300 s, status every 10 s.
    "default": Profile("default", "Kubernetes' defaults (node grace 40 s, eviction after 300 s)"),
    # Failure handling visible within a minute: a dead node is NotReady after ~10 s, its pods are
    # evicted 20 s later. Single replicas, so leader election only costs time on restarts.
    "fast": Profile(
        "fast", "short timings (node grace 10 s, eviction after 20 s)",
        controller_manager={"node_monitor_grace_period": 10.0, "node_monitor_period": 1.0,
                            "pod_eviction_timeout": 20.0, "default_not_ready_toleration_seconds": 20,
                            "default_unreachable_toleration_seconds": 20, "leader_elect": False},
        scheduler={"leader_elect": False},
        kubelet={"node_status_update_frequency": 2.0, "node_lease_duration": 8, "sync_frequency": 5.0},
        apiserver={"default_not_ready_toleration_seconds": 20, "default_unreachable_toleration_seconds": 20},
    ),
}
