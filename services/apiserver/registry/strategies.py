"""The table of every kind's strategy, looked up by message type (see kindstrategy.KindStrategy).

Each kind module owns its strategy (`STRATEGY`); this module only collects them, so that a kind is added by
writing its module and listing it here.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from google.protobuf.message import Message

from services.apiserver.registry.apps import daemonset, deployment, replicaset, statefulset
from services.apiserver.registry.batch import cronjob, job
from services.apiserver.registry.coordination import lease
from services.apiserver.registry.core import (
    configmap,
    endpoints,
    event,
    limitrange,
    namespace,
    node,
    pod,
    replicationcontroller,
    resourcequota,
    secret,
    service,
    serviceaccount,
)
from services.apiserver.registry.discovery import endpointslice
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.rbac import clusterrole, clusterrolebinding, role, rolebinding

_STRATEGIES: tuple[KindStrategy[Any], ...] = (
    pod.STRATEGY, pod.BINDING_STRATEGY, service.STRATEGY, endpoints.STRATEGY, replicationcontroller.STRATEGY,
    namespace.STRATEGY, node.STRATEGY, configmap.STRATEGY, secret.STRATEGY, event.STRATEGY,
    serviceaccount.STRATEGY, limitrange.STRATEGY, resourcequota.STRATEGY, deployment.STRATEGY, replicaset.STRATEGY,
    lease.STRATEGY,
    job.STRATEGY, cronjob.STRATEGY,
    daemonset.STRATEGY, statefulset.STRATEGY, endpointslice.STRATEGY,
    role.STRATEGY, clusterrole.STRATEGY, rolebinding.STRATEGY, clusterrolebinding.STRATEGY,
)
_BY_KIND: dict[type[Message], KindStrategy[Any]] = {s.kind: s for s in _STRATEGIES}

MsgT = TypeVar("MsgT", bound=Message)


def strategy_for(obj: MsgT) -> KindStrategy[MsgT] | None:
    """The strategy of obj's kind (None for a kind with no rules of its own)."""
    # The table maps each kind to the strategy built for that very kind, so the cast only restores that.
    return cast("KindStrategy[MsgT] | None", _BY_KIND.get(type(obj)))


def strategy_for_class(cls: type[MsgT]) -> KindStrategy[MsgT] | None:
    return cast("KindStrategy[MsgT] | None", _BY_KIND.get(cls))
