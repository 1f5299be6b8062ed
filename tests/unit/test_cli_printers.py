"""pbctl printers and the library's cells: kubectl's ages, pod STATUS/READY/RESTARTS, columns and tab alignment."""

from __future__ import annotations

from typing import Any

import pytest

from pbctl import printers
from pybernetes.api import cells, codec, kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("seconds", "want"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"),
    (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (4 * 3600, "4h"), (4 * 3600 + 60 * 5, "4h5m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"),
    (400 * 86400, "400d"), (365 * 2 * 86400, "2y"), (365 * 3 * 86400 + 86400 * 5, "3y5d"), (365 * 9 * 86400, "9y"),
])
def test_human_duration(seconds: int, want: str) -> None:
    assert cells.human_duration(seconds) == want


def test_age_unset_is_unknown() -> None:
    assert cells.age(core.Pod().metadata.creation_timestamp, NOW) == "<unknown>"


def pod(doc: dict[str, Any]) -> core.Pod:
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default",
                                                            "creationTimestamp": "2023-11-14T22:13:00Z"},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}
    for k, v in doc.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return codec.from_dict(base, core.Pod)


def test_pod_running_ready() -> None:
    p = pod({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [{"name": "a", "ready": True, "restartCount": 0,
                                               "state": {"running": {"startedAt": "2023-11-14T22:13:00Z"}}}]}})
    assert cells.pod_status(p, NOW) == ("1/1", "Running", "0")


def test_pod_waiting_reasons_win() -> None:
    for reason in ("CrashLoopBackOff", "ErrImagePull", "ContainerCreating", "ImagePullBackOff"):
        p = pod({"status": {"phase": "Pending", "containerStatuses": [
            {"name": "a", "restartCount": 3, "state": {"waiting": {"reason": reason}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2023-11-14T22:12:00Z"}}}]}})
        ready, status, restarts = cells.pod_status(p, 1_699_999_980.0 + 60 + 120)
        assert (ready, status) == ("0/1", reason)
        assert restarts.startswith("3 (") and restarts.endswith(" ago)")


def test_pod_pending_without_statuses() -> None:
    assert cells.pod_status(pod({"status": {"phase": "Pending"}}), NOW) == ("0/1", "Pending", "0")


def test_pod_completed_and_exit_code() -> None:
    p = pod({"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Completed"
    p = pod({"status": {"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 2}}}]}})
    assert cells.pod_status(p, NOW)[1] == "ExitCode:2"
    p = pod({"status": {"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Signal:9"


def test_pod_terminating() -> None:
    p = pod({"metadata": {"deletionTimestamp": "2023-11-14T22:13:10Z"},
             "status": {"phase": "Running", "containerStatuses": [
                 {"name": "a", "ready": True, "state": {"running": {}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Terminating"
    done = pod({"metadata": {"deletionTimestamp": "2023-11-14T22:13:10Z"}, "status": {"phase": "Succeeded"}})
    assert cells.pod_status(done, NOW)[1] == "Succeeded"


def test_pod_init_containers() -> None:
    spec = {"initContainers": [{"name": "i", "image": "x"}], "containers": [{"name": "a", "image": "x"}]}
    p = pod({"spec": spec, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Init:0/1"
    p = pod({"spec": spec, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Init:CrashLoopBackOff"
    p = pod({"spec": spec, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i", "state": {"terminated": {"exitCode": 3}}}]}})
    assert cells.pod_status(p, NOW)[1] == "Init:ExitCode:3"
    p = pod({"spec": spec, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]}})
    assert cells.pod_status(p, NOW)[1] == "ContainerCreating"


def test_sidecar_counts_in_ready() -> None:
    spec = {"initContainers": [{"name": "s", "image": "x", "restartPolicy": "Always"}],
            "containers": [{"name": "a", "image": "x"}]}
    p = pod({"spec": spec, "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                                      "initContainerStatuses": [{"name": "s", "ready": True, "started": True,
                                                                 "state": {"running": {}}}],
                                      "containerStatuses": [{"name": "a", "ready": True, "state": {"running": {}}}]}})
    assert cells.pod_status(p, NOW)[:2] == ("2/2", "Running")


def test_tabwrite_matches_go() -> None:
    text = printers.render_table(["NAME", "READY", "STATUS"], [["web-1", "1/1", "Running"], ["a", "0/1", "X"]])
    assert text.splitlines() == [
        "NAME    READY   STATUS",
        "web-1   1/1     Running",
        "a       0/1     X",
    ]


def test_pod_columns_wide_labels_namespaces() -> None:
    info = kinds.for_class(core.Pod)
    p = pod({"metadata": {"labels": {"app": "web", "a": "b"}}, "spec": {"nodeName": "n1"},
             "status": {"phase": "Running", "podIP": "10.0.0.5"}})
    assert printers.headers_for(info, wide=True, show_labels=True, all_namespaces=True) == [
        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
        "READINESS GATES", "LABELS"]
    row = printers.row_for(info, p, NOW, wide=True, show_labels=True, all_namespaces=True)
    assert row[0:2] == ["default", "p"]
    assert row[6:10] == ["10.0.0.5", "n1", "<none>", "<none>"]
    assert row[-1] == "a=b,app=web"


def test_deployment_and_service_columns() -> None:
    d = codec.from_dict({"metadata": {"name": "web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}, apps.Deployment)
    row = printers.row_for(kinds.for_class(apps.Deployment), d, NOW, wide=True)
    assert row == ["web", "2/3", "3", "2", "<unknown>", "c", "nginx", "app=web"]
    s = codec.from_dict({"metadata": {"name": "svc"}, "spec": {
        "type": "NodePort", "clusterIP": "10.96.0.10",
        "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}}, core.Service)
    assert printers.row_for(kinds.for_class(core.Service), s, NOW)[:5] == [
        "svc", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP"]
    lb = codec.from_dict({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}}, core.Service)
    assert cells.service_external_ip(lb) == "<pending>"


def test_endpoints_nodes_events() -> None:
    ep = codec.from_dict({"metadata": {"name": "e"}, "subsets": [{
        "addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 80}]}]}, core.Endpoints)
    assert cells.format_endpoints(ep) == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    n = codec.from_dict({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
                         "spec": {"unschedulable": True},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                    "nodeInfo": {"kubeletVersion": "v1.0"}}}, core.Node)
    assert printers.row_for(kinds.for_class(core.Node), n, NOW) == [
        "n", "Ready,SchedulingDisabled", "control-plane", "<unknown>", "v1.0"]
    ev = codec.from_dict({"metadata": {"name": "e1", "namespace": "default"}, "type": "Warning",
                          "reason": "BackOff", "message": "back-off", "count": 3,
                          "involvedObject": {"kind": "Pod", "name": "web-1"},
                          "firstTimestamp": "2023-11-14T22:00:00Z", "lastTimestamp": "2023-11-14T22:13:00Z"},
                         core.Event)
    info = kinds.for_class(core.Event)
    assert printers.headers_for(info) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert printers.row_for(info, ev, NOW) == ["20s (x3 over 13m)", "Warning", "BackOff", "pod/web-1", "back-off"]


def test_kind_prefix_for_multiple_types() -> None:
    info = kinds.for_class(apps.Deployment)
    d = codec.from_dict({"metadata": {"name": "web"}}, apps.Deployment)
    assert printers.row_for(info, d, NOW, with_kind=True)[0] == "deployment.apps/web"
