"""The apiserver's per-kind strategies: every registered kind has one, and the storage hooks
(services/apiserver/registry/strategy.py) reset status, move generation and expose field-selector attributes."""

from __future__ import annotations

import pytest

from pybernetes.api import kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry import strategy
from services.apiserver.registry.strategies import strategy_for_class


# The review kinds are answered on create and never stored (services/apiserver/reviews.py): no strategy.
@pytest.mark.parametrize("info", [r for r in kinds.RESOURCES if r.plural not in kinds.REVIEWS], ids=lambda r: r.kind)
def test_every_registered_kind_has_its_own_strategy(info: kinds.ResourceInfo) -> None:
    s = strategy_for_class(info.cls)
    assert s is not None and s.kind is info.cls


def test_selectable_fields() -> None:
    pods = strategy.selectable_fields(kinds.for_class(core.Pod))
    assert {"metadata.name", "spec.nodeName", "status.phase"} <= pods
    assert strategy.selectable_fields(kinds.for_class(core.ConfigMap)) == {"metadata.name", "metadata.namespace"}
    assert strategy.selectable_fields(kinds.for_class(core.Secret)) == {"metadata.name", "metadata.namespace",
                                                                           "type"}
    node = core.Node(spec=core.NodeSpec(unschedulable=True))
    assert strategy.fields_fn(kinds.for_class(core.Node))(node)["spec.unschedulable"] == "true"


def test_prepare_for_create_resets_status_and_starts_generation() -> None:
    pod = core.Pod(status=core.PodStatus(phase="Running", pod_ip="10.0.0.1"))
    pod.spec.containers.add(name="c", image="i")
    strategy.prepare_for_create(kinds.for_class(core.Pod), pod)
    assert pod.status.phase == "Pending" and not pod.status.pod_ip and pod.status.qos_class == "BestEffort"
    assert pod.metadata.generation == 1
    d = apps.Deployment(status=apps.DeploymentStatus(replicas=3))
    strategy.prepare_for_create(kinds.for_class(apps.Deployment), d)
    assert d.status.replicas == 0 and d.metadata.generation == 1
    cm = core.ConfigMap(data={"k": "v"})
    strategy.prepare_for_create(kinds.for_class(core.ConfigMap), cm)
    assert cm.data == {"k": "v"} and cm.metadata.generation == 0


def test_prepare_for_update_keeps_status_and_moves_generation_on_spec_change() -> None:
    info = kinds.for_class(apps.Deployment)
    old = apps.Deployment(spec=apps.DeploymentSpec(replicas=1), status=apps.DeploymentStatus(replicas=1))
    old.metadata.generation = 4
    new = apps.Deployment(spec=apps.DeploymentSpec(replicas=1), status=apps.DeploymentStatus(replicas=9))
    strategy.prepare_for_update(info, new, old)
    assert new.status.replicas == 1 and new.metadata.generation == 4
    new.spec.replicas = 2
    strategy.prepare_for_update(info, new, old)
    assert new.metadata.generation == 5
    node_old = core.Node(status=core.NodeStatus(capacity={"cpu": {"string": "2"}}))
    node_new = core.Node()
    strategy.prepare_for_update(kinds.for_class(core.Node), node_new, node_old)
    assert node_new.status == node_old.status


def test_prepare_for_status_update_takes_only_the_status() -> None:
    old = core.Pod(spec=core.PodSpec(node_name="a"), status=core.PodStatus(phase="Pending"))
    new = core.Pod(spec=core.PodSpec(node_name="b"), status=core.PodStatus(phase="Running"))
    out = strategy.prepare_for_status_update(new, old)
    assert isinstance(out, core.Pod) and out.spec.node_name == "a" and out.status.phase == "Running"
