"""Server-side defaulting: each Kubernetes default, table-driven over Kubernetes JSON in and out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pybernetes.api import codec
from services.apiserver.registry import apply_defaults
from services.apiserver.registry.containers import image_tag

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
}


def defaulted(doc: dict[str, Any]) -> dict[str, Any]:
    obj = codec.parse_object(doc)
    apply_defaults(obj)
    return codec.to_dict(obj)


def pod(**spec: Any) -> dict[str, Any]:
    d = copy.deepcopy(POD)
    d["spec"].update(spec)
    return d


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx:1.27", **fields}


def get(d: Any, path: str) -> Any:
    """`spec.containers.0.ports.0.protocol` style lookup; KeyError when absent."""
    for part in path.split("."):
        d = d[int(part)] if isinstance(d, list) else d[part]
    return d


# (name, input document, path in the output, expected value)
CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("pod restartPolicy", pod(), "spec.restartPolicy", "Always"),
    ("pod dnsPolicy", pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("pod grace period", pod(), "spec.terminationGracePeriodSeconds", 30),
    ("pod schedulerName", pod(), "spec.schedulerName", "default-scheduler"),
    ("pod securityContext", pod(), "spec.securityContext", {}),
    ("pod enableServiceLinks", pod(), "spec.enableServiceLinks", True),
    ("restartPolicy kept", pod(restartPolicy="Never"), "spec.restartPolicy", "Never"),
    ("grace period 0 kept", pod(terminationGracePeriodSeconds=0), "spec.terminationGracePeriodSeconds", 0),
    ("serviceAccount alias", pod(serviceAccount="builder"), "spec.serviceAccountName", "builder"),
    ("termination message path", pod(), "spec.containers.0.terminationMessagePath", "/dev/termination-log"),
    ("termination message policy", pod(), "spec.containers.0.terminationMessagePolicy", "File"),
    ("pull policy tagged", pod(), "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    ("pull policy untagged", pod(containers=[container(image="nginx")]),
     "spec.containers.0.imagePullPolicy", "Always"),
    ("pull policy latest", pod(containers=[container(image="nginx:latest")]),
     "spec.containers.0.imagePullPolicy", "Always"),
    ("pull policy registry port", pod(containers=[container(image="localhost:5000/app")]),
     "spec.containers.0.imagePullPolicy", "Always"),
    ("pull policy digest", pod(containers=[container(image="nginx@sha256:" + "a" * 64)]),
     "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    ("pull policy kept", pod(containers=[container(imagePullPolicy="Never")]),
     "spec.containers.0.imagePullPolicy", "Never"),
    ("init container defaults", pod(initContainers=[container(name="i", image="busybox")]),
     "spec.initContainers.0.imagePullPolicy", "Always"),
    ("container port protocol", pod(containers=[container(ports=[{"containerPort": 80}])]),
     "spec.containers.0.ports.0.protocol", "TCP"),
    ("probe timeout", pod(containers=[container(livenessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.livenessProbe.timeoutSeconds", 1),
    ("probe period", pod(containers=[container(readinessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.readinessProbe.periodSeconds", 10),
    ("probe success", pod(containers=[container(startupProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.startupProbe.successThreshold", 1),
    ("probe failure", pod(containers=[container(livenessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.livenessProbe.failureThreshold", 3),
    ("httpGet scheme", pod(containers=[container(livenessProbe={"httpGet": {"port": 80}})]),
     "spec.containers.0.livenessProbe.httpGet.scheme", "HTTP"),
    ("httpGet path", pod(containers=[container(livenessProbe={"httpGet": {"port": 80}})]),
     "spec.containers.0.livenessProbe.httpGet.path", "/"),
    ("lifecycle httpGet path", pod(containers=[container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]),
     "spec.containers.0.lifecycle.preStop.httpGet.path", "/"),
    ("requests from limits", pod(containers=[container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})]),
     "spec.containers.0.resources.requests", {"cpu": "1", "memory": "1Gi"}),
    ("requests kept", pod(containers=[container(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "100m"}})]),
     "spec.containers.0.resources.requests.cpu", "100m"),
    ("volume emptyDir", pod(volumes=[{"name": "v"}]), "spec.volumes.0.emptyDir", {}),
    ("configMap defaultMode", pod(volumes=[{"name": "v", "configMap": {"name": "cm"}}]),
     "spec.volumes.0.configMap.defaultMode", 420),
    ("secret defaultMode", pod(volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
     "spec.volumes.0.secret.defaultMode", 420),
    ("projected defaultMode", pod(volumes=[{"name": "v", "projected": {"sources": []}}]),
     "spec.volumes.0.projected.defaultMode", 420),
    ("hostPort on hostNetwork", pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 8080}])]),
     "spec.containers.0.ports.0.hostPort", 8080),
    # Service
    ("service type", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                      "spec": {"ports": [{"port": 80}]}}, "spec.type", "ClusterIP"),
    ("service affinity", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                          "spec": {"ports": [{"port": 80}]}}, "spec.sessionAffinity", "None"),
    ("service port protocol", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                               "spec": {"ports": [{"port": 80}]}}, "spec.ports.0.protocol", "TCP"),
    ("service targetPort", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                            "spec": {"ports": [{"port": 80}]}}, "spec.ports.0.targetPort", 80),
    ("service targetPort kept", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                 "spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
     "spec.ports.0.targetPort", "http"),
    ("service client ip timeout", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                   "spec": {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 10800),
    ("service etp NodePort", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                              "spec": {"ports": [{"port": 80}], "type": "NodePort"}},
     "spec.externalTrafficPolicy", "Cluster"),
    ("service itp", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"ports": [{"port": 80}]}}, "spec.internalTrafficPolicy", "Cluster"),
    ("service ipFamilies", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                            "spec": {"ports": [{"port": 80}]}}, "spec.ipFamilies", ["IPv4"]),
    ("service ipFamilyPolicy", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                "spec": {"ports": [{"port": 80}]}}, "spec.ipFamilyPolicy", "SingleStack"),
    ("service clusterIPs mirror", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                   "spec": {"ports": [{"port": 80}], "clusterIP": "10.96.0.10"}},
     "spec.clusterIPs", ["10.96.0.10"]),
    ("LB allocate node ports", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                "spec": {"ports": [{"port": 80}], "type": "LoadBalancer"}},
     "spec.allocateLoadBalancerNodePorts", True),
    # Workloads
    ("deployment replicas", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {}}, "spec.replicas", 1),
    ("deployment replicas 0 kept", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                    "spec": {"replicas": 0}}, "spec.replicas", 0),
    ("deployment strategy", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {}}, "spec.strategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("deployment recreate", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {"strategy": {"type": "Recreate"}}}, "spec.strategy", {"type": "Recreate"}),
    ("deployment history", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                            "spec": {}}, "spec.revisionHistoryLimit", 10),
    ("deployment deadline", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {}}, "spec.progressDeadlineSeconds", 600),
    ("deployment template", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {"template": {"spec": {"containers": [container()]}}}},
     "spec.template.spec.restartPolicy", "Always"),
    ("replicaset replicas", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                             "spec": {}}, "spec.replicas", 1),
    ("replicaset template", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                             "spec": {"template": {"spec": {"containers": [container()]}}}},
     "spec.template.spec.containers.0.terminationMessagePolicy", "File"),
    ("rc replicas", {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"},
                     "spec": {}}, "spec.replicas", 1),
    ("rc selector", {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"},
                     "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                                           "spec": {"containers": [container()]}}}},
     "spec.selector", {"app": "x"}),
    ("rc labels", {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"},
                   "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container()]}}}},
     "metadata.labels", {"app": "x"}),
    # Others
    ("namespace finalizer", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
     "spec.finalizers", ["kubernetes"]),
    ("namespace phase", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, "status.phase", "Active"),
    ("namespace name label", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
     "metadata.labels", {"kubernetes.io/metadata.name": "n"}),
    ("secret type", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}, "type", "Opaque"),
    ("secret stringData", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                           "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}},
     "data", {"a": "eQ==", "b": "aGVsbG8="}),
    ("endpoints port protocol", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
                                 "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
     "subsets.0.ports.0.protocol", "TCP"),
    ("node allocatable", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                          "status": {"capacity": {"cpu": "4"}}}, "status.allocatable", {"cpu": "4"}),
]


@pytest.mark.parametrize(("doc", "path", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_default(doc: dict[str, Any], path: str, want: Any) -> None:
    assert get(defaulted(doc), path) == want


def test_template_gets_no_pod_only_defaults() -> None:
    out = defaulted({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                     "spec": {"template": {"spec": {"containers": [
                         container(resources={"limits": {"cpu": "1"}})]}}}})
    spec = out["spec"]["template"]["spec"]
    assert "tolerations" not in spec
    assert "enableServiceLinks" not in spec
    assert "requests" not in spec["containers"][0]["resources"]


def test_empty_resources_are_no_resources() -> None:
    """`resources: {}` is Kubernetes' zero ResourceRequirements (a value struct): stored as none, so a template
    kubectl sends back with it (rollout undo) is the same template and hashes the same."""
    assert defaulted(pod(containers=[container(resources={})])) == defaulted(pod())
    kept = defaulted(pod(containers=[container(resources={"limits": {"cpu": "1"}})]))
    assert kept["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1"}


def test_pods_get_no_tolerations_from_defaulting() -> None:
    """The not-ready/unreachable tolerations are DefaultTolerationSeconds admission's (test_admission.py), not
    SetDefaults_Pod's."""
    assert "tolerations" not in defaulted(pod())["spec"]


