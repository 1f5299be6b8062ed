"""DefaultTolerationSeconds: every pod tolerates a not-ready or unreachable node for a while (300 s by default)
before the node lifecycle controller evicts it (Kubernetes' plugin of the same name).

Adds `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable` NoExecute tolerations with
kube-apiserver's --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds to a pod
that does not tolerate them already (a toleration of the key, or of every key, with effect NoExecute or any).
Pods proper only, on create and update, not their subresources.
"""

from __future__ import annotations

from collections.abc import Iterable

from pybernetes.api.core.v1 import core_pb2 as core

from .attributes import Attributes, Plugin

NAME = "DefaultTolerationSeconds"
DEFAULT_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def tolerates(tolerations: Iterable[core.Toleration], key: str) -> bool:
    """An existing NoExecute (or any-effect) toleration of `key` (or of every key)."""
    return any((t.key == key or not t.key) and t.effect in ("NoExecute", "") for t in tolerations)


def add_default_tolerations(pod: core.Pod, not_ready_seconds: int = DEFAULT_SECONDS,
                            unreachable_seconds: int = DEFAULT_SECONDS) -> None:
    spec = pod.spec
    for key, seconds in ((NOT_READY_TAINT, not_ready_seconds), (UNREACHABLE_TAINT, unreachable_seconds)):
        if not tolerates(spec.tolerations, key):
            spec.tolerations.add(key=key, operator="Exists", effect="NoExecute", toleration_seconds=seconds)


class DefaultTolerationSeconds(Plugin):
    name = NAME
    mutating = True

    def __init__(self, not_ready_seconds: int = DEFAULT_SECONDS, unreachable_seconds: int = DEFAULT_SECONDS) -> None:
        self.not_ready_seconds = not_ready_seconds
        self.unreachable_seconds = unreachable_seconds

    async def admit(self, a: Attributes) -> None:
        if a.subresource or not isinstance(a.obj, core.Pod):
            return
        add_default_tolerations(a.obj, self.not_ready_seconds, self.unreachable_seconds)
