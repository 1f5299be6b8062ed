"""The apiserver's REST layer (services.apiserver.rest.Rest) over the real Store on an in-memory etcd.

Optimistic concurrency (stale resourceVersion -> Conflict), updates tried on the watch cache's copy without an
etcd read and decided on etcd's when that copy is behind, generation bumps on spec changes only, dryRun writing
nothing, graceful deletion with finalizers and propagation policies, and the namespace
lifecycle guard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.admission import new_chain
from services.apiserver.registry import strategy
from services.apiserver.rest import Rest
from services.apiserver.storage.objects import object_key
from services.apiserver.storage.store import Store
from tests.unit.etcd_fake import FakeEtcd


@dataclass
class Api:
    rest: Rest
    etcd: FakeEtcd
    store: Store


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    etcd = FakeEtcd()
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES},
                  bookmark_interval=3600)
    store.start()
    rest = Rest(store)
    await rest.create("namespaces", "", ns("default").SerializeToString())
    # The serviceaccount controller's work: pods run as `default` (ServiceAccount admission checks it exists).
    sa = core.ServiceAccount()
    sa.metadata.name = "default"
    await rest.create("serviceaccounts", "default", sa.SerializeToString())
    yield Api(rest, etcd, store)
    await store.stop()


def ns(name: str) -> core.Namespace:
    n = core.Namespace()
    n.metadata.name = name
    return n


def cm(name: str, value: str = "v", finalizers: tuple[str, ...] = ()) -> core.ConfigMap:
    c = core.ConfigMap()
    c.metadata.name = name
    c.metadata.finalizers.extend(finalizers)
    c.data["k"] = value
    return c


def deployment(name: str = "web", replicas: int = 1) -> apps.Deployment:
    d = apps.Deployment()
    d.metadata.name = name
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    d.spec.template.metadata.labels["app"] = name
    d.spec.template.spec.containers.add(name="c", image="nginx")
    return d


def pod(name: str = "p", node: str = "node-1", grace: int | None = None) -> core.Pod:
    p = core.Pod()
    p.metadata.name = name
    p.spec.node_name = node
    p.spec.containers.add(name="c", image="nginx")
    if grace is not None:
        p.spec.termination_grace_period_seconds = grace
    return p


async def stored(api: Api, plural: str, name: str, namespace: str = "default") -> core.ConfigMap:
    return await api.rest.get(plural, namespace, name)


def opts(**kw: object) -> meta.DeleteOptions:
    return meta.DeleteOptions(**kw)


# -- create/update --------------------------------------------------------------------------------------


async def test_create_sets_server_fields_and_rejects_a_duplicate(api: Api) -> None:
    obj = await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    md = obj.metadata
    assert md.uid and md.creation_timestamp.seconds and int(md.resource_version) == api.etcd.rev
    with pytest.raises(errors.AlreadyExists):
        await api.rest.create("configmaps", "default", cm("a").SerializeToString())


async def test_update_with_a_stale_resource_version_conflicts(api: Api) -> None:
    created = await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    v1 = created.metadata.resource_version
    first = cm("a", "first")
    first.metadata.resource_version = v1
    updated = await api.rest.update("configmaps", "default", first.SerializeToString())
    v2 = updated.metadata.resource_version
    assert int(v2) > int(v1)
    late = cm("a", "late")  # a writer that read v1 too
    late.metadata.resource_version = v1
    with pytest.raises(errors.Conflict):
        await api.rest.update("configmaps", "default", late.SerializeToString())
    assert (await stored(api, "configmaps", "a")).data["k"] == "first"
    # without a resourceVersion the update is unconditional
    await api.rest.update("configmaps", "default", cm("a", "last").SerializeToString())
    assert (await stored(api, "configmaps", "a")).data["k"] == "last"


async def test_a_no_op_update_writes_nothing(api: Api) -> None:
    created = await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    rev = api.etcd.rev
    same = await api.rest.update("configmaps", "default", created.SerializeToString())
    assert api.etcd.rev == rev
    assert same.metadata.resource_version == created.metadata.resource_version


async def test_generation_moves_only_with_the_spec(api: Api) -> None:
    d = await api.rest.create("deployments", "default", deployment().SerializeToString())
    assert d.metadata.generation == 1
    d.metadata.labels["team"] = "a"
    d = await api.rest.update("deployments", "default", d.SerializeToString())
    assert d.metadata.generation == 1
    d.spec.replicas = 3
    d = await api.rest.update("deployments", "default", d.SerializeToString())
    assert d.metadata.generation == 2
    d.status.replicas = 3
    d = await api.rest.update("deployments", "default", d.SerializeToString(), subresource="status")
    assert d.metadata.generation == 2 and d.status.replicas == 3
    d.metadata.generation = 99
    d = await api.rest.update("deployments", "default", d.SerializeToString())
    assert d.metadata.generation == 2  # the server owns it


async def test_status_update_ignores_spec_and_update_ignores_status(api: Api) -> None:
    d = await api.rest.create("deployments", "default", deployment().SerializeToString())
    d.spec.replicas = 5
    d.status.replicas = 2
    d = await api.rest.update("deployments", "default", d.SerializeToString(), subresource="status")
    assert d.spec.replicas == 1 and d.status.replicas == 2


# -- dryRun ---------------------------------------------------------------------------------------------


async def test_dry_run_writes_nothing(api: Api) -> None:
    rev = api.etcd.rev
    out = await api.rest.create("configmaps", "default", cm("a").SerializeToString(), dry_run=True)
    assert out.metadata.name == "a" and api.etcd.rev == rev
    with pytest.raises(errors.NotFound):
        await api.rest.get("configmaps", "default", "a")
    await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    rev = api.etcd.rev
    out = await api.rest.update("configmaps", "default", cm("a", "changed").SerializeToString(), dry_run=True)
    assert out.data["k"] == "changed"
    _, gone = await api.rest.delete("configmaps", "default", "a", opts(dry_run=["All"]))
    assert gone
    assert api.etcd.rev == rev and (await stored(api, "configmaps", "a")).data["k"] == "v"


# -- delete ---------------------------------------------------------------------------------------------


async def test_finalizers_hold_a_deleted_object_until_the_last_is_removed(api: Api) -> None:
    await api.rest.create("configmaps", "default", cm("a", finalizers=("x/a", "x/b")).SerializeToString())
    obj, gone = await api.rest.delete("configmaps", "default", "a", opts())
    assert not gone and obj.metadata.HasField("deletion_timestamp")
    rev = api.etcd.rev
    _, gone = await api.rest.delete("configmaps", "default", "a", opts())  # again: nothing changes
    assert not gone and api.etcd.rev == rev
    cur = await stored(api, "configmaps", "a")
    cur.metadata.finalizers.remove("x/a")
    cur = await api.rest.update("configmaps", "default", cur.SerializeToString())
    assert list(cur.metadata.finalizers) == ["x/b"] and cur.metadata.HasField("deletion_timestamp")
    cur.metadata.finalizers.remove("x/b")
    await api.rest.update("configmaps", "default", cur.SerializeToString())
    with pytest.raises(errors.NotFound):
        await api.rest.get("configmaps", "default", "a")


async def test_a_finalizer_cannot_be_added_back_to_keep_an_object_undeleted(api: Api) -> None:
    await api.rest.create("configmaps", "default", cm("a", finalizers=("x/a",)).SerializeToString())
    await api.rest.delete("configmaps", "default", "a", opts())
    cur = await stored(api, "configmaps", "a")
    cur.ClearField("metadata")
    cur.metadata.name = "a"
    cur.metadata.finalizers.append("x/a")  # a client that sends no deletionTimestamp
    out = await api.rest.update("configmaps", "default", cur.SerializeToString())
    assert out.metadata.HasField("deletion_timestamp")  # it stays deleting


@pytest.mark.parametrize(("policy", "finalizer"), [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")])
async def test_propagation_policy_adds_its_finalizer(api: Api, policy: str, finalizer: str) -> None:
    await api.rest.create("deployments", "default", deployment().SerializeToString())
    obj, gone = await api.rest.delete("deployments", "default", "web", opts(propagation_policy=policy))
    assert not gone and list(obj.metadata.finalizers) == [finalizer]
    assert (await stored(api, "deployments", "web")).metadata.HasField("deletion_timestamp")


async def test_background_deletion_removes_at_once(api: Api) -> None:
    await api.rest.create("deployments", "default", deployment().SerializeToString())
    _, gone = await api.rest.delete("deployments", "default", "web", opts(propagation_policy="Background"))
    assert gone
    with pytest.raises(errors.NotFound):
        await api.rest.get("deployments", "default", "web")


async def test_delete_preconditions(api: Api) -> None:
    created = await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    with pytest.raises(errors.Conflict):
        await api.rest.delete("configmaps", "default", "a", opts(preconditions=meta.Preconditions(uid="other")))
    with pytest.raises(errors.Conflict):
        await api.rest.delete("configmaps", "default", "a",
                              opts(preconditions=meta.Preconditions(resource_version="1")))
    _, gone = await api.rest.delete("configmaps", "default", "a", opts(
        preconditions=meta.Preconditions(uid=created.metadata.uid)))
    assert gone


async def test_graceful_pod_deletion_waits_for_the_kubelet(api: Api) -> None:
    await api.rest.create("pods", "default", pod(grace=30).SerializeToString())
    obj, gone = await api.rest.delete("pods", "default", "p", opts())
    md = obj.metadata
    assert not gone and md.deletion_grace_period_seconds == 30 and md.HasField("deletion_timestamp")
    first = md.deletion_timestamp.seconds
    assert (await api.rest.get("pods", "default", "p")).metadata.deletion_grace_period_seconds == 30
    obj, gone = await api.rest.delete("pods", "default", "p", opts(grace_period_seconds=5))  # shortened
    assert not gone and obj.metadata.deletion_grace_period_seconds == 5
    assert obj.metadata.deletion_timestamp.seconds < first
    _, gone = await api.rest.delete("pods", "default", "p", opts(grace_period_seconds=0))  # the kubelet is done
    assert gone


async def test_repeated_delete_of_a_terminating_pod_keeps_it_for_the_kubelet(api: Api) -> None:
    await api.rest.create("pods", "default", pod(grace=30).SerializeToString())
    await api.rest.delete("pods", "default", "p", opts())
    _, gone = await api.rest.delete("pods", "default", "p", opts())  # `pbctl delete pod p` again
    assert not gone
    await api.rest.get("pods", "default", "p")


async def test_unscheduled_pod_is_deleted_at_once(api: Api) -> None:
    await api.rest.create("pods", "default", pod(node="").SerializeToString())
    _, gone = await api.rest.delete("pods", "default", "p", opts())
    assert gone


# -- namespaces -----------------------------------------------------------------------------------------


async def test_repeated_delete_of_a_terminating_namespace_keeps_it_for_its_finalizer(api: Api) -> None:
    await api.rest.create("namespaces", "", ns("team").SerializeToString())
    await api.rest.delete("namespaces", "", "team", opts())
    n, gone = await api.rest.delete("namespaces", "", "team", opts())
    assert not gone and n.status.phase == "Terminating"
    await api.rest.get("namespaces", "", "team")


async def test_terminating_namespace_refuses_new_content_and_waits_for_its_finalizer(api: Api) -> None:
    await api.rest.create("namespaces", "", ns("team").SerializeToString())
    await api.rest.create("configmaps", "team", cm("a").SerializeToString())
    n, gone = await api.rest.delete("namespaces", "", "team", opts())
    assert not gone and n.status.phase == "Terminating"
    assert list(n.spec.finalizers) == ["kubernetes"]
    with pytest.raises(errors.Forbidden):
        await api.rest.create("configmaps", "team", cm("b").SerializeToString())
    with pytest.raises(errors.NotFound):
        await api.rest.create("configmaps", "nowhere", cm("b").SerializeToString())
    # the namespace controller's last step: the finalizer goes, and with it the namespace
    cur = await api.rest.get("namespaces", "", "team")
    del cur.spec.finalizers[:]
    await api.rest.update("namespaces", "", cur.SerializeToString())
    with pytest.raises(errors.NotFound):
        await api.rest.get("namespaces", "", "team")


async def test_a_consistent_watch_starts_from_the_last_acknowledged_write(api: Api) -> None:
    """sendInitialEvents with no resourceVersion promises a state at least as new as every acknowledged write:
    the watch cache, fed asynchronously from etcd's watch, is caught up before the initial events are taken."""
    await api.rest.create("configmaps", "default", cm("fresh").SerializeToString())
    behind = api.store.cache(kinds.for_class(core.ConfigMap)).rv < api.store.written_rv(kinds.for_class(core.ConfigMap))
    await api.rest.catch_up("configmaps")
    _, w = api.rest.watch("configmaps", "default", "", "", "", bookmarks=True)
    names = []
    while not w.queue.empty():
        names.append(core.ConfigMap.FromString(w.queue.get_nowait().raw).metadata.name)
    api.rest.unwatch(kinds.for_class(core.ConfigMap), w)
    assert behind and names == ["fresh"]


