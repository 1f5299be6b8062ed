"""NodeLifecycleController: node health, taints, and taint-based eviction (Kubernetes' node lifecycle
controller with its NoExecuteTaintManager).

Health. Every `node_monitor_period` each node's health is judged from what this process *observed*:
the last time its Lease in kube-node-lease changed renewTime, or its Ready condition changed
lastHeartbeatTime, measured on the local clock (remote timestamps are never compared with local time).
If neither was renewed for `node_monitor_grace_period`, every node condition (Ready, MemoryPressure,
DiskPressure, PIDPressure) becomes Unknown with reason NodeStatusUnknown, "Kubelet stopped posting node
status." (NodeStatusNeverUpdated when the kubelet never posted a Ready condition).

Taints. NoSchedule taints follow the conditions at once, on each node event and at every health pass:
Ready=False -> node.kubernetes.io/not-ready, Ready=Unknown -> node.kubernetes.io/unreachable, plus
memory-/disk-/pid-pressure and unschedulable. NoExecute taints (not-ready / unreachable) are added through
per-zone rate limiters, as Kubernetes does, once the node has a Ready condition (a node whose kubelet never
posted one gets it, Unknown, when the grace period ends):
  - a zone (topology.kubernetes.io/region + zone labels) is Normal, PartialDisruption when at least 3
    nodes and more than `unhealthy_zone_threshold` of them are not Ready, or FullDisruption when none is
    Ready;
  - Normal and FullDisruption zones are tainted at `node_eviction_rate` nodes per second; a
    PartialDisruption zone at `secondary_node_eviction_rate` if it has more than
    `large_cluster_size_threshold` nodes, else not at all (a small cluster with many failures is more
    likely a network problem than failed nodes);
  - when every zone is in FullDisruption (the control plane is probably the one cut off), no node gets a
    NoExecute taint and existing ones are removed from nodes ("master disruption mode").
A node that is Ready again has its not-ready/unreachable taints removed at once (not rate-limited).
When a node stops being Ready its pods get Ready=False (MarkPodsNotReady) and a NodeNotReady event.

Eviction (the NoExecuteTaintManager). A pod on a node with NoExecute taints is deleted (through the API,
so its ReplicaSet recreates it elsewhere) at once when it does not tolerate every such taint, otherwise
after the smallest tolerationSeconds of the matching tolerations (counted from when this controller first
saw the pod under the taint), never when those tolerations have no tolerationSeconds. The 300 s default
(--default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds) comes from the
apiserver's DefaultTolerationSeconds defaulting on pods, not from here. Event: TaintManagerEviction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import split_key
from pybernetes.api.taints import tolerates
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.clock import Clock, RealClock
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.nodelifecycle")

NODE_LEASE_NAMESPACE = "kube-node-lease"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
}
NO_SCHEDULE_KEYS = {TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE, *CONDITION_TAINTS.values()}
NO_EXECUTE_KEYS = {TAINT_NOT_READY, TAINT_UNREACHABLE}
REQUIRED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
ZONE_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone")
POD_NODE_INDEX = "pb-nodelifecycle-node-name"

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


# -- pure helpers ------------------------------------------------------------------------------


def ready_status(node: core.Node) -> str:
    for c in node.status.conditions:
        if c.type == "Ready":
            return c.status
    return "Unknown"


def _taint_inputs(node: core.Node) -> tuple[object, ...]:
    """What the NoSchedule taints follow: the conditions' statuses, unschedulable, and the taints themselves."""
    return ({c.type: c.status for c in node.status.conditions}, node.spec.unschedulable,
            [(t.key, t.effect) for t in node.spec.taints])


def zone_of(node: core.Node) -> str:
    labels = node.metadata.labels
    return "\x00:".join(labels.get(k, "") for k in ZONE_LABELS)


def min_toleration_seconds(pod: core.Pod, taints: list[core.Taint]) -> tuple[bool, float | None]:
    """(every taint tolerated, seconds until eviction or None for forever) (getMinTolerationTime)."""
    minimum: float | None = None
    for taint in taints:
        matching = [t for t in pod.spec.tolerations if tolerates(t, taint)]
        if not matching:
            return False, 0.0
        for t in matching:
            if t.HasField("toleration_seconds"):
                secs = max(0.0, float(t.toleration_seconds))
                minimum = secs if minimum is None else min(minimum, secs)
    return True, minimum


