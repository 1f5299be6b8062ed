"""Server-side defaulting, the entry point: Kubernetes' SetDefaults_* (core/v1, apps/v1).

`apply_defaults(obj)` mutates a decoded object in place before validation, on create and on update,
exactly as the Kubernetes apiserver defaults every object it decodes. Each kind's defaults are its strategy's
(`default`, in the kind's module); pod templates (Deployment, ReplicaSet, ReplicationController) get the
PodSpec/container defaults (podspec.default_template) but not the Pod-only ones (requests from limits,
enableServiceLinks), as in Kubernetes. What admission plugins add (DefaultTolerationSeconds' tolerations,
the ServiceAccount's name) is services/apiserver/admission's.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.apiserver.registry.strategies import strategy_for


def apply_defaults(obj: Message) -> None:
    """Fill Kubernetes' defaults into `obj` (any registered kind); unknown kinds are left alone."""
    strategy = strategy_for(obj)
    if strategy is not None and strategy.default is not None:
        strategy.default(obj)