async def test_the_token_volume_comes_with_the_serviceaccount_plugin_only(api: Api) -> None:
    """As in Kubernetes the ServiceAccount admission plugin adds the kube-api-access volume: with it off the pod
    names no account (no serviceAccountName), so it gets no token volume the kubelet could not fill."""
    with_plugin = await api.rest.create("pods", "default", pod("with").SerializeToString())
    assert with_plugin.spec.service_account_name == "default"
    assert [v.name[:16] for v in with_plugin.spec.volumes] == ["kube-api-access-"]
    off = Rest(api.store, admission=new_chain(api.store, disable=["ServiceAccount"]))
    without = await off.create("pods", "default", pod("without").SerializeToString())
    assert not without.spec.service_account_name and not without.spec.volumes
    assert not any(c.volume_mounts for c in without.spec.containers)


# -- updates from the watch cache's copy ------------------------------------------------------------------


def count_reads(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The keys the store reads from etcd from now on."""
    reads: list[bytes] = []
    get = api.etcd.get

    async def counted(key: bytes) -> object:
        reads.append(key)
        return await get(key)
    monkeypatch.setattr(api.etcd, "get", counted)
    return reads


async def cache_left_behind(api: Api, plural: str, name: str, namespace: str = "default") -> Callable[[], None]:
    """Once the cache has caught up, a function that puts its copy of the object back as it is now: the cache then
    lags etcd for that object, as it may for a moment after any write."""
    await api.rest.catch_up(plural)
    info = api.rest.resource(plural)
    cache = api.store.cache(info)
    key = object_key(info, namespace, name)
    then = cache.get(key)

    def put_back() -> None:
        assert then is not None and cache.rv > then.rv
        cache.state[key] = then
    return put_back


async def test_updates_patches_and_bindings_read_the_cache_not_etcd(api: Api,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """kube's cacher gives GuaranteedUpdate its copy: the write is guarded by its version, no read comes first."""
    made = await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    await api.rest.create("pods", "default", pod("p", node="").SerializeToString())
    await api.rest.catch_up("configmaps")
    await api.rest.catch_up("pods")
    reads = count_reads(api, monkeypatch)
    made.data["k"] = "updated"
    updated = await api.rest.update("configmaps", "default", made.SerializeToString())
    await api.rest.catch_up("configmaps")
    await api.rest.patch("configmaps", "default", "a", "application/merge-patch+json", b'{"data": {"k": "patched"}}')
    b = core.Binding()
    b.metadata.name = "p"
    b.target.name = "node-1"
    bound = await api.rest.bind("default", "p", b.SerializeToString())
    assert reads == []
    assert int(updated.metadata.resource_version) > int(made.metadata.resource_version)
    assert bound.spec.node_name == "node-1"
    assert (await stored(api, "configmaps", "a")).data["k"] == "patched"


async def test_a_cache_copy_behind_etcd_never_decides_an_update(api: Api) -> None:
    v1 = await api.rest.create("configmaps", "default", cm("a", "first").SerializeToString())
    put_back = await cache_left_behind(api, "configmaps", "a")
    second = cm("a", "second")
    second.metadata.resource_version = v1.metadata.resource_version
    v2 = await api.rest.update("configmaps", "default", second.SerializeToString())
    await api.rest.catch_up("configmaps")
    put_back()  # the cache holds v1 while etcd holds v2
    # A writer at v1 conflicts: the cache agreeing with it does not let it overwrite v2.
    late = cm("a", "late")
    late.metadata.resource_version = v1.metadata.resource_version
    with pytest.raises(errors.Conflict):
        await api.rest.update("configmaps", "default", late.SerializeToString())
    assert (await stored(api, "configmaps", "a")).data["k"] == "second"
    # A writer at v2 succeeds although the cache has not seen v2.
    third = cm("a", "third")
    third.metadata.resource_version = v2.metadata.resource_version
    v3 = await api.rest.update("configmaps", "default", third.SerializeToString())
    assert v3.data["k"] == "third"
    # Unchanged against the cache's copy is not unchanged against etcd's: the update is written.
    put_back()
    back = await api.rest.update("configmaps", "default", cm("a", "first").SerializeToString())
    assert back.data["k"] == "first" and back.metadata.uid == v1.metadata.uid
    assert int(back.metadata.resource_version) == api.etcd.rev > int(v3.metadata.resource_version)
    assert (await stored(api, "configmaps", "a")).data["k"] == "first"


async def test_a_binding_on_a_cache_copy_behind_etcd_keeps_the_later_write(api: Api) -> None:
    await api.rest.create("pods", "default", pod("p", node="").SerializeToString())
    put_back = await cache_left_behind(api, "pods", "p")
    labelled = await api.rest.get("pods", "default", "p")
    labelled.metadata.labels["tier"] = "web"
    await api.rest.update("pods", "default", labelled.SerializeToString())
    await api.rest.catch_up("pods")
    put_back()
    b = core.Binding()
    b.metadata.name = "p"
    b.target.name = "node-1"
    await api.rest.bind("default", "p", b.SerializeToString())
    now = await api.rest.get("pods", "default", "p")
    assert now.spec.node_name == "node-1" and now.metadata.labels["tier"] == "web"


async def test_an_object_gone_from_etcd_but_not_from_the_cache_is_not_found(api: Api) -> None:
    await api.rest.create("configmaps", "default", cm("a").SerializeToString())
    put_back = await cache_left_behind(api, "configmaps", "a")
    await api.rest.delete("configmaps", "default", "a", opts())
    await api.rest.catch_up("configmaps")
    put_back()
    with pytest.raises(errors.NotFound):
        await api.rest.update("configmaps", "default", cm("a", "again").SerializeToString())
    with pytest.raises(errors.NotFound):
        await api.rest.patch("configmaps", "default", "a", "application/merge-patch+json", b'{"data": {"k": "x"}}')
    with pytest.raises(errors.NotFound):
        await api.rest.get("configmaps", "default", "a")


async def test_a_get_at_a_resource_version_reads_the_cache(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """GetOptions.resourceVersion as kube's cacher serves it: "0" any (the cache's copy), "N" not older than N,
    "" the latest (etcd)."""
    v1 = await api.rest.create("configmaps", "default", cm("a", "first").SerializeToString())
    put_back = await cache_left_behind(api, "configmaps", "a")
    v1.data["k"] = "second"
    v2 = await api.rest.update("configmaps", "default", v1.SerializeToString())
    await api.rest.catch_up("configmaps")
    put_back()
    reads = count_reads(api, monkeypatch)
    assert (await api.rest.get("configmaps", "default", "a", "0")).data["k"] == "first"
    assert reads == []
    assert (await api.rest.get("configmaps", "default", "a")).data["k"] == "second"
    assert len(reads) == 1
    with pytest.raises(errors.BadRequest):
        await api.rest.get("configmaps", "default", "a", "latest")
    with pytest.raises(errors.NotFound):
        await api.rest.get("configmaps", "default", "missing", "0")
    third = await api.rest.update("configmaps", "default", cm("a", "third").SerializeToString())
    got = await api.rest.get("configmaps", "default", "a", third.metadata.resource_version)  # waits for the cache
    assert got.data["k"] == "third" and int(got.metadata.resource_version) > int(v2.metadata.resource_version)