def zone_state(ready_flags: list[bool], unhealthy_threshold: float) -> str:
    """ComputeZoneState: Normal, PartialDisruption or FullDisruption."""
    not_ready = sum(1 for r in ready_flags if not r)
    ready = len(ready_flags) - not_ready
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / max(1, len(ready_flags)) >= unhealthy_threshold:
        return PARTIAL
    return NORMAL


class TokenBucket:
    """flowcontrol.NewTokenBucketRateLimiter(qps, burst) without blocking: `try_accept()`."""

    def __init__(self, qps: float, burst: int = 1, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self.burst = burst
        self.qps = qps
        self.tokens = float(burst)
        self.last = self.clock.now()

    def set_rate(self, qps: float) -> None:
        if qps == self.qps:
            return
        self._refill()
        self.qps = qps
        if qps <= 0:
            self.tokens = 0.0

    def _refill(self) -> None:
        now = self.clock.now()
        if self.qps > 0:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now

    def try_accept(self) -> bool:
        self._refill()
        if self.qps > 0 and self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _time_now(clock: Clock) -> tuple[int, int]:
    w = clock.wall()
    return int(w), int((w - int(w)) * 1e9)


@dataclass
class NodeHealth:
    probe_timestamp: float
    heartbeat: tuple[int, int] = (0, 0)
    lease_renew: tuple[int, int] | None = None
    last_ready: str = ""


@dataclass
class ZoneQueue:
    limiter: TokenBucket
    nodes: list[str] = field(default_factory=list)
    state: str = NORMAL


# -- the controller ----------------------------------------------------------------------------


class NodeLifecycleController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, node_monitor_period: float = 5.0, node_monitor_grace_period: float = 40.0,
                 node_eviction_rate: float = 0.1, secondary_node_eviction_rate: float = 0.01,
                 unhealthy_zone_threshold: float = 0.55, large_cluster_size_threshold: int = 50,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.workers = workers
        self.monitor_period = node_monitor_period
        self.grace_period = node_monitor_grace_period
        self.eviction_rate = node_eviction_rate
        self.secondary_rate = secondary_node_eviction_rate
        self.unhealthy_threshold = unhealthy_zone_threshold
        self.large_cluster_threshold = large_cluster_size_threshold
        self.clock: Clock = clock or RealClock()
        self.nodes = factory.informer_for(core.Node)
        self.leases = factory.informer_for(coordination.Lease, namespace=NODE_LEASE_NAMESPACE)
        self.pods = factory.informer_for(core.Pod)
        self.node_lister = self.nodes.lister()
        self.lease_lister = self.leases.lister()
        self.pod_lister = self.pods.lister()
        with contextlib.suppress(ValueError):
            self.pods.add_indexer(POD_NODE_INDEX, lambda p: [p.spec.node_name] if p.spec.node_name else [])
        self.health: dict[str, NodeHealth] = {}
        self.zones: dict[str, ZoneQueue] = {}
        self.master_disruption = False
        self.controller = Controller("nodelifecycle", informers=[self.nodes, self.leases, self.pods],
                                     clock=self.clock, on_synced=self._started)
        # health passes, and the rate-limited NoExecute tainting between them
        self.controller.add_periodic("node-monitor", self.monitor_node_health, self.monitor_period)
        taint_period = min(1.0, self.monitor_period)
        self.controller.add_periodic("node-taint-queue", self.process_taint_queues, taint_period,
                                     first_after=taint_period)
        # taint manager: pods to (re)consider, and when each was first seen under a tolerated taint
        self.pod_queue = self.controller.add_queue("noexec_taint_pod", self.sync_pod, workers=workers)
        self.taint_seen: dict[str, float] = {}
        # Kubernetes' nodeUpdateQueue (doNoScheduleTaintingPass): each node event brings its NoSchedule taints in
        # line with its conditions then, not at the next health pass (a node is schedulable once it says Ready)
        self.node_queue = self.controller.add_queue("node_noschedule_taint", self.sync_no_schedule, workers=1)
        self.pods.add_event_handler(self._on_pod, self._on_pod_update, self._on_pod_delete)
        self.nodes.add_event_handler(self._on_node, self._on_node_update, self._on_node_delete)

    def _started(self) -> None:
        log.info("node lifecycle controller started grace=%.0fs period=%.0fs eviction_rate=%s",
                 self.grace_period, self.monitor_period, self.eviction_rate)

    # -- handlers ---------------------------------------------------------------------------

    def _on_pod(self, pod: core.Pod) -> None:
        if pod.spec.node_name:
            self.pod_queue.add(objects.key(pod))

    def _on_pod_update(self, old: core.Pod, new: core.Pod) -> None:
        if new.spec.node_name and (old.spec.node_name != new.spec.node_name
                                   or old.spec.tolerations != new.spec.tolerations
                                   or new.metadata.HasField("deletion_timestamp")):
            self._on_pod(new)

    def _on_pod_delete(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        self.taint_seen.pop(key_of(obj), None)

    def _enqueue_pods_of(self, node_name: str) -> None:
        for pod in self._pods_on(node_name):
            self.pod_queue.add(objects.key(pod))

    def _on_node(self, node: core.Node) -> None:
        self.node_queue.add(node.metadata.name)
        if any(t.effect == "NoExecute" for t in node.spec.taints):
            self._enqueue_pods_of(node.metadata.name)

    def _on_node_update(self, old: core.Node, new: core.Node) -> None:
        if _taint_inputs(old) != _taint_inputs(new):  # not for heartbeats, images, allocatable...
            self.node_queue.add(new.metadata.name)
        old_t = [t for t in old.spec.taints if t.effect == "NoExecute"]
        new_t = [t for t in new.spec.taints if t.effect == "NoExecute"]
        if old_t != new_t:
            self._enqueue_pods_of(new.metadata.name)

    def _on_node_delete(self, obj: core.Node | DeletedFinalStateUnknown[core.Node]) -> None:
        name = split_key(key_of(obj))[1]
        self.health.pop(name, None)
        for z in self.zones.values():
            if name in z.nodes:
                z.nodes.remove(name)

    def _pods_on(self, node_name: str) -> list[core.Pod]:
        try:
            return self.pod_lister.by_index(POD_NODE_INDEX, node_name)
        except KeyError:
            return self.pod_lister.list(None, lambda p: p.spec.node_name == node_name)

    # -- node health ------------------------------------------------------------------------

    async def try_update_node_health(self, node: core.Node) -> tuple[str, str]:
        """(Ready status before, Ready status after) this pass; marks the node Unknown past the grace."""
        name = node.metadata.name
        now = self.clock.now()
        observed = ready_status(node)
        ready = next((c for c in node.status.conditions if c.type == "Ready"), None)
        heartbeat = (ready.last_heartbeat_time.seconds, ready.last_heartbeat_time.nanos) if ready else (0, 0)
        lease = self.lease_lister.get(NODE_LEASE_NAMESPACE, name)
        renew = (lease.spec.renew_time.seconds, lease.spec.renew_time.nanos) if lease is not None else None
        h = self.health.get(name)
        if h is None:
            h = self.health[name] = NodeHealth(probe_timestamp=now, heartbeat=heartbeat, lease_renew=renew)
        else:
            if heartbeat != h.heartbeat:
                h.heartbeat, h.probe_timestamp = heartbeat, now
            if renew is not None and renew != h.lease_renew:
                h.lease_renew, h.probe_timestamp = renew, now
        if now <= h.probe_timestamp + self.grace_period:
            return observed, observed
        if ready is not None and all(
                c.status == "Unknown" for c in node.status.conditions if c.type in REQUIRED_CONDITIONS) \
                and all(any(c.type == t for c in node.status.conditions) for t in REQUIRED_CONDITIONS):
            return observed, "Unknown"  # already marked
        log.info("node heartbeat expired, marking Unknown node=%s grace=%.0fs", name, self.grace_period)
        new = core.Node()
        new.CopyFrom(node)
        secs, nanos = _time_now(self.clock)
        for ctype in REQUIRED_CONDITIONS:
            cond = next((c for c in new.status.conditions if c.type == ctype), None)
            if cond is None:
                cond = new.status.conditions.add(type=ctype)
                cond.reason, cond.message = "NodeStatusNeverUpdated", "Kubelet never posted node status."
                cond.last_heartbeat_time.seconds = node.metadata.creation_timestamp.seconds
                cond.status = "Unknown"
                cond.last_transition_time.seconds, cond.last_transition_time.nanos = secs, nanos
            elif cond.status != "Unknown" or cond.reason != "NodeStatusUnknown":
                if cond.status != "Unknown":
                    cond.last_transition_time.seconds, cond.last_transition_time.nanos = secs, nanos
                cond.status = "Unknown"
                cond.reason, cond.message = "NodeStatusUnknown", "Kubelet stopped posting node status."
        await self.client.update_status(new)
        return observed, "Unknown"

    # -- taints -----------------------------------------------------------------------------

    def _desired_no_schedule(self, node: core.Node, ready: str) -> set[str]:
        want: set[str] = set()
        if ready == "False":
            want.add(TAINT_NOT_READY)
        elif ready == "Unknown":
            want.add(TAINT_UNREACHABLE)
        for c in node.status.conditions:
            if c.type in CONDITION_TAINTS and c.status == "True":
                want.add(CONDITION_TAINTS[c.type])
        if node.spec.unschedulable:
            want.add(TAINT_UNSCHEDULABLE)
        return want

    async def _set_taints(self, name: str, no_schedule: set[str] | None, no_execute: set[str] | None) -> bool:
        """Make the controller-managed NoSchedule/NoExecute taints exactly the given keys (None: leave)."""
        node = await self.client.get(core.Node, name)
        current = list(node.spec.taints)
        keep: list[core.Taint] = []
        for t in current:
            if no_schedule is not None and t.effect == "NoSchedule" and t.key in NO_SCHEDULE_KEYS \
                    and t.key not in no_schedule:
                continue
            if no_execute is not None and t.effect == "NoExecute" and t.key in NO_EXECUTE_KEYS \
                    and t.key not in no_execute:
                continue
            keep.append(t)
        secs, _ = _time_now(self.clock)
        for effect, keys in (("NoSchedule", no_schedule), ("NoExecute", no_execute)):
            for key in sorted(keys or ()):
                if not any(t.key == key and t.effect == effect for t in keep):
                    t = core.Taint(key=key, effect=effect)
                    t.time_added.seconds = secs
                    keep.append(t)
        if [t.SerializeToString(deterministic=True) for t in keep] == \
                [t.SerializeToString(deterministic=True) for t in current]:
            return False
        new = core.Node()
        new.CopyFrom(node)
        del new.spec.taints[:]
        new.spec.taints.extend(keep)
        await self.client.update(new)
        log.info("node taints updated node=%s taints=%s", name,
                 ",".join(f"{t.key}:{t.effect}" for t in keep) or "-")
        return True

    async def sync_no_schedule(self, name: str) -> None:
        """The node's NoSchedule taints from its conditions as last seen; an API call only when they differ."""
        node = self.node_lister.get("", name)
        if node is None:
            return
        want = self._desired_no_schedule(node, ready_status(node))
        if self._taints_differ(node, want, None):
            await self._set_taints(name, want, None)

    @staticmethod
    def _taint_keys(node: core.Node, effect: str, keys: set[str]) -> set[str]:
        return {t.key for t in node.spec.taints if t.effect == effect and t.key in keys}

    @classmethod
    def _taints_differ(cls, node: core.Node, no_schedule: set[str] | None, no_execute: set[str] | None) -> bool:
        """Whether the node, as the informer has it, lacks a wanted controller-managed taint or has one too many
        (None: that effect is left as it is); _set_taints reads the node again before it writes."""
        return any(want is not None and cls._taint_keys(node, effect, keys) != want
                   for effect, keys, want in (("NoSchedule", NO_SCHEDULE_KEYS, no_schedule),
                                              ("NoExecute", NO_EXECUTE_KEYS, no_execute)))

    def _zone(self, zone: str) -> ZoneQueue:
        z = self.zones.get(zone)
        if z is None:
            z = self.zones[zone] = ZoneQueue(TokenBucket(self.eviction_rate, 1, clock=self.clock))
        return z

    # -- pods -------------------------------------------------------------------------------

    async def mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self._pods_on(node_name):
            if pod.metadata.HasField("deletion_timestamp"):
                continue
            cond = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if cond is None or cond.status == "False":
                continue
            new = core.Pod()
            new.CopyFrom(pod)
            for c in new.status.conditions:
                if c.type == "Ready":
                    c.status = "False"
                    c.last_transition_time.seconds, c.last_transition_time.nanos = _time_now(self.clock)
            try:
                await self.client.update_status(new)
                log.info("marked pod not ready pod=%s/%s node=%s", pod.metadata.namespace, pod.metadata.name,
                         node_name)
            except (errors.NotFound, errors.Conflict) as e:
                log.debug("mark pod not ready skipped pod=%s/%s error=%s", pod.metadata.namespace,
                          pod.metadata.name, e)

    # -- the monitor pass -------------------------------------------------------------------

    async def monitor_node_health(self) -> None:
        nodes = self.node_lister.list()
        current: dict[str, str] = {}
        for node in nodes:
            name = node.metadata.name
            try:
                observed, now_ready = await self.try_update_node_health(node)
            except errors.ApiError as e:
                log.warning("node health update failed node=%s error=%s", name, e)
                continue
            current[name] = now_ready
            h = self.health[name]
            if now_ready != "True" and (h.last_ready == "True" or (not h.last_ready and observed == "True")):
                self.recorder.event(node, "Normal", "NodeNotReady",
                                    f"Node {name} status is now: NodeNotReady")
            h.last_ready = now_ready
            if now_ready != "True":
                try:
                    await self.mark_pods_not_ready(name)
                except errors.ApiError as e:
                    log.warning("mark pods not ready failed node=%s error=%s", name, e)

        # zone states and eviction rates
        by_zone: dict[str, list[bool]] = {}
        for node in nodes:
            by_zone.setdefault(zone_of(node), []).append(current.get(node.metadata.name) == "True")
        states = {z: zone_state(flags, self.unhealthy_threshold) for z, flags in by_zone.items()}
        self.master_disruption = bool(states) and all(s == FULL for s in states.values())
        for zname, state in states.items():
            z = self._zone(zname)
            if state != z.state:
                log.info("zone state changed zone=%r from=%s to=%s", zname, z.state, state)
                z.state = state
            z.limiter.set_rate(self.rate_for(state, len(by_zone[zname])))

        for node in nodes:
            name = node.metadata.name
            if name not in current:
                continue
            ready = current[name]
            z = self._zone(zone_of(node))
            try:
                no_exec = self._taint_keys(node, "NoExecute", NO_EXECUTE_KEYS)
                want_exec: set[str] | None = None
                if not any(c.type == "Ready" for c in node.status.conditions):
                    pass  # never posted (yet): Kubernetes' processTaintBaseEviction needs a Ready condition
                elif ready == "True" or self.master_disruption:
                    want_exec = set()
                    if name in z.nodes:
                        z.nodes.remove(name)
                else:
                    key = TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE
                    if no_exec and key not in no_exec:
                        want_exec = {key}  # swap not-ready <-> unreachable at once
                    elif not no_exec and name not in z.nodes:
                        z.nodes.append(name)
                want_schedule = self._desired_no_schedule(node, ready)
                if self._taints_differ(node, want_schedule, want_exec):  # the API only for a change
                    await self._set_taints(name, want_schedule, want_exec)
            except errors.ApiError as e:
                log.warning("node taint update failed node=%s error=%s", name, e)
        await self.process_taint_queues()

    def rate_for(self, state: str, zone_size: int) -> float:
        if state == PARTIAL:
            return self.secondary_rate if zone_size > self.large_cluster_threshold else 0.0
        return self.eviction_rate

    async def process_taint_queues(self) -> None:
        """Add NoExecute taints to queued not-ready nodes, as fast as each zone's limiter allows."""
        for z in self.zones.values():
            while z.nodes:
                name = z.nodes[0]
                node = self.node_lister.get("", name)
                ready = self.health[name].last_ready if name in self.health else ""
                if node is None or ready in ("True", ""):
                    z.nodes.pop(0)
                    continue
                if not z.limiter.try_accept():
                    break
                z.nodes.pop(0)
                key = TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE
                try:
                    await self._set_taints(name, None, {key})
                except errors.ApiError as e:
                    log.warning("adding NoExecute taint failed node=%s error=%s", name, e)
                    z.nodes.append(name)

    # -- the taint manager ------------------------------------------------------------------

    async def sync_pod(self, key: str) -> None:
        namespace, name = split_key(key)
        pod = self.pod_lister.get(namespace, name)
        if pod is None or not pod.spec.node_name or pod.metadata.HasField("deletion_timestamp"):
            self.taint_seen.pop(key, None)
            return
        node = self.node_lister.get("", pod.spec.node_name)
        taints = [t for t in node.spec.taints if t.effect == "NoExecute"] if node is not None else []
        if not taints:
            self.taint_seen.pop(key, None)
            return
        all_tolerated, seconds = min_toleration_seconds(pod, taints)
        if all_tolerated and seconds is None:
            self.taint_seen.pop(key, None)
            return
        now = self.clock.now()
        if all_tolerated:
            assert seconds is not None
            start = self.taint_seen.setdefault(key, now)
            remaining = start + seconds - now
            if remaining > 0:
                self.pod_queue.add_after(key, remaining)
                return
        await self.evict(pod)

    async def evict(self, pod: core.Pod) -> None:
        key = objects.key(pod)
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            await self.client.delete(core.Pod, pod.metadata.name, namespace=pod.metadata.namespace,
                                     uid=pod.metadata.uid or None)
            log.info("evicted pod pod=%s node=%s", key, pod.spec.node_name)
        except errors.NotFound:
            pass
        except errors.Conflict:
            pass  # a different pod by that name now
        self.taint_seen.pop(key, None)

    # -- run --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
