"""ResourceQuotaController (kube-controller-manager's resourcequota controller): keeps each ResourceQuota's
status, `hard` as its spec says and `used` as counted from the objects in its namespace.

A quota is synced when it is added or its spec changes (not on status writes: admission charges each create
to status.used itself, and a recount from a pod cache that has not seen the new pod yet would undo the charge),
when a pod in its namespace gives resources back (deleted, or finished: Kubernetes' replenishment), and every
RESYNC_PERIOD for everything else (count/<resource>, services, configmaps, ... are listed through the API when
a quota names them). The accounting is pybernetes.api.quota's, the same the ResourceQuota admission plugin
charges with, so admission's running charges and this recount agree.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, quota
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.objects import split_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, unwrap
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.resourcequota")

NAME = "resourcequota"
RESYNC_PERIOD = 30.0  # seconds; Kubernetes' --resource-quota-sync-period is 5m, with informers for every kind
POD_RESOURCES = ("pods", "count/pods", "cpu", "memory", "ephemeral-storage")


def _kinds_for(resource: str) -> ResourceInfo | None:
    """The kind a quota resource name counts (None: pods, or a name nothing here counts)."""
    if resource in POD_RESOURCES or resource.startswith(("requests.", "limits.")):
        return None
    if resource in ("services.nodeports", "services.loadbalancers"):
        return kinds.for_plural("services")
    for info in kinds.RESOURCES:
        if info.namespaced and info.plural != "pods" and resource in (quota.count_name(info),
                                                                      quota.LEGACY_COUNTS.get(info.plural)):
            return info
    return None


class ResourceQuotaController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, resync_period: float = RESYNC_PERIOD) -> None:
        self.client = client
        self.recorder = recorder
        self.quotas = factory.informer_for(core.ResourceQuota)
        self.pods = factory.informer_for(core.Pod)
        self.quota_lister = self.quotas.lister()
        self.pod_lister = self.pods.lister()
        self.controller = Controller(NAME, informers=[self.quotas, self.pods])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.controller.add_periodic("resourcequota-resync", self._resync, resync_period, first_after=resync_period)
        self.quotas.add_event_handler(lambda q: self.queue.add(key_of(q)), self._quota_updated, None)
        self.pods.add_event_handler(None, self._pod_updated, self._pod_deleted)

    def _quota_updated(self, old: core.ResourceQuota, new: core.ResourceQuota) -> None:
        if dict(old.spec.hard) != dict(new.spec.hard) or list(old.spec.scopes) != list(new.spec.scopes):
            self.queue.add(key_of(new))

    def _pod_updated(self, old: core.Pod, new: core.Pod) -> None:
        if quota.terminal(new) and not quota.terminal(old):
            self._enqueue_namespace(new.metadata.namespace)

    def _pod_deleted(self, pod: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        self._enqueue_namespace(unwrap(pod).metadata.namespace)

    def _enqueue_namespace(self, namespace: str) -> None:
        for q in self.quota_lister.list(namespace=namespace):
            self.queue.add(key_of(q))

    async def _resync(self) -> None:
        for q in self.quota_lister.list():
            self.queue.add(key_of(q))

    async def used(self, q: core.ResourceQuota) -> quota.Usage:
        """What the objects in q's namespace use of each resource q limits."""
        ns, hard = q.metadata.namespace, list(q.spec.hard)
        total: quota.Usage = {r: Decimal(0) for r in hard}
        others: dict[str, ResourceInfo] = {}
        for r in hard:
            info = _kinds_for(r)
            if info is not None:
                others[info.plural] = info
        objects: list[tuple[ResourceInfo, Message]] = [(kinds.for_class(core.Pod), p)
                                                       for p in self.pod_lister.list(namespace=ns)]
        for info in others.values():
            objects += [(info, o) for o in (await self.client.list_all(info.cls, namespace=ns)).items]
        for info, obj in objects:
            if quota.matches_scopes(q, obj):
                quota.add(total, quota.usage(info, obj), hard)
        return total

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        q = self.quota_lister.get(namespace, name)
        if q is None:
            return
        used = await self.used(q)
        want = core.ResourceQuotaStatus()
        for r, h in q.spec.hard.items():
            want.hard[r].CopyFrom(h)
        for r, v in used.items():
            want.used[r].string = quota.format_quantity(r, v)
        if want == q.status:
            return
        out = core.ResourceQuota()
        out.CopyFrom(q)  # never the cached object itself
        out.status.CopyFrom(want)
        try:
            await self.client.update_status(out)
        except errors.NotFound:
            return
        log.info("quota status updated resourcequota=%s used=%s", key, quota.pretty(used))

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
