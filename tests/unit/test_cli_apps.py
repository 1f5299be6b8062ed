"""pbctl for DaemonSets and StatefulSets: kubectl's `get` columns and `rollout status` messages."""

from __future__ import annotations

import pytest

from pbctl import printers
from pbctl.common import CliError
from pbctl.describers.sets import describe_daemonset, describe_statefulset
from pbctl.describers.writer import Writer
from pbctl.verbs.rollout import daemonset_status_message, statefulset_status_message
from pybernetes.api import codec, kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps

NOW = 1_700_000_000.0
TEMPLATE = {"metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}


def daemonset() -> apps.DaemonSet:
    return codec.from_dict({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "creationTimestamp": "2023-11-14T22:03:20Z", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": TEMPLATE,
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 1, "numberAvailable": 2, "observedGeneration": 2}}, apps.DaemonSet)


def statefulset() -> apps.StatefulSet:
    return codec.from_dict({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:03:20Z", "generation": 1},
        "spec": {"replicas": 3, "serviceName": "web", "selector": {"matchLabels": {"app": "agent"}},
                 "template": TEMPLATE, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "observedGeneration": 1}},
        apps.StatefulSet)


def test_daemonset_columns() -> None:
    info = kinds.for_class(apps.DaemonSet)
    assert printers.headers_for(info) == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                          "NODE SELECTOR", "AGE"]
    assert printers.row_for(info, daemonset(), NOW) == ["agent", "3", "3", "2", "1", "2", "kubernetes.io/os=linux",
                                                        "10m"]
    assert printers.row_for(info, daemonset(), NOW, wide=True)[-3:] == ["a", "agent:1", "app=agent"]


def test_statefulset_columns() -> None:
    info = kinds.for_class(apps.StatefulSet)
    assert printers.headers_for(info) == ["NAME", "READY", "AGE"]
    assert printers.row_for(info, statefulset(), NOW) == ["web", "2/3", "10m"]
    assert kinds.lookup("sts") is info and kinds.lookup("ds") is kinds.for_class(apps.DaemonSet)


def test_daemonset_rollout_status() -> None:
    ds = daemonset()
    assert daemonset_status_message(ds) == (
        'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...', False)
    ds.status.updated_number_scheduled = 3
    assert daemonset_status_message(ds) == (
        'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...', False)
    ds.status.number_available = 3
    assert daemonset_status_message(ds) == ('daemon set "agent" successfully rolled out', True)
    ds.metadata.generation = 3
    assert daemonset_status_message(ds) == ("Waiting for daemon set spec update to be observed...", False)
    ds.spec.update_strategy.type = "OnDelete"
    with pytest.raises(CliError, match="only available for RollingUpdate"):
        daemonset_status_message(ds)


def test_statefulset_rollout_status() -> None:
    ss = statefulset()
    assert statefulset_status_message(ss) == ("Waiting for 1 pods to be ready...", False)
    ss.status.ready_replicas = 3
    assert statefulset_status_message(ss) == (
        "partitioned roll out complete: 3 new pods have been updated...", True)
    ss.spec.update_strategy.rolling_update.partition = 0
    ss.status.updated_replicas = 1
    assert statefulset_status_message(ss) == (
        "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...", False)
    ss.metadata.generation = 2
    assert statefulset_status_message(ss) == ("Waiting for statefulset spec update to be observed...", False)


def test_describe() -> None:
    w = Writer()
    describe_daemonset(w, daemonset(), [])
    text = w.text()
    for line in ("Node-Selector:  kubernetes.io/os=linux", "Desired Number of Nodes Scheduled: 3",
                 "Number of Nodes Scheduled with Up-to-date Pods: 1", "Number of Nodes Misscheduled: 0",
                 "Pods Status:  0 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
        assert line in text, text
    w = Writer()
    describe_statefulset(w, statefulset(), [])
    text = w.text()
    for line in ("Replicas:           3 desired | 3 total", "Update Strategy:    RollingUpdate",
                 "  Partition:        0", "Volume Claims:      <none>"):
        assert line in text, text
