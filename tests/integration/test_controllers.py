"""ReplicaSet, ReplicationController, Deployment, garbage-collector and namespace controllers against the
real apiserver (etcd + in-process pb-apiserver), with a hollow kubelet standing in for nodes.

HollowKubelet: creates a few Node objects, binds unscheduled pods round-robin (client.bind), marks bound
pods Running + Ready=True through update_status and finishes terminating pods (delete, grace 0). No
containers run anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.times import micro_now
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from pybernetes.workqueue import RateLimitingQueue, run_workers
from services.controllers import deployment_util as du
from services.controllers.controller_utils import is_pod_ready
from services.controllers.deployment import DeploymentController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.namespace import NamespaceController
from services.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from tests.helpers import eventually

pytestmark = pytest.mark.integration

NEVER_READY = "hollow.pybernetes.io/never-ready"


# -- hollow kubelet ----------------------------------------------------------------------------------


class HollowKubelet:
    def __init__(self, client: Client, nodes: int = 3, *, ready_delay: float = 0.0, workers: int = 16,
                 prefix: str = "hollow", bind: bool = True) -> None:
        self.client = client
        self.node_names = [f"{prefix}-{i}" for i in range(nodes)]
        self.ready_delay = ready_delay
        self.workers = workers
        self.bind = bind
        self._rr = itertools.cycle(self.node_names)
        self.factory = InformerFactory(client)
        self.informer = self.factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="hollow-kubelet")
        self.informer.add_event_handler(self._enqueue, lambda _o, n: self._enqueue(n), None)
        self._task: asyncio.Task[None] | None = None

    def _enqueue(self, pod: core.Pod) -> None:
        self.queue.add(f"{pod.metadata.namespace}/{pod.metadata.name}")

    async def create_nodes(self) -> None:
        async def one(name: str) -> None:
            node = core.Node()
            node.metadata.name = name
            node.metadata.labels["kubernetes.io/hostname"] = name
            node.status.capacity["pods"].string = "110"
            node.status.capacity["cpu"].string = "8"
            node.status.capacity["memory"].string = "32Gi"
            try:
                created = await self.client.create(node)
            except errors.AlreadyExists:
                created = await self.client.get(core.Node, name)
            c = created.status.conditions.add(type="Ready", status="True", reason="KubeletReady",
                                              message="hollow kubelet is posting ready status")
            c.last_heartbeat_time.CopyFrom(micro_now())
            c.last_transition_time.CopyFrom(micro_now())
            await self.client.update_status(created)

        sem = asyncio.Semaphore(32)

        async def guarded(name: str) -> None:
            async with sem:
                await one(name)

        await asyncio.gather(*(guarded(n) for n in self.node_names))

    async def start(self) -> None:
        await self.create_nodes()
        self.factory.start()
        await self.factory.wait_for_cache_sync()
        self._task = asyncio.create_task(run_workers(self.queue, self._sync, self.workers, name="hollow-kubelet"))

    async def stop(self) -> None:
        self.queue.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.factory.shutdown()

    async def _sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        pod = self.lister.get(namespace, name)
        if pod is None:
            return
        if pod.metadata.HasField("deletion_timestamp"):
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.delete(core.Pod, name, namespace=namespace, grace_period_seconds=0,
                                         uid=pod.metadata.uid)
            return
        if not pod.spec.node_name:
            if self.bind:
                with contextlib.suppress(errors.NotFound, errors.Conflict):
                    await self.client.bind(namespace, name, next(self._rr), uid=pod.metadata.uid)
            return
        if pod.metadata.labels.get(NEVER_READY) or (pod.status.phase == "Running" and is_pod_ready(pod)):
            return
        if self.ready_delay:
            await asyncio.sleep(self.ready_delay)
        new = objects.copy(pod)
        t = micro_now()
        st = new.status
        st.phase = "Running"
        st.host_ip = "10.0.0.1"
        st.pod_ip = f"10.244.{hash(name) % 250}.{hash(name[::-1]) % 250 + 1}"
        st.start_time.CopyFrom(t)
        del st.container_statuses[:]
        for c in pod.spec.containers:
            cs = st.container_statuses.add(name=c.name, image=c.image, ready=True, started=True,
                                           container_id=f"hollow://{name}/{c.name}")
            cs.state.running.started_at.CopyFrom(t)
        for typ in ("Initialized", "ContainersReady", "Ready", "PodScheduled"):
            found = False
            for cond in st.conditions:
                if cond.type == typ:
                    found = True
                    if cond.status != "True":
                        cond.status = "True"
                        cond.last_transition_time.CopyFrom(t)
            if not found:
                cond = st.conditions.add(type=typ, status="True")
                cond.last_transition_time.CopyFrom(t)
        with contextlib.suppress(errors.NotFound):
            await self.client.update_status(new)


# -- controller manager in-process ---------------------------------------------------------------


class Controllers:
    """The five controllers on one informer factory, stoppable and restartable (a fresh process)."""

    def __init__(self, client: Client, *, wrap: Callable[[Client], Any] | None = None) -> None:
        self.client = client
        self.wrap = wrap
        self.tasks: list[asyncio.Task[None]] = []
        self.stop_event = asyncio.Event()
        self.ctrls: list[Any] = []

    async def start(self) -> None:
        client: Any = self.wrap(self.client) if self.wrap else self.client
        self.factory = InformerFactory(client, resync_period=30.0, detect_mutations=True)
        self.recorder = EventRecorder(client, "controller-manager", "test")
        self.recorder.start()
        self.stop_event = asyncio.Event()
        self.rs = ReplicaSetController(client, self.factory, self.recorder, workers=5)
        self.rc = ReplicationControllerController(client, self.factory, self.recorder, workers=2)
        self.deploy = DeploymentController(client, self.factory, self.recorder, workers=5)
        self.gc = GarbageCollector(client, self.factory, self.recorder, workers=10)
        self.ns = NamespaceController(client, self.factory, self.recorder, workers=2, requeue_delay=0.3)
        self.ctrls = [self.rs, self.rc, self.deploy, self.gc, self.ns]
        self.tasks = [asyncio.create_task(c.run(self.stop_event)) for c in self.ctrls]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 20)
        for informer in self.factory.informers():
            informer.store.check_mutations()  # no controller ever edits a cached object in place
        await self.factory.shutdown()
        await self.recorder.stop()


class Cluster:
    def __init__(self, client: Client, controllers_client: Client, kubelet: HollowKubelet,
                 controllers: Controllers) -> None:
        self.client = client
        self.controllers_client = controllers_client
        self.kubelet = kubelet
        self.controllers = controllers

    async def restart_controllers(self) -> None:
        await self.controllers.stop()
        self.controllers = Controllers(self.controllers_client)
        await self.controllers.start()


@pytest.fixture
async def cluster(apiserver: Any) -> AsyncIterator[Cluster]:
    kubelet_client = apiserver.new_client(timeout=10)
    ctrl_client = apiserver.new_client(timeout=10)
    kubelet = HollowKubelet(kubelet_client, nodes=3, ready_delay=0.05)
    await kubelet.start()
    controllers = Controllers(ctrl_client)
    await controllers.start()
    c = Cluster(apiserver.client, ctrl_client, kubelet, controllers)
    try:
        yield c
    finally:
        await c.controllers.stop()
        await kubelet.stop()
        await kubelet_client.close()
        await ctrl_client.close()


# -- helpers ---------------------------------------------------------------------------------------


def template(app: str, image: str = "registry.local/nginx:1.25", extra: dict[str, str] | None = None
             ) -> core.PodTemplateSpec:
    t = core.PodTemplateSpec()
    t.metadata.labels["app"] = app
    t.metadata.labels.update(extra or {})
    c = t.spec.containers.add(name="main", image=image)
    c.ports.add(container_port=80)
    t.spec.termination_grace_period_seconds = 5
    return t


def make_rs(name: str, replicas: int, app: str | None = None, ns: str = "default") -> apps.ReplicaSet:
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace = name, ns
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = app or name
    rs.spec.template.CopyFrom(template(app or name))
    return rs


def make_deploy(name: str, replicas: int, *, surge: int | str = 1, unavailable: int | str = 1,
                strategy: str = "RollingUpdate", ns: str = "default", image: str = "registry.local/nginx:1.25",
                progress_deadline: int | None = None) -> apps.Deployment:
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace = name, ns
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    d.spec.template.CopyFrom(template(name, image))
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        ru = d.spec.strategy.rolling_update
        for field, v in (("max_surge", surge), ("max_unavailable", unavailable)):
            ios: meta.IntOrString = getattr(ru, field)
            if isinstance(v, int):
                ios.type, ios.int_val = 0, v
            else:
                ios.type, ios.str_val = 1, v
    if progress_deadline is not None:
        d.spec.progress_deadline_seconds = progress_deadline
    return d


async def pods_of(client: Client, app: str, ns: str = "default", *, active: bool = True) -> list[core.Pod]:
    items = (await client.list(core.Pod, namespace=ns, label_selector=f"app={app}")).items
    if active:
        items = [p for p in items if not p.metadata.HasField("deletion_timestamp")]
    return items


async def update_with_retry(client: Client, cls: type[Any], name: str, ns: str,
                            mutate: Callable[[Any], None]) -> Any:
    for _ in range(20):
        obj = await client.get(cls, name, namespace=ns)
        mutate(obj)
        try:
            return await client.update(obj)
        except errors.Conflict:
            await asyncio.sleep(0.05)
    raise AssertionError("too many conflicts")


async def deployment_complete(client: Client, name: str, ns: str = "default") -> apps.Deployment | None:
    d = await client.get(apps.Deployment, name, namespace=ns)
    if du.deployment_complete(d, d.status) and d.status.unavailable_replicas == 0:
        cond = du.get_condition(d.status, du.PROGRESSING)
        if cond is not None and cond.reason == du.NEW_RS_AVAILABLE:
            return d
    return None


async def rss_of(client: Client, app: str, ns: str = "default") -> list[apps.ReplicaSet]:
    return (await client.list(apps.ReplicaSet, namespace=ns, label_selector=f"app={app}")).items


class Sampler:
    """Samples a value continuously in the background; keeps every sample."""

    def __init__(self, fn: Callable[[], Awaitable[int]], interval: float = 0.03) -> None:
        self.fn = fn
        self.interval = interval
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(errors.ApiError):
                self.samples.append(await self.fn())
            await asyncio.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


# -- tests -----------------------------------------------------------------------------------------


async def test_replicaset_scale_up_down_and_replace(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_rs("web", 3))

    async def ready(n: int) -> bool:
        rs = await client.get(apps.ReplicaSet, "web", namespace="default")
        pods = await pods_of(client, "web")
        return (len(pods) == n and rs.status.replicas == n and rs.status.ready_replicas == n
                and rs.status.available_replicas == n and rs.status.fully_labeled_replicas == n
                and rs.status.observed_generation == rs.metadata.generation)

    await eventually(lambda: ready(3), 20, what="3 ready replicas")
    pods = await pods_of(client, "web")
    for p in pods:
        assert p.metadata.generate_name == "web-"
        ref = p.metadata.owner_references[0]
        assert ref.kind == "ReplicaSet" and ref.controller and ref.block_owner_deletion
        assert p.spec.node_name in cluster.kubelet.node_names

    await update_with_retry(client, apps.ReplicaSet, "web", "default", lambda rs: setattr(rs.spec, "replicas", 7))
    await eventually(lambda: ready(7), 20, what="7 ready replicas")
    await update_with_retry(client, apps.ReplicaSet, "web", "default", lambda rs: setattr(rs.spec, "replicas", 2))
    await eventually(lambda: ready(2), 20, what="2 ready replicas")

    victim = (await pods_of(client, "web"))[0]
    await client.delete(core.Pod, victim.metadata.name, namespace="default")

    async def replaced() -> bool:
        names = {p.metadata.name for p in await pods_of(client, "web")}
        return len(names) == 2 and victim.metadata.name not in names and await ready(2)

    await eventually(replaced, 20, what="pod replaced")
    # Never more pods than asked for (expectations): all pods ever seen owned by web.
    all_pods = await pods_of(client, "web", active=False)
    assert len(all_pods) <= 2 + 1


async def test_replicaset_adopts_and_releases(cluster: Cluster) -> None:
    client = cluster.client
    orphan = core.Pod()
    orphan.metadata.name, orphan.metadata.namespace = "stray", "default"
    orphan.metadata.labels["app"] = "adopt"
    orphan.spec.containers.add(name="main", image="registry.local/nginx:1.25")
    await client.create(orphan)
    await client.create(make_rs("adopt", 2))

    async def adopted() -> bool:
        p = await client.get(core.Pod, "stray", namespace="default")
        pods = await pods_of(client, "adopt")
        return bool(p.metadata.owner_references) and len(pods) == 2

    await eventually(adopted, 20, what="orphan adopted")
    # Relabel the adopted pod: it is released and replaced.
    await update_with_retry(client, core.Pod, "stray", "default",
                            lambda p: p.metadata.labels.__setitem__("app", "elsewhere"))

    async def released() -> bool:
        p = await client.get(core.Pod, "stray", namespace="default")
        return not p.metadata.owner_references and len(await pods_of(client, "adopt")) == 2

    await eventually(released, 20, what="pod released and replaced")


async def test_replication_controller(cluster: Cluster) -> None:
    client = cluster.client
    rc = core.ReplicationController()
    rc.metadata.name, rc.metadata.namespace = "legacy", "default"
    rc.spec.replicas = 3
    rc.spec.selector["app"] = "legacy"
    rc.spec.template.CopyFrom(template("legacy"))
    await client.create(rc)

    async def ready() -> bool:
        rc = await client.get(core.ReplicationController, "legacy", namespace="default")
        return rc.status.ready_replicas == 3 and len(await pods_of(client, "legacy")) == 3

    await eventually(ready, 20, what="rc ready")
    pods = await pods_of(client, "legacy")
    assert all(p.metadata.owner_references[0].kind == "ReplicationController" for p in pods)


class RecordingClient:
    """Delegates to a real client; records every write."""

    WRITES = ("create", "update", "update_status", "patch", "delete", "bind")

    def __init__(self, client: Client) -> None:
        self._client = client
        self.writes: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self.WRITES:
            return attr

        async def recorded(*args: Any, **kw: Any) -> Any:
            what = args[0]
            label = (f"{type(what).__name__}/{what.metadata.name}" if hasattr(what, "metadata")
                     else f"{getattr(what, '__name__', what)}/{args[1] if len(args) > 1 else ''}")
            self.writes.append((name, label))
            return await attr(*args, **kw)

        return recorded


async def test_sync_twice_makes_no_second_write(cluster: Cluster) -> None:
    """A second sync right after the first (cache not caught up yet) writes nothing; nor does a steady one."""
    client = cluster.client
    await cluster.controllers.stop()  # drive sync by hand
    rec = RecordingClient(cluster.controllers_client)
    factory = InformerFactory(rec)  # type: ignore[arg-type]
    recorder = EventRecorder(cluster.controllers_client, "test")
    rs_ctrl = ReplicaSetController(rec, factory, recorder)  # type: ignore[arg-type]
    d_ctrl = DeploymentController(rec, factory, recorder)  # type: ignore[arg-type]
    factory.start()
    await factory.wait_for_cache_sync()
    try:
        await client.create(make_deploy("idem", 3))
        await eventually(lambda: _has(d_ctrl.lister, "default", "idem"), 10, what="deployment cached")
        await d_ctrl.sync("default/idem")
        first = list(rec.writes)
        assert any(w[0] == "create" and w[1].startswith("ReplicaSet/idem-") for w in first)
        rec.writes.clear()
        await d_ctrl.sync("default/idem")  # cache may still lag: no second RS, no second status write
        assert rec.writes == [], rec.writes
        rs_name = next(w[1].split("/")[1] for w in first if w[0] == "create")
        await eventually(lambda: _has(rs_ctrl.lister, "default", rs_name), 10, what="rs cached")
        await rs_ctrl.sync(f"default/{rs_name}")
        creates = [w for w in rec.writes if w[0] == "create"]
        assert len(creates) == 3
        rec.writes.clear()
        await rs_ctrl.sync(f"default/{rs_name}")  # pods not in the cache yet: expectations hold
        assert [w for w in rec.writes if w[0] == "create"] == []
        # Let the kubelet make them ready and the caches settle, then converge and check steadiness.
        for _ in range(40):
            await rs_ctrl.sync(f"default/{rs_name}")
            await d_ctrl.sync("default/idem")
            await asyncio.sleep(0.1)
        assert await deployment_complete(client, "idem") is not None
        rec.writes.clear()
        await rs_ctrl.sync(f"default/{rs_name}")
        await d_ctrl.sync("default/idem")
        await rs_ctrl.sync(f"default/{rs_name}")
        await d_ctrl.sync("default/idem")
        assert rec.writes == [], rec.writes
        assert len(await pods_of(client, "idem")) == 3
    finally:
        await factory.shutdown()
        cluster.controllers = Controllers(cluster.controllers_client)
        await cluster.controllers.start()


async def _has(lister: Any, ns: str, name: str) -> bool:
    return lister.get(ns, name) is not None


async def test_deployment_rolling_update_and_rollback(cluster: Cluster) -> None:
    client = cluster.client
    replicas, unavailable = 6, 2
    await client.create(make_deploy("roll", replicas, surge=1, unavailable=unavailable))
    d = await eventually(lambda: deployment_complete(client, "roll"), 30, what="initial rollout")
    assert d is not None
    assert d.metadata.annotations[du.REVISION] == "1"
    (rs1,) = await rss_of(client, "roll")
    assert rs1.metadata.name == f"roll-{rs1.metadata.labels[du.POD_TEMPLATE_HASH]}"
    assert rs1.metadata.annotations[du.REVISION] == "1"

    async def available_pods() -> int:
        return sum(1 for p in await pods_of(client, "roll") if is_pod_ready(p))

    async def total_pods() -> int:
        return len(await pods_of(client, "roll"))

    with Sampler(available_pods) as avail, Sampler(total_pods) as total:
        await update_with_retry(client, apps.Deployment, "roll", "default",
                                lambda d: setattr(d.spec.template.spec.containers[0], "image",
                                                  "registry.local/nginx:1.26"))
        d = await eventually(lambda: _rolled(client, "roll", "registry.local/nginx:1.26", replicas), 60,
                             what="rolling update")
        assert d is not None
    assert avail.samples and min(avail.samples) >= replicas - unavailable, avail.samples
    assert max(total.samples) <= replicas + 1 + unavailable, total.samples  # surge (+ terminating lag)
    assert d.metadata.annotations[du.REVISION] == "2"
    rss = {rs.metadata.name: rs for rs in await rss_of(client, "roll")}
    assert len(rss) == 2
    assert rss[rs1.metadata.name].spec.replicas == 0

    # Rollback to revision 1 (what `pbctl rollout undo` does): copy rs1's template into the deployment.
    def undo(d: apps.Deployment) -> None:
        t = objects.copy(rs1.spec.template)
        t.metadata.labels.pop(du.POD_TEMPLATE_HASH, None)
        d.spec.template.CopyFrom(t)

    await update_with_retry(client, apps.Deployment, "roll", "default", undo)
    d = await eventually(lambda: _rolled(client, "roll", "registry.local/nginx:1.25", replicas), 60,
                         what="rollback")
    assert d is not None
    assert d.metadata.annotations[du.REVISION] == "3"
    rss = {rs.metadata.name: rs for rs in await rss_of(client, "roll")}
    assert len(rss) == 2, "rollback reuses the old ReplicaSet"
    assert rss[rs1.metadata.name].metadata.annotations[du.REVISION] == "3"
    assert rss[rs1.metadata.name].spec.replicas == replicas
    events = (await client.list(core.Event, namespace="default")).items
    msgs = [e.message for e in events if e.reason == "ScalingReplicaSet" and e.involved_object.name == "roll"]
    assert any(m.startswith(f"Scaled up replica set {rs1.metadata.name} to ") and m.endswith(" from 0")
               for m in msgs), msgs


async def _rolled(client: Client, app: str, image: str, replicas: int) -> apps.Deployment | None:
    d = await deployment_complete(client, app)
    if d is None or d.spec.template.spec.containers[0].image != image:
        return None
    pods = await pods_of(client, app, active=False)
    if len(pods) != replicas or any(p.spec.containers[0].image != image for p in pods):
        return None
    return d


async def test_deployment_recreate(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_deploy("rec", 3, strategy="Recreate"))
    await eventually(lambda: deployment_complete(client, "rec"), 30, what="initial")

    async def mixed() -> int:
        images = {p.spec.containers[0].image for p in await pods_of(client, "rec", active=False)}
        return len(images)

    with Sampler(mixed) as s:
        await update_with_retry(client, apps.Deployment, "rec", "default",
                                lambda d: setattr(d.spec.template.spec.containers[0], "image",
                                                  "registry.local/nginx:1.26"))
        await eventually(lambda: _rolled(client, "rec", "registry.local/nginx:1.26", 3), 60, what="recreate")
    assert max(s.samples) <= 1, "old and new pods never coexist"


async def test_deployment_paused_scales_but_does_not_roll(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_deploy("paused", 2))
    await eventually(lambda: deployment_complete(client, "paused"), 30, what="initial")

    def pause_and_change(d: apps.Deployment) -> None:
        d.spec.paused = True
        d.spec.template.spec.containers[0].image = "registry.local/nginx:1.26"

    await update_with_retry(client, apps.Deployment, "paused", "default", pause_and_change)

    async def paused_cond() -> bool:
        d = await client.get(apps.Deployment, "paused", namespace="default")
        c = du.get_condition(d.status, du.PROGRESSING)
        return c is not None and c.reason == du.PAUSED

    await eventually(paused_cond, 20, what="paused condition")
    await update_with_retry(client, apps.Deployment, "paused", "default", lambda d: setattr(d.spec, "replicas", 4))

    async def scaled() -> bool:
        pods = await pods_of(client, "paused")
        return len(pods) == 4 and all(p.spec.containers[0].image.endswith("1.25") for p in pods)

    await eventually(scaled, 30, what="scaled while paused")
    assert len(await rss_of(client, "paused")) == 1
    await update_with_retry(client, apps.Deployment, "paused", "default", lambda d: setattr(d.spec, "paused", False))
    await eventually(lambda: _rolled(client, "paused", "registry.local/nginx:1.26", 4), 60, what="resumed")


async def test_deployment_progress_deadline(cluster: Cluster) -> None:
    client = cluster.client
    d = make_deploy("stuck", 2, progress_deadline=2)
    d.spec.template.metadata.labels[NEVER_READY] = "true"
    await client.create(d)

    async def timed_out() -> bool:
        d = await client.get(apps.Deployment, "stuck", namespace="default")
        c = du.get_condition(d.status, du.PROGRESSING)
        a = du.get_condition(d.status, du.AVAILABLE)
        return (c is not None and c.status == "False" and c.reason == du.TIMED_OUT and a is not None
                and a.status == "False")

    await eventually(timed_out, 30, what="ProgressDeadlineExceeded")


async def test_gc_background_cascade(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_deploy("bg", 3))
    await eventually(lambda: deployment_complete(client, "bg"), 30, what="rollout")
    await client.delete(apps.Deployment, "bg", namespace="default")

    async def gone() -> bool:
        return not await rss_of(client, "bg") and not await pods_of(client, "bg", active=False)

    await eventually(gone, 30, what="replicasets and pods collected")


async def test_gc_foreground(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_deploy("fg", 3))
    await eventually(lambda: deployment_complete(client, "fg"), 30, what="rollout")
    obj, deleted = await client.delete(apps.Deployment, "fg", namespace="default", propagation_policy="Foreground")
    assert not deleted and "foregroundDeletion" in obj.metadata.finalizers

    seen_owner_with_dependents = False

    async def all_gone() -> bool:
        nonlocal seen_owner_with_dependents
        try:
            await client.get(apps.Deployment, "fg", namespace="default")
            owner = True
        except errors.NotFound:
            owner = False
        deps = bool(await rss_of(client, "fg")) or bool(await pods_of(client, "fg", active=False))
        if owner and deps:
            seen_owner_with_dependents = True
        assert owner or not deps, "the owner went before its dependents"
        return not owner and not deps

    await eventually(all_gone, 40, interval=0.02, what="foreground deletion")
    assert seen_owner_with_dependents


async def test_gc_orphan(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(make_deploy("orph", 2))
    await eventually(lambda: deployment_complete(client, "orph"), 30, what="rollout")
    await client.delete(apps.Deployment, "orph", namespace="default", propagation_policy="Orphan")

    async def orphaned() -> bool:
        try:
            await client.get(apps.Deployment, "orph", namespace="default")
            return False
        except errors.NotFound:
            pass
        rss = await rss_of(client, "orph")
        return len(rss) == 1 and not rss[0].metadata.owner_references

    await eventually(orphaned, 30, what="orphaned")
    await asyncio.sleep(1.0)  # nothing collects them afterwards
    assert len(await rss_of(client, "orph")) == 1
    assert len(await pods_of(client, "orph")) == 2


async def test_namespace_deletion(cluster: Cluster) -> None:
    client = cluster.client
    ns = core.Namespace()
    ns.metadata.name = "doomed"
    await client.create(ns)
    await client.create(make_deploy("app", 3, ns="doomed"))
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "settings", "doomed"
    cm.data["k"] = "v"
    await client.create(cm)
    await eventually(lambda: deployment_complete(client, "app", "doomed"), 30, what="rollout")
    await client.delete(core.Namespace, "doomed")
    got = await client.get(core.Namespace, "doomed")
    assert got.status.phase == "Terminating"

    async def ns_gone() -> bool:
        try:
            await client.get(core.Namespace, "doomed")
            return False
        except errors.NotFound:
            return True

    await eventually(ns_gone, 40, what="namespace removed")
    for cls in (core.Pod, apps.ReplicaSet, apps.Deployment, core.ConfigMap):
        assert (await client.list(cls, namespace="doomed")).items == []


async def test_controller_restart_mid_rollout(cluster: Cluster) -> None:
    client = cluster.client
    replicas = 8
    await client.create(make_deploy("rst", replicas, surge=2, unavailable=1))
    await eventually(lambda: deployment_complete(client, "rst"), 30, what="initial rollout")

    async def total() -> int:
        return len(await pods_of(client, "rst"))

    with Sampler(total) as s:
        await update_with_retry(client, apps.Deployment, "rst", "default",
                                lambda d: setattr(d.spec.template.spec.containers[0], "image",
                                                  "registry.local/nginx:1.26"))

        async def midway() -> bool:
            pods = await pods_of(client, "rst")
            return any(p.spec.containers[0].image.endswith("1.26") for p in pods)

        await eventually(midway, 20, interval=0.02, what="rollout started")
        await cluster.restart_controllers()
        await eventually(lambda: _rolled(client, "rst", "registry.local/nginx:1.26", replicas), 60,
                         what="rollout completed after restart")
    assert max(s.samples) <= replicas + 2, s.samples
    assert len(await rss_of(client, "rst")) == 2
    assert len(await pods_of(client, "rst", active=False)) == replicas
