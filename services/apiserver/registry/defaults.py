"""Server-side defaulting, the entry point: Kubernetes' SetDefaults_* (core/v1, apps/v1) and DefaultTolerationSeconds.

`apply_defaults(obj)` mutates a decoded object in place before validation, on create and on update,
exactly as the Kubernetes apiserver defaults every object it decodes. Each kind's defaults are its strategy's
(`default`, in the kind's module); pod templates (Deployment, ReplicaSet, ReplicationController) get the
PodSpec/container defaults (podspec.default_template) but not the Pod-only ones (requests from limits,
enableServiceLinks, admission tolerations), as in Kubernetes.
"""

from __future__ import annotations

from google.protobuf.message import Message

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.core.pod import DEFAULT_TOLERATION_SECONDS, add_default_tolerations
from services.apiserver.registry.strategies import strategy_for


def apply_defaults(obj: Message, *, not_ready_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS,
                   unreachable_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
    """Fill Kubernetes' defaults into `obj` (any registered kind); unknown kinds are left alone.

    The toleration seconds are kube-apiserver's --default-not-ready-toleration-seconds and
    --default-unreachable-toleration-seconds (the DefaultTolerationSeconds admission plugin)."""
    strategy = strategy_for(obj)
    if strategy is not None and strategy.default is not None:
        strategy.default(obj)
    if isinstance(obj, core.Pod):
        add_default_tolerations(obj, not_ready_toleration_seconds, unreachable_toleration_seconds)