def test_defaulting_is_idempotent() -> None:
    once = defaulted(pod(volumes=[{"name": "v"}]))
    assert defaulted(once) == once


def test_headless_and_external_name_services() -> None:
    ext = defaulted({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "ipFamilies" not in ext["spec"] and "internalTrafficPolicy" not in ext["spec"]
    np = defaulted({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                    "spec": {"ports": [{"port": 80}]}})
    assert "externalTrafficPolicy" not in np["spec"]


def test_session_affinity_none_drops_config() -> None:
    out = defaulted({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"ports": [{"port": 80}], "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}})
    assert "sessionAffinityConfig" not in out["spec"]


def test_namespace_finalizer_not_readded_while_terminating() -> None:
    out = defaulted({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
                     "spec": {}, "status": {"phase": "Terminating"}})
    assert "finalizers" not in out.get("spec", {})


def test_secret_string_data_cleared() -> None:
    out = defaulted({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert "stringData" not in out


@pytest.mark.parametrize(("image", "tag"), [
    ("nginx", "latest"), ("nginx:1.2", "1.2"), ("reg:5000/a/b", "latest"), ("reg:5000/a/b:v1", "v1"),
    ("nginx@sha256:abc", ""), ("nginx:1.2@sha256:abc", ""),
])
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_unregistered_message_is_left_alone() -> None:
    from pybernetes.api.meta.v1 import meta_pb2 as meta

    m = meta.ObjectMeta(name="x")
    apply_defaults(m)
    assert m == meta.ObjectMeta(name="x")
