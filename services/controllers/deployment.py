"""Deployment controller (Kubernetes pkg/controller/deployment): ReplicaSets per template, rollouts.

Each distinct pod template gets one ReplicaSet named `<deployment>-<hash>` (pod-template-hash label from
deployment_util.compute_hash), so a restart or a lagging cache can never create a second one: the create
answers AlreadyExists and the existing one is reused. RollingUpdate moves replicas from old to new
ReplicaSets within maxSurge/maxUnavailable; Recreate scales old ones to zero, waits for their pods to
go, then scales the new one up. A paused Deployment is only scaled. Resizes during a rollout are spread
proportionally. Revisions live in the deployment.kubernetes.io/revision annotation; a rollback is a
template change back to an old ReplicaSet's template (it is reused and gets a new revision). Status:
observedGeneration, replicas, updated/ready/available/unavailableReplicas, Progressing and Available.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pybernetes import errors
from pybernetes.api import objects, selectors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, owner_of, unwrap
from pybernetes.events import EventRecorder

from . import deployment_util as du
from .controller_utils import (
    FreshObjects,
    RefManager,
    new_controller_ref,
)

log = logging.getLogger("pybernetes.controllers.deployment")

NAME = "deployment"


def _same(a: Any, b: Any) -> bool:
    return bool(a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True))


def _selector(d: apps.Deployment) -> selectors.LabelSelector:
    try:
        return selectors.from_message(d.spec.selector)
    except errors.BadRequest:
        return selectors.NOTHING


class DeploymentController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.factory = factory
        self.recorder = recorder
        self.workers = workers
        self.now = clock
        self.fresh: FreshObjects[apps.Deployment] = FreshObjects()
        self.fresh_rs: FreshObjects[apps.ReplicaSet] = FreshObjects()
        self.informer = factory.informer_for(apps.Deployment)
        self.rs_informer = factory.informer_for(apps.ReplicaSet)
        self.pod_informer = factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        self.rs_lister = self.rs_informer.lister()
        self.pod_lister = self.pod_informer.lister()
        self.controller = Controller(NAME, informers=[self.informer, self.rs_informer, self.pod_informer])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.informer.add_event_handler(self._d_added, self._d_updated, self._d_deleted)
        self.rs_informer.add_event_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_informer.add_event_handler(None, None, self._pod_deleted)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- handlers -------------------------------------------------------------------------------

    def _d_added(self, d: apps.Deployment) -> None:
        self.queue.add(key_of(d))

    def _d_updated(self, old: apps.Deployment, new: apps.Deployment) -> None:
        self.queue.add(key_of(new))

    def _d_deleted(self, obj: apps.Deployment | DeletedFinalStateUnknown[apps.Deployment]) -> None:
        self.queue.add(key_of(obj))

    def _owner_of(self, rs: apps.ReplicaSet) -> apps.Deployment | None:
        return owner_of(rs, "Deployment", self.lister)

    def _matching(self, rs: apps.ReplicaSet) -> list[apps.Deployment]:
        out = []
        for d in self.lister.list(rs.metadata.namespace):
            sel = _selector(d)
            if not sel.empty() and sel.matches(rs.metadata.labels):
                out.append(d)
        return out

    def _rs_added(self, rs: apps.ReplicaSet) -> None:
        d = self._owner_of(rs)
        if d is not None:
            self.queue.add(key_of(d))
        elif controller_ref(rs) is None:
            for d in self._matching(rs):
                self.queue.add(key_of(d))

    def _rs_updated(self, old: apps.ReplicaSet, new: apps.ReplicaSet) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or new_ref.uid != old_ref.uid):
            d = self._owner_of(old)
            if d is not None:
                self.queue.add(key_of(d))
        d = self._owner_of(new)
        if d is not None:
            self.queue.add(key_of(d))
        elif new_ref is None and (dict(old.metadata.labels) != dict(new.metadata.labels) or old_ref is not None):
            for d in self._matching(new):
                self.queue.add(key_of(d))

    def _rs_deleted(self, obj: apps.ReplicaSet | DeletedFinalStateUnknown[apps.ReplicaSet]) -> None:
        d = self._owner_of(unwrap(obj))
        if d is not None:
            self.queue.add(key_of(d))

    def _pod_deleted(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        pod = unwrap(obj)
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.rs_lister.get(pod.metadata.namespace, ref.name)
        if rs is None:
            return
        d = self._owner_of(rs)
        if d is not None and d.spec.strategy.type == du.RECREATE:
            self.queue.add(key_of(d))

    # -- writes ---------------------------------------------------------------------------------

    async def _write(self, d: apps.Deployment, *, meta: bool = False, status: bool = True) -> None:
        """Write d's metadata (update) and/or status (update_status); d follows the stored version."""
        if meta:
            keep = objects.copy(d.status)
            out = await self.client.update(d, field_manager=NAME)
            self.fresh.record(out)
            d.CopyFrom(out)
            d.status.CopyFrom(keep)
        if status:
            out = await self.client.update_status(d, field_manager=NAME)
            self.fresh.record(out)
            d.CopyFrom(out)

    async def _scale_rs(self, rs: apps.ReplicaSet, new_scale: int, d: apps.Deployment, op: str) -> bool:
        size_changed = du.rs_replicas(rs) != new_scale
        desired, max_total = du.replicas(d), du.replicas(d) + du.max_surge(d)
        if not size_changed and not du.replicas_annotations_need_update(rs, desired, max_total):
            return False
        old_scale = du.rs_replicas(rs)
        c = objects.copy(rs)
        c.spec.replicas = new_scale
        du.set_replicas_annotations(c, desired, max_total)
        out = await self.client.update(c, field_manager=NAME)
        self.fresh_rs.record(out)
        rs.CopyFrom(out)
        if size_changed:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {op} replica set {rs.metadata.name} to {new_scale} from {old_scale}")
        return size_changed

    async def _scale_and_record(self, rs: apps.ReplicaSet, new_scale: int, d: apps.Deployment) -> bool:
        if du.rs_replicas(rs) == new_scale:
            return False
        op = "up" if du.rs_replicas(rs) < new_scale else "down"
        return await self._scale_rs(rs, new_scale, d, op)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        current = self.fresh.current(self.lister, key)
        if current is None:
            return
        d = objects.copy(current)
        sel = _selector(d)
        if sel.empty():
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if d.status.observed_generation < d.metadata.generation:
                d.status.observed_generation = d.metadata.generation
                await self._write(d)
            return
        rs_list = await self._replica_sets_for(d, sel)
        if being_deleted(d):
            new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=False)
            await self._sync_status(d, [*old, new_rs], new_rs)
            return
        await self._check_paused_conditions(d)
        if d.spec.paused:
            await self._sync_scale(d, rs_list)
            return
        if await self._is_scaling_event(d, rs_list):
            await self._sync_scale(d, rs_list)
            return
        if d.spec.strategy.type == du.RECREATE:
            await self._rollout_recreate(d, rs_list, sel)
        else:
            await self._rollout_rolling(d, rs_list)

    async def _replica_sets_for(self, d: apps.Deployment, sel: selectors.LabelSelector) -> list[apps.ReplicaSet]:
        cached = [self.fresh_rs.resolve(rs) for rs in self.rs_lister.list(d.metadata.namespace)]
        manager = RefManager(self.client, d, lambda rs: sel.matches(objects.labels(rs)),
                             field_manager=NAME, fresh=self.fresh_rs)
        claimed = await manager.claim(cached)
        return [objects.copy(rs) for rs in claimed]

    async def _check_paused_conditions(self, d: apps.Deployment) -> None:
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(d.status, du.PROGRESSING)
        if cond is not None and cond.reason == du.TIMED_OUT:
            return
        paused_exists = cond is not None and cond.reason == du.PAUSED
        if d.spec.paused and not paused_exists:
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED, "Deployment is paused"))
        elif not d.spec.paused and paused_exists:
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED,
                                                        "Deployment is resumed"))
        else:
            return
        await self._write(d)

    async def _get_all_and_sync_revision(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet], *,
                                         create: bool) -> tuple[apps.ReplicaSet | None, list[apps.ReplicaSet]]:
        existing = du.find_new_rs(d, rs_list)
        old = du.find_old_rss(existing, rs_list)
        new_rs = await self._get_new_rs(d, rs_list, old, existing, create)
        return new_rs, old

    async def _get_new_rs(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet], old: list[apps.ReplicaSet],
                          existing: apps.ReplicaSet | None, create: bool) -> apps.ReplicaSet | None:
        new_revision = du.max_revision(old) + 1
        if existing is not None:
            c = objects.copy(existing)
            annotations_changed = du.set_new_rs_annotations(d, c, new_revision, exists=True)
            if annotations_changed or c.spec.min_ready_seconds != d.spec.min_ready_seconds:
                c.spec.min_ready_seconds = d.spec.min_ready_seconds
                out = await self.client.update(c, field_manager=NAME)
                self.fresh_rs.record(out)
                existing.CopyFrom(out)
            meta_changed = self._set_revision(d, existing.metadata.annotations.get(du.REVISION, ""))
            status_changed = False
            if du.has_progress_deadline(d) and du.get_condition(d.status, du.PROGRESSING) is None:
                du.set_condition(d.status, du.new_condition(du.PROGRESSING, "True", du.FOUND_NEW_RS,
                                                            f'Found new replica set "{existing.metadata.name}"'))
                status_changed = True
            if meta_changed or status_changed:
                await self._write(d, meta=meta_changed, status=status_changed)
            return existing
        if not create:
            return None
        collision = d.status.collision_count if d.status.HasField("collision_count") else None
        h = du.compute_hash(d.spec.template, collision)
        rs = apps.ReplicaSet()
        rs.metadata.name = f"{d.metadata.name}-{h}"
        rs.metadata.namespace = d.metadata.namespace
        rs.metadata.owner_references.append(new_controller_ref(d))
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.metadata.labels[du.POD_TEMPLATE_HASH] = h
        rs.metadata.labels.update(rs.spec.template.metadata.labels)
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.selector.match_labels[du.POD_TEMPLATE_HASH] = h
        rs.spec.min_ready_seconds = d.spec.min_ready_seconds
        rs.spec.replicas = 0
        rs.spec.replicas = du.new_rs_new_replicas(d, [*old, rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, exists=False)
        already = False
        try:
            created = await self.client.create(rs, field_manager=NAME)
            self.fresh_rs.record(created)
        except errors.AlreadyExists:
            found = self.rs_lister.get(rs.metadata.namespace, rs.metadata.name)
            if found is None:
                found = await self.client.get(apps.ReplicaSet, rs.metadata.name, namespace=rs.metadata.namespace)
            ref = controller_ref(found)
            if ref is not None and ref.uid == d.metadata.uid and du.equal_ignore_hash(d.spec.template,
                                                                                     found.spec.template):
                created, already = objects.copy(found), True
            else:
                d.status.collision_count = (collision or 0) + 1
                await self._write(d)
                log.warning("hash collision deployment=%s/%s rs=%s collisionCount=%d", d.metadata.namespace,
                            d.metadata.name, rs.metadata.name, d.status.collision_count)
                raise
        if not already:
            log.info("created replicaset deployment=%s/%s rs=%s replicas=%d revision=%d", d.metadata.namespace,
                     d.metadata.name, created.metadata.name, du.rs_replicas(created), new_revision)
            if du.rs_replicas(created) > 0:
                self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                    f"Scaled up replica set {created.metadata.name} to "
                                    f"{du.rs_replicas(created)} from 0")
        meta_changed = self._set_revision(d, str(new_revision) if not already else
                                          created.metadata.annotations.get(du.REVISION, ""))
        status_changed = False
        if not already and du.has_progress_deadline(d):
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED,
                                                        f'Created new replica set "{created.metadata.name}"'))
            status_changed = True
        if meta_changed or status_changed:
            await self._write(d, meta=meta_changed, status=status_changed)
        rs_list.append(created)
        return created

    @staticmethod
    def _set_revision(d: apps.Deployment, revision: str) -> bool:
        if not revision or d.metadata.annotations.get(du.REVISION) == revision:
            return False
        d.metadata.annotations[du.REVISION] = revision
        return True

    async def _is_scaling_event(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet]) -> bool:
        new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=False)
        for rs in du.filter_active([*old, new_rs]):
            desired = du.annotation_int(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != du.replicas(d):
                return True
        return False

    async def _sync_scale(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet]) -> None:
        """sync(): scaling only (paused deployments and resizes), then status."""
        new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=False)
        await self._scale(d, new_rs, old)
        if d.spec.paused:
            await self._cleanup(d, old)
        await self._sync_status(d, [*old, new_rs], new_rs)

    async def _scale(self, d: apps.Deployment, new_rs: apps.ReplicaSet | None, old: list[apps.ReplicaSet]) -> None:
        latest = du.find_active_or_latest(new_rs, old)
        if latest is not None:
            if du.rs_replicas(latest) != du.replicas(d):
                await self._scale_and_record(latest, du.replicas(d), d)
            return
        if du.is_saturated(d, new_rs):
            for rs in du.filter_active(old):
                await self._scale_and_record(rs, 0, d)
            return
        if du.is_rolling(d):
            ordered, sizes, op = du.proportional_sizes(d, du.filter_active([*old, new_rs]))
            for rs in ordered:
                await self._scale_rs(rs, sizes[rs.metadata.name], d, op)

    async def _sync_status(self, d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                           new_rs: apps.ReplicaSet | None) -> None:
        status = du.calculate_status(all_rss, new_rs, d)
        if _same(status, d.status):
            return
        d.status.CopyFrom(status)
        await self._write(d)

    # -- rolling update -------------------------------------------------------------------------

    async def _rollout_rolling(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet]) -> None:
        new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=True)
        assert new_rs is not None
        all_rss: list[apps.ReplicaSet | None] = [*old, new_rs]
        if await self._reconcile_new(d, all_rss, new_rs):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if await self._reconcile_old(d, all_rss, du.filter_active(old), new_rs):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if du.deployment_complete(d, d.status):
            await self._cleanup(d, old)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _reconcile_new(self, d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                             new_rs: apps.ReplicaSet) -> bool:
        if du.rs_replicas(new_rs) == du.replicas(d):
            return False
        if du.rs_replicas(new_rs) > du.replicas(d):
            return await self._scale_and_record(new_rs, du.replicas(d), d)
        return await self._scale_and_record(new_rs, du.new_rs_new_replicas(d, all_rss, new_rs), d)

    async def _reconcile_old(self, d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                             old: list[apps.ReplicaSet], new_rs: apps.ReplicaSet) -> bool:
        if du.replica_count(old) == 0:
            return False
        max_down = du.max_scaled_down(d, all_rss, new_rs)
        if max_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(d, old, max_down)
        scaled = await self._scale_down_old_rolling(d, [*old, new_rs], old)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, d: apps.Deployment, old: list[apps.ReplicaSet], max_cleanup: int) -> int:
        total = 0
        for rs in du.by_creation(old):
            if total >= max_cleanup:
                break
            n = du.rs_replicas(rs)
            if n == 0 or n == rs.status.available_replicas:
                continue
            down = min(max_cleanup - total, n - rs.status.available_replicas)
            await self._scale_and_record(rs, n - down, d)
            total += down
        return total

    async def _scale_down_old_rolling(self, d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                                      old: list[apps.ReplicaSet]) -> int:
        min_available = du.replicas(d) - du.max_unavailable(d)
        available = du.available_replica_count(all_rss)
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in du.by_creation(old):
            if total >= budget:
                break
            n = du.rs_replicas(rs)
            if n == 0:
                continue
            down = min(n, budget - total)
            await self._scale_and_record(rs, n - down, d)
            total += down
        return total

    # -- recreate -------------------------------------------------------------------------------

    async def _rollout_recreate(self, d: apps.Deployment, rs_list: list[apps.ReplicaSet],
                                sel: selectors.LabelSelector) -> None:
        new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=False)
        all_rss: list[apps.ReplicaSet | None] = [*old, new_rs]
        scaled = False
        for rs in du.filter_active(old):
            if await self._scale_and_record(rs, 0, d):
                scaled = True
        if scaled:
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if self._old_pods_running(d, new_rs, old, sel):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old = await self._get_all_and_sync_revision(d, rs_list, create=True)
            all_rss = [*old, new_rs]
        assert new_rs is not None
        await self._scale_and_record(new_rs, du.replicas(d), d)
        if du.deployment_complete(d, d.status):
            await self._cleanup(d, old)
        await self._sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, d: apps.Deployment, new_rs: apps.ReplicaSet | None, old: list[apps.ReplicaSet],
                          sel: selectors.LabelSelector) -> bool:
        if du.actual_replica_count(old) > 0:
            return True
        old_uids = {rs.metadata.uid for rs in old}
        for pod in self.pod_lister.list(d.metadata.namespace):
            ref = controller_ref(pod)
            if ref is None or ref.uid not in old_uids or not sel.matches(pod.metadata.labels):
                continue
            if new_rs is not None and ref.uid == new_rs.metadata.uid:
                continue
            if pod.status.phase in ("Failed", "Succeeded"):
                continue
            return True
        return False

    # -- status, progress, cleanup --------------------------------------------------------------

    async def _sync_rollout_status(self, d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                                   new_rs: apps.ReplicaSet | None) -> None:
        status = du.calculate_status(all_rss, new_rs, d)
        if not du.has_progress_deadline(d):
            du.remove_condition(status, du.PROGRESSING)
        cur = du.get_condition(d.status, du.PROGRESSING)
        complete = (status.replicas == status.updated_replicas and cur is not None
                    and cur.reason == du.NEW_RS_AVAILABLE)
        if du.has_progress_deadline(d) and not complete:
            subject = (f'ReplicaSet "{new_rs.metadata.name}"' if new_rs is not None
                       else f'Deployment "{d.metadata.name}"')
            if du.deployment_complete(d, status):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE,
                                                          f"{subject} has successfully progressed."))
            elif du.deployment_progressing(d, status):
                cond = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, f"{subject} is progressing.")
                if cur is not None:
                    if cur.status == "True":
                        cond.last_transition_time.CopyFrom(cur.last_transition_time)
                    du.remove_condition(status, du.PROGRESSING)
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status, self.now()):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT,
                                                          f"{subject} has timed out progressing."))
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, du.REPLICA_FAILURE)
        if _same(status, d.status):
            self._requeue_stuck(d, status)
            return
        progressing = du.get_condition(status, du.PROGRESSING)
        timed_out_now = (progressing is not None and progressing.reason == du.TIMED_OUT
                         and (cur is None or cur.reason != du.TIMED_OUT))
        d.status.CopyFrom(status)
        await self._write(d)
        if timed_out_now:
            self.recorder.event(d, "Warning", du.TIMED_OUT,
                                f'Deployment "{d.metadata.name}" has timed out progressing.')

    @staticmethod
    def _replica_failure(all_rss: Sequence[apps.ReplicaSet | None],
                         new_rs: apps.ReplicaSet | None) -> apps.DeploymentCondition | None:
        ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
        for rs in ordered:
            if rs is None:
                continue
            for c in rs.status.conditions:
                if c.type == "ReplicaFailure" and c.status == "True":
                    cond = du.new_condition(du.REPLICA_FAILURE, "True", c.reason, c.message)
                    cond.last_transition_time.CopyFrom(c.last_transition_time)
                    cond.last_update_time.CopyFrom(c.last_transition_time)
                    return cond
        return None

    def _requeue_stuck(self, d: apps.Deployment, status: apps.DeploymentStatus) -> None:
        cond = du.get_condition(status, du.PROGRESSING)
        if not du.has_progress_deadline(d) or cond is None:
            return
        if du.deployment_complete(d, status) or cond.reason == du.TIMED_OUT:
            return
        after = cond.last_update_time.seconds + d.spec.progress_deadline_seconds - self.now()
        self.queue.add_after(key_of(d), max(1.0, after + 0.5))

    async def _cleanup(self, d: apps.Deployment, old: list[apps.ReplicaSet]) -> None:
        if not du.has_revision_history_limit(d):
            return
        cleanable = [rs for rs in old if not being_deleted(rs)]
        diff = len(cleanable) - d.spec.revision_history_limit
        if diff <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (du.revision(r), r.metadata.creation_timestamp.seconds))[:diff]:
            if (rs.status.replicas != 0 or du.rs_replicas(rs) != 0
                    or rs.metadata.generation > rs.status.observed_generation):
                continue
            log.info("deleting old replicaset deployment=%s/%s rs=%s revision=%d", d.metadata.namespace,
                     d.metadata.name, rs.metadata.name, du.revision(rs))
            try:
                await self.client.delete(apps.ReplicaSet, rs.metadata.name, namespace=rs.metadata.namespace,
                                         uid=rs.metadata.uid)
            except (errors.NotFound, errors.Conflict):
                pass
