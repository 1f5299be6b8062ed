"""pybernetes.api.objects: keys, kind, owner references and status conditions on any kind."""

from __future__ import annotations

from pybernetes.api import kinds, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta


def test_keys_round_trip() -> None:
    pod = core.Pod()
    pod.metadata.namespace, pod.metadata.name = "default", "web"
    node = core.Node()
    node.metadata.name = "n1"
    assert objects.key(pod) == "default/web" and objects.key(node) == "n1"
    assert objects.split_key(objects.key(pod)) == ("default", "web")
    assert objects.split_key(objects.key(node)) == ("", "n1")


def test_kind_and_api_version() -> None:
    assert (objects.kind(core.Pod()), objects.api_version(core.Pod())) == ("Pod", "v1")
    assert (objects.kind(apps.Deployment()), objects.api_version(apps.Deployment())) == ("Deployment", "apps/v1")
    assert kinds.for_class(core.Pod).descriptor.full_name == core.Pod.DESCRIPTOR.full_name


def test_controller_ref_and_deletion() -> None:
    pod = core.Pod()
    pod.metadata.owner_references.add(uid="a")
    assert objects.controller_ref(pod) is None
    pod.metadata.owner_references.add(uid="b", controller=True)
    ref = objects.controller_ref(pod)
    assert ref is not None and ref.uid == "b"
    assert not objects.being_deleted(pod)
    pod.metadata.deletion_timestamp.seconds = 1
    assert objects.being_deleted(pod)


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    conds = core.Node().status.conditions
    assert objects.condition(conds, "Ready") is None
    c = objects.set_condition(conds, "Ready", "False", "Starting", "", meta.Time(seconds=10))
    assert (c.status, c.reason, c.last_transition_time.seconds) == ("False", "Starting", 10)
    objects.set_condition(conds, "Ready", "False", "StillStarting", "m", meta.Time(seconds=20))
    c2 = objects.condition(conds, "Ready")
    assert c2 is not None and (c2.reason, c2.message, c2.last_transition_time.seconds) == ("StillStarting", "m", 10)
    objects.set_condition(conds, "Ready", "True", "KubeletReady", "", meta.Time(seconds=30))
    assert len(conds) == 1 and conds[0].status == "True" and conds[0].last_transition_time.seconds == 30


def test_condition_works_on_any_status() -> None:
    ns = core.Namespace()
    objects.set_condition(ns.status.conditions, "NamespaceDeletionContentFailure", "True", "r", "", meta.Time())
    d = apps.Deployment()
    objects.set_condition(d.status.conditions, "Available", "True", "MinimumReplicasAvailable", "", meta.Time())
    assert objects.condition(ns.status.conditions, "NamespaceDeletionContentFailure") is not None
    c = objects.condition(d.status.conditions, "Available")
    assert c is not None and c.reason == "MinimumReplicasAvailable"
