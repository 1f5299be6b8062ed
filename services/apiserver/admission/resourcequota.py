"""ResourceQuota: a create that would take a namespace over one of its ResourceQuotas is refused, and what it
takes is charged to the quota's status.used at once (Kubernetes' plugin of the same name).

Each quota whose scopes select the object is checked against its status (hard and used, which the quota
controller in services/controllers keeps): `exceeded quota: NAME, requested: pods=1, used: pods=2, limited:
pods=2`; a pod that names no cpu/memory request while a quota limits them is refused as `failed quota: NAME:
must specify ...`. When every quota allows it, the new usage is written to each quota's status with optimistic
concurrency (a concurrent create re-reads from etcd and re-checks), so two creates cannot both take the last
unit; the controller's recount then corrects anything charged for a write that failed later.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from pybernetes import errors
from pybernetes.api import kinds, quota
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

from ..storage.store import Store, Stored
from . import lookup
from .attributes import CREATE, Attributes, Plugin, forbidden

log = logging.getLogger("pybernetes.apiserver.admission")

NAME = "ResourceQuota"
RETRIES = 5


def _restricted(hard: set[str], usage: quota.Usage, is_pod: bool) -> set[str]:
    """The quota's resources this object's kind is accounted in (the evaluator's MatchingResources)."""
    out = {r for r in hard if r in usage}
    if is_pod:
        out |= {r for r in hard if r in quota.CONSTRAINED or r.startswith(("requests.", "limits."))
                or r in ("pods", "count/pods")}
    return out


class ResourceQuota(Plugin):
    name = NAME
    validating = True

    def __init__(self, store: Store) -> None:
        self.store = store
        self.info = kinds.for_class(core.ResourceQuota)

    async def validate(self, a: Attributes) -> None:
        if a.operation != CREATE or a.subresource or not a.namespace or a.obj is None:
            return
        usage: quota.Usage | None = None
        for attempt in range(RETRIES):
            # The watch cache first (it has this apiserver's own charges); after a conflict, etcd itself.
            read = lookup.list_fresh if attempt == 0 else lookup.list_live
            quotas = await read(self.store, core.ResourceQuota, a.namespace)
            if not quotas:
                return  # most namespaces have none: no usage to compute
            if usage is None:
                usage = quota.usage(a.resource, a.obj)
            charges = self._check(a, usage, quotas)
            if a.dry_run or not charges:
                return
            try:
                for stored in charges:
                    await self.store.update(self.info, stored.obj, stored.rv)
                return
            except errors.Conflict:
                continue  # another write moved a quota: re-read and check again
        raise errors.Conflict(f'{a.resource.group_resource} "{a.name}": too many concurrent quota updates')

    def _check(self, a: Attributes, usage: quota.Usage, quotas: list[Stored]) -> list[Stored]:
        """The quotas to write with the charge added; raises Forbidden when one would be exceeded."""
        is_pod = isinstance(a.obj, core.Pod)
        charges = []
        for stored in quotas:
            q = stored.obj
            assert isinstance(q, core.ResourceQuota)  # the store decodes with the kind's class
            if a.obj is None or not quota.matches_scopes(q, a.obj):
                continue
            hard = quota.parse_list(q.status.hard)
            restricted = _restricted(set(hard), usage, is_pod)
            if not restricted:
                continue
            if isinstance(a.obj, core.Pod):
                missing = quota.missing_requests(a.obj, restricted)
                if missing:
                    raise forbidden(a, f"failed quota: {q.metadata.name}: must specify {missing}")
            used = quota.parse_list(q.status.used)
            unknown = sorted(r for r in restricted if r not in used)
            if unknown:
                raise forbidden(a, f"status unknown for quota: {q.metadata.name}, resources: {','.join(unknown)}")
            requested = {r: v for r, v in usage.items() if r in restricted}
            exceeded = sorted(r for r, v in requested.items() if used.get(r, Decimal(0)) + v > hard[r])
            if exceeded:
                raise forbidden(a, f"exceeded quota: {q.metadata.name}, "
                                   f"requested: {quota.pretty({r: requested[r] for r in exceeded})}, "
                                   f"used: {quota.pretty({r: used[r] for r in exceeded})}, "
                                   f"limited: {quota.pretty({r: hard[r] for r in exceeded})}")
            if not any(requested.values()):
                continue
            for r, v in requested.items():
                q.status.used[r].CopyFrom(meta.Quantity(string=quota.format_quantity(r, used.get(r, Decimal(0)) + v)))
            charges.append(stored)
        return charges
