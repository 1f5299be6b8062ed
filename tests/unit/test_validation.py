"""Server-side validation: every rule, with Kubernetes' exact paths and messages, table-driven."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message

from pybernetes.api import codec, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.errors import FieldError
from services.apiserver.registry import apply_defaults, validate, validate_status_update
from services.apiserver.registry.core.pod import POD_UPDATE_FORBIDDEN
from services.apiserver.registry.field import Errs
from services.apiserver.registry.formats import DNS1123_SUBDOMAIN_FMT, is_dns1123_label, is_qualified_name
from services.apiserver.registry.required import walk_required

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 f"validation is '{DNS1123_SUBDOMAIN_FMT}')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")

# -- valid examples of every kind -------------------------------------------------------------------------

CONTAINER: dict[str, Any] = {"name": "web", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 80}]}
POD_SPEC: dict[str, Any] = {"containers": [CONTAINER]}
TEMPLATE: dict[str, Any] = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}

EXAMPLES: dict[str, dict[str, Any]] = {
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
    "Node": {"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"}},
             "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "dedicated", "value": "gpu",
                                                              "effect": "NoSchedule"}]}},
    "Pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "default",
                                                            "labels": {"app": "web"}},
            "spec": {**POD_SPEC, "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}],
                     "containers": [{**CONTAINER, "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                     "env": [{"name": "MODE", "value": "prod"},
                                             {"name": "POD",
                                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                     "resources": {"limits": {"cpu": "1", "memory": "128Mi"},
                                                   "requests": {"cpu": "100m"}},
                                     "readinessProbe": {"httpGet": {"port": "http"}},
                                     "livenessProbe": {"tcpSocket": {"port": 80}}}],
                     "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}}},
    "Service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                                              {"name": "https", "port": 443}]}},
    "Endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                  "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}]},
    "ServiceAccount": {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "default", "namespace": "default"}},
    "LimitRange": {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": "default"},
                   "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"},
                                        "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "200m"},
                                        "maxLimitRequestRatio": {"cpu": "4"}}]}},
    "ResourceQuota": {"apiVersion": "v1", "kind": "ResourceQuota",
                      "metadata": {"name": "compute", "namespace": "default"},
                      "spec": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi"},
                               "scopes": ["NotTerminating"]}},
    "ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                  "data": {"app.conf": "x=1"}, "binaryData": {"blob": "AAE="}},
    "Secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
               "stringData": {"password": "hunter2"}},
    "Event": {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web-0.1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
              "reason": "Scheduled", "type": "Normal", "count": 1},
    "ReplicationController": {"apiVersion": "v1", "kind": "ReplicationController",
                              "metadata": {"name": "web", "namespace": "default"}, "spec": {"template": TEMPLATE}},
    "Binding": {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0", "namespace": "default"},
                "target": {"kind": "Node", "name": "node-1"}},
    "Deployment": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}},
    "ReplicaSet": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "default"},
                   "spec": {"replicas": 2, "selector": {"matchExpressions": [
                       {"key": "app", "operator": "In", "values": ["web"]}]}, "template": TEMPLATE}},
    "Job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"manualSelector": True, "selector": {"matchLabels": {"app": "web"}},
                     "template": {**TEMPLATE, "spec": {**POD_SPEC, "restartPolicy": "Never"}}}},
    "CronJob": {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "default"},
                "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {
                    "spec": {**POD_SPEC, "restartPolicy": "OnFailure"}}}}}},
    "DaemonSet": {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}},
    "StatefulSet": {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"serviceName": "web", "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                             "template": TEMPLATE}},
    "Role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "pod-reader", "namespace": "default"},
             "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]},
    "ClusterRole": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "system:monitoring"},
                    "rules": [{"nonResourceURLs": ["/metrics", "/healthz/*"], "verbs": ["get"]}],
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}},
    "RoleBinding": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "read-pods", "namespace": "default"},
                    "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                                 {"kind": "ServiceAccount", "name": "default"}],
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"}},
    "ClusterRoleBinding": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                           "metadata": {"name": "system:monitoring"},
                           "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                         "name": "system:monitoring"},
                                        {"kind": "ServiceAccount", "name": "prom", "namespace": "monitoring"}],
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                       "name": "system:monitoring"}},
    "Lease": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
              "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
              "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
    "EndpointSlice": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "web-abcde", "namespace": "default", "labels": {
                          "kubernetes.io/service-name": "web",
                          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True},
                                     "hostname": "web-0", "nodeName": "node-1",
                                     "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0"}}],
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
}


def build(kind: str, mutate: Callable[[dict[str, Any]], Any] | None = None, *, defaults: bool = True) -> Message:
    doc = copy.deepcopy(EXAMPLES[kind])
    if mutate is not None:
        mutate(doc)
    obj = codec.parse_object(doc)
    if defaults:
        apply_defaults(obj)
    return obj


def lines(errs: list[FieldError]) -> list[str]:
    return [str(e) for e in errs]


def test_every_kind_has_an_example() -> None:
    # The review kinds are never stored, so never validated by the registry (services/apiserver/reviews.py).
    assert {r.kind for r in kinds.RESOURCES if r.plural not in kinds.REVIEWS} == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_defaulted_example_is_valid(kind: str) -> None:
    assert lines(validate(build(kind))) == []


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_unchanged_update_is_valid(kind: str) -> None:
    assert lines(validate(build(kind), old=build(kind))) == []


# -- create rules ----------------------------------------------------------------------------------------

def spec(doc: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = doc["spec"]
    return s


def c0(doc: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = doc["spec"]["containers"][0]
    return c


def tpl(doc: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = doc["spec"]["template"]
    return t


def setitem(d: dict[str, Any], k: str, v: Any) -> dict[str, Any]:
    """Assignment as an expression, for the lambdas below."""
    d[k] = v
    return d


# (id, kind, mutation, expected "path: message" line)
RULES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    # LimitRange, ResourceQuota
    ("limit type", "LimitRange", lambda d: setitem(spec(d)["limits"][0], "type", "Node"),
     'spec.limits[0].type: Unsupported value: "Node": supported values: "Container", "PersistentVolumeClaim", '
     '"Pod"'),
    ("limit default over max", "LimitRange", lambda d: setitem(spec(d)["limits"][0], "default", {"cpu": "3"}),
     'spec.limits[0].default[cpu]: Invalid value: "3": default value 3 is greater than max value 2'),
    ("limit ratio", "LimitRange", lambda d: setitem(spec(d)["limits"][0], "maxLimitRequestRatio", {"cpu": "0.5"}),
     'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "0.5": ratio 0.5 is less than 1'),
    ("quota negative", "ResourceQuota", lambda d: setitem(spec(d)["hard"], "pods", "-1"),
     'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0'),
    ("quota scope", "ResourceQuota", lambda d: setitem(spec(d), "scopes", ["Sometimes"]),
     'spec.scopes[0]: Unsupported value: "Sometimes": supported values: "BestEffort", "NotBestEffort", '
     '"NotTerminating", "Terminating"'),
    # metadata
    ("name required", "Pod", lambda d: d["metadata"].pop("name"),
     "metadata.name: Required value: name or generateName is required"),
    ("name subdomain", "Pod", lambda d: setitem(d["metadata"], "name", "Foo_Bar"),
     f'metadata.name: Invalid value: "Foo_Bar": {SUBDOMAIN_MSG}'),
    ("namespace name label", "Namespace", lambda d: setitem(d["metadata"], "name", "a.b"),
     f'metadata.name: Invalid value: "a.b": {LABEL_MSG}'),
    ("service name DNS-1035", "Service", lambda d: setitem(d["metadata"], "name", "1web"),
     'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters '
     "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
     "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
    ("namespace required", "Pod", lambda d: d["metadata"].pop("namespace"), "metadata.namespace: Required value"),
    ("namespace forbidden", "Node", lambda d: setitem(d["metadata"], "namespace", "default"),
     "metadata.namespace: Forbidden: not allowed on this type"),
    ("label value", "Pod", lambda d: setitem(d["metadata"], "labels", {"app": "a b"}),
     'metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric '
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
     "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
     ),
    ("label value too long", "Pod", lambda d: setitem(d["metadata"], "labels", {"app": "a" * 64}),
     f'metadata.labels: Invalid value: "{"a" * 64}": must be no more than 63 characters'),
    ("label key", "Pod", lambda d: setitem(d["metadata"], "labels", {"-bad": "x"}),
     'metadata.labels: Invalid value: "-bad": name part must consist of alphanumeric characters, \'-\', \'_\' or '
     "'.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
     "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("annotation key", "Pod", lambda d: setitem(d["metadata"], "annotations", {"a/b/c": "x"}),
     'metadata.annotations: Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
     "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
     "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
     "subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    ("annotations size", "Pod", lambda d: setitem(d["metadata"], "annotations", {"big": "x" * (256 * 1024)}),
     "metadata.annotations: Too long: may not be more than 262144 bytes"),
    ("finalizer name", "Pod", lambda d: setitem(d["metadata"], "finalizers", ["custom"]),
     'metadata.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
     "qualified"),
    ("owner reference", "Pod", lambda d: setitem(d["metadata"], "ownerReferences",
                                                 [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}]),
     'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'),
    # pod spec
    ("containers required", "Pod", lambda d: setitem(spec(d), "containers", []), "spec.containers: Required value"),
    ("container name required", "Pod", lambda d: c0(d).pop("name"), "spec.containers[0].name: Required value"),
    ("container name label", "Pod", lambda d: setitem(c0(d), "name", "Web"),
     f'spec.containers[0].name: Invalid value: "Web": {LABEL_MSG}'),
    ("container name duplicate", "Pod", lambda d: spec(d)["containers"].append({"name": "web", "image": "x"}),
     'spec.containers[1].name: Duplicate value: "web"'),
    ("init name duplicate", "Pod", lambda d: setitem(spec(d)["initContainers"][0], "name", "web"),
     'spec.initContainers[0].name: Duplicate value: "web"'),
    ("image required", "Pod", lambda d: c0(d).pop("image"), "spec.containers[0].image: Required value"),
    ("restartPolicy", "Pod", lambda d: setitem(spec(d), "restartPolicy", "Sometimes"),
     'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    ("dnsPolicy", "Pod", lambda d: setitem(spec(d), "dnsPolicy", "Google"),
     'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
     '"Default", "None"'),
    ("dnsConfig with None", "Pod", lambda d: setitem(spec(d), "dnsPolicy", "None"),
     "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ("imagePullPolicy", "Pod", lambda d: setitem(c0(d), "imagePullPolicy", "Sometimes"),
     'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
     '"IfNotPresent", "Never"'),
    ("container port range", "Pod", lambda d: setitem(c0(d), "ports", [{"containerPort": 70000}]),
     "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("container port required", "Pod", lambda d: setitem(c0(d), "ports", [{"name": "x"}]),
     "spec.containers[0].ports[0].containerPort: Required value"),
    ("container port name length", "Pod", lambda d: setitem(c0(d), "ports", [{"name": "a" * 16, "containerPort": 1}]),
     f'spec.containers[0].ports[0].name: Invalid value: "{"a" * 16}": must be no more than 15 characters'),
    ("container port name dup", "Pod", lambda d: c0(d)["ports"].append({"name": "http", "containerPort": 81}),
     'spec.containers[0].ports[1].name: Duplicate value: "http"'),
    ("container port protocol", "Pod", lambda d: setitem(c0(d), "ports", [{"containerPort": 1, "protocol": "ICMP"}]),
     'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    ("hostPort with hostNetwork", "Pod", lambda d: (setitem(spec(d), "hostNetwork", True),
                                                     setitem(c0(d), "ports", [{"containerPort": 80, "hostPort": 81}])),
     "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"),
    ("volume name dup", "Pod", lambda d: spec(d)["volumes"].append({"name": "data"}),
     'spec.volumes[2].name: Duplicate value: "data"'),
    ("volume name label", "Pod", lambda d: spec(d)["volumes"].append({"name": "Data"}),
     f'spec.volumes[2].name: Invalid value: "Data": {LABEL_MSG}'),
    ("volume two sources", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}}),
     "spec.volumes[2].secret: Forbidden: may not specify more than 1 volume type"),
    ("secret volume name", "Pod", lambda d: spec(d)["volumes"].append({"name": "s", "secret": {}}),
     "spec.volumes[2].secret.secretName: Required value"),
    ("defaultMode", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "c", "configMap": {"name": "x", "defaultMode": 1000}}),
     "spec.volumes[2].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), "
     "both inclusive"),
    ("downwardAPI and projected volumes", "Pod", lambda d: spec(d)["volumes"].extend([
        {"name": "i", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "web", "resource": "limits.memory"}}]}},
        {"name": "p", "projected": {"sources": [
            {"configMap": {"name": "c"}}, {"secret": {"name": "s", "items": [{"key": "k", "path": "a/k"}]}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]), None),
    ("downwardAPI status field", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "i", "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}),
     'spec.volumes[2].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "status.podIP": supported values: '
     '"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"'),
    ("downwardAPI item source", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "i", "downwardAPI": {"items": [{"path": "x"}]}}),
     "spec.volumes[2].downwardAPI.items[0]: Required value: one of fieldRef and resourceFieldRef is required"),
    ("downwardAPI path", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "i", "downwardAPI": {"items": [{"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]}}),
     "spec.volumes[2].downwardAPI.items[0].path: Invalid value: \"../x\": must not contain '..'"),
    ("downwardAPI containerName", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "i", "downwardAPI": {"items": [{"path": "m", "resourceFieldRef": {"resource": "limits.memory"}}]}}),
     "spec.volumes[2].downwardAPI.items[0].resourceFieldRef.containerName: Required value"),
    ("projected source kinds", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "p", "projected": {"sources": [{"secret": {"name": "s"}, "configMap": {"name": "c"}}]}}),
     "spec.volumes[2].projected.sources[0].configMap: Forbidden: may not specify more than 1 volume type per source"),
    ("projected configMap name", "Pod", lambda d: spec(d)["volumes"].append(
        {"name": "p", "projected": {"sources": [{"configMap": {"items": [{"key": "k", "path": "k"}]}}]}}),
     "spec.volumes[2].projected.sources[0].configMap.name: Required value"),
    ("volumeMount not found", "Pod", lambda d: setitem(c0(d), "volumeMounts", [{"name": "nope", "mountPath": "/x"}]),
     'spec.containers[0].volumeMounts[0].name: Not found: "nope"'),
    ("mountPath unique", "Pod", lambda d: c0(d)["volumeMounts"].append({"name": "cfg", "mountPath": "/data"}),
     'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique'),
    ("mountPath required", "Pod", lambda d: setitem(c0(d), "volumeMounts", [{"name": "data"}]),
     "spec.containers[0].volumeMounts[0].mountPath: Required value"),
    ("requests over limits", "Pod", lambda d: setitem(c0(d), "resources", {"limits": {"cpu": "1"},
                                                                            "requests": {"cpu": "2"}}),
     'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ("negative quantity", "Pod", lambda d: setitem(c0(d), "resources", {"requests": {"memory": "-1Mi"}}),
     'spec.containers[0].resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0'),
    ("resource name", "Pod", lambda d: setitem(c0(d), "resources", {"requests": {"gpu": "1"}}),
     'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers'),
    ("extended resource equal", "Pod", lambda d: setitem(c0(d), "resources", {
        "limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}),
     'spec.containers[0].resources.requests: Invalid value: "1": must be equal to example.com/gpu limit of 2'),
    ("probe handler required", "Pod", lambda d: setitem(c0(d), "livenessProbe", {"periodSeconds": 5}),
     "spec.containers[0].livenessProbe: Required value: must specify a handler type"),
    ("probe two handlers", "Pod", lambda d: setitem(c0(d), "livenessProbe", {
        "exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
     "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
    ("probe negative", "Pod", lambda d: setitem(c0(d), "readinessProbe", {
        "exec": {"command": ["true"]}, "initialDelaySeconds": -1}),
     "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("liveness success 1", "Pod", lambda d: setitem(c0(d), "livenessProbe", {
        "exec": {"command": ["true"]}, "successThreshold": 2}),
     "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"),
    ("startup success 1", "Pod", lambda d: setitem(c0(d), "startupProbe", {
        "exec": {"command": ["true"]}, "successThreshold": 3}),
     "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"),
    ("exec command", "Pod", lambda d: setitem(c0(d), "livenessProbe", {"exec": {}}),
     "spec.containers[0].livenessProbe.exec.command: Required value"),
    ("probe port name", "Pod", lambda d: setitem(c0(d), "livenessProbe", {"tcpSocket": {"port": "HTTP"}}),
     'spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "HTTP": must contain only alpha-numeric '
     "characters (a-z, 0-9), and hyphens (-)"),
    ("init probes forbidden", "Pod", lambda d: setitem(spec(d)["initContainers"][0], "readinessProbe",
                                                       {"exec": {"command": ["true"]}}),
     "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
     "restartPolicy=Always"),
    ("env name", "Pod", lambda d: setitem(c0(d), "env", [{"name": "A=B"}]),
     'spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only '
     "of printable ASCII characters other than '='"),
    ("env name required", "Pod", lambda d: setitem(c0(d), "env", [{"value": "x"}]),
     "spec.containers[0].env[0].name: Required value"),
    ("env valueFrom and value", "Pod", lambda d: setitem(c0(d), "env", [
        {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
     'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'),
    ("toleration operator", "Pod", lambda d: setitem(spec(d), "tolerations", [{"key": "k", "operator": "Maybe"}]),
     'spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"'),
    ("toleration exists value", "Pod", lambda d: setitem(spec(d), "tolerations", [
        {"key": "k", "operator": "Exists", "value": "v"}]),
     'spec.tolerations[0].operator: Invalid value: core.Toleration{Key:"k", Operator:"Exists", Value:"v", '
     'Effect:"", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is \'Exists\''),
    ("toleration effect", "Pod", lambda d: setitem(spec(d), "tolerations", [{"key": "k", "effect": "Never"}]),
     'spec.tolerations[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", '
     '"NoExecute"'),
    ("tolerationSeconds needs NoExecute", "Pod", lambda d: setitem(spec(d), "tolerations", [
        {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     'spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' when '
     "`tolerationSeconds` is set"),
    ("toleration empty key", "Pod", lambda d: setitem(spec(d), "tolerations", [{"operator": "Equal"}]),
     'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
     'means "match all values and all keys"'),
    ("nodeSelector", "Pod", lambda d: setitem(spec(d), "nodeSelector", {"disk": "ss d"}),
     'spec.nodeSelector: Invalid value: "ss d": a valid label must be an empty string or consist of alphanumeric '
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
     "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
     ),
    ("affinity operator", "Pod", lambda d: setitem(
        spec(d)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        ["matchExpressions"][0], "operator", "Near"),
     "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     '.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'),
    ("affinity values", "Pod", lambda d: setitem(
        spec(d)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        ["matchExpressions"][0], "values", []),
     "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ("pod anti-affinity weight", "Pod", lambda d: setitem(spec(d), "affinity", {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}),
     "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: "
     "must be in the range 1-100"),
    ("activeDeadlineSeconds", "Pod", lambda d: setitem(spec(d), "activeDeadlineSeconds", 0),
     "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    ("ephemeral on create", "Pod", lambda d: setitem(spec(d), "ephemeralContainers", [{"name": "dbg", "image": "x"}]),
     "spec.ephemeralContainers: Forbidden: cannot be set on create"),
    ("generic required", "Pod", lambda d: setitem(c0(d), "env", [{"name": "A", "valueFrom": {
        "configMapKeyRef": {"name": "cm"}}}]),
     "spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Required value"),
    # service
    ("service ports required", "Service", lambda d: setitem(spec(d), "ports", []), "spec.ports: Required value"),
    ("service port range", "Service", lambda d: setitem(spec(d), "ports", [{"port": 0}]),
     "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"),
    ("service port names required", "Service", lambda d: spec(d)["ports"][1].pop("name"),
     "spec.ports[1].name: Required value"),
    ("service port name dup", "Service", lambda d: setitem(spec(d)["ports"][1], "name", "http"),
     'spec.ports[1].name: Duplicate value: "http"'),
    ("service duplicate port", "Service", lambda d: setitem(spec(d)["ports"][1], "port", 80),
     'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
     'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'),
    ("service targetPort", "Service", lambda d: setitem(spec(d)["ports"][0], "targetPort", 65536),
     "spec.ports[0].targetPort: Invalid value: 65536: must be between 1 and 65535, inclusive"),
    ("service targetPort name", "Service", lambda d: setitem(spec(d)["ports"][0], "targetPort", "no--way"),
     'spec.ports[0].targetPort: Invalid value: "no--way": must not contain consecutive hyphens'),
    ("service type", "Service", lambda d: setitem(spec(d), "type", "Magic"),
     'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
     '"NodePort"'),
    ("service affinity", "Service", lambda d: setitem(spec(d), "sessionAffinity", "Sticky"),
     'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'),
    ("service nodePort on ClusterIP", "Service", lambda d: setitem(spec(d)["ports"][0], "nodePort", 30080),
     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    ("service clusterIP", "Service", lambda d: setitem(spec(d), "clusterIP", "10.0.0"),
     'spec.clusterIPs[0]: Invalid value: "10.0.0": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("headless NodePort", "Service",
     lambda d: (setitem(spec(d), "clusterIP", "None"), setitem(spec(d), "type", "NodePort")),
     "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    ("externalName required", "Service", lambda d: setitem(spec(d), "type", "ExternalName"),
     "spec.externalName: Required value"),
    # workloads
    ("deployment selector required", "Deployment", lambda d: spec(d).pop("selector"), "spec.selector: Required value"),
    ("deployment selector empty", "Deployment", lambda d: setitem(spec(d), "selector", {}),
     "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"),
    ("deployment selector mismatch", "Deployment", lambda d: setitem(tpl(d)["metadata"], "labels", {"app": "db"}),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"db"}: `selector` does not match '
     "template `labels`"),
    ("deployment template image", "Deployment", lambda d: tpl(d)["spec"]["containers"][0].pop("image"),
     "spec.template.spec.containers[0].image: Required value"),
    ("deployment restartPolicy", "Deployment", lambda d: setitem(tpl(d)["spec"], "restartPolicy", "OnFailure"),
     'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'),
    ("deployment replicas", "Deployment", lambda d: setitem(spec(d), "replicas", -1),
     "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    ("deployment strategy type", "Deployment", lambda d: setitem(spec(d), "strategy", {"type": "Blue"}),
     'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"Blue", '
     'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"'),
    ("recreate with rollingUpdate", "Deployment", lambda d: setitem(spec(d), "strategy", {
        "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    ("both zero", "Deployment", lambda d: setitem(spec(d), "strategy", {"rollingUpdate": {"maxSurge": 0,
                                                                                        "maxUnavailable": "0%"}}),
     'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: '
     "may not be 0 when `maxSurge` is 0"),
    ("bad percent", "Deployment", lambda d: setitem(spec(d), "strategy", {"rollingUpdate": {"maxSurge": "ten"}}),
     'spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"ten"}: '
     "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used "
     "for validation is '[0-9]+%')"),
    ("over 100%", "Deployment", lambda d: setitem(spec(d), "strategy", {"rollingUpdate": {"maxUnavailable": "150%"}}),
     'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
     'StrVal:"150%"}: must not be greater than 100%'),
    ("negative maxSurge", "Deployment", lambda d: setitem(spec(d), "strategy", {"rollingUpdate": {"maxSurge": -1}}),
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"),
    ("progress deadline", "Deployment", lambda d: (setitem(spec(d), "minReadySeconds", 700)),
     "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"),
    ("replicaset selector mismatch", "ReplicaSet", lambda d: setitem(
        spec(d)["selector"]["matchExpressions"][0], "values", ["db"]),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
     "template `labels`"),
    ("replicaset selector operator", "ReplicaSet", lambda d: setitem(
        spec(d)["selector"]["matchExpressions"][0], "operator", "Near"),
     'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'),
    ("rc selector mismatch", "ReplicationController", lambda d: setitem(spec(d), "selector", {"app": "db"}),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
     "template `labels`"),
    ("rc restartPolicy", "ReplicationController", lambda d: setitem(tpl(d)["spec"], "restartPolicy", "Never"),
     'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    # config
    ("configmap key", "ConfigMap", lambda d: setitem(d, "data", {"a/b": "x"}),
     "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or "
     "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
     ),
    ("configmap dup key", "ConfigMap", lambda d: setitem(d, "data", {"blob": "x"}),
     'data[blob]: Invalid value: "blob": duplicate of key present in binaryData'),
    ("configmap size", "ConfigMap", lambda d: setitem(d, "data", {"big": "x" * (1024 * 1024 + 1)}),
     "Too long: may not be more than 1048576 bytes"),  # the whole object: empty path
    ("secret key", "Secret", lambda d: setitem(d, "stringData", {"..": "x"}),
     'data[..]: Invalid value: "..": must not be \'..\''),
    ("secret size", "Secret", lambda d: setitem(d, "stringData", {"big": "x" * (1024 * 1024 + 1)}),
     "data: Too long: may not be more than 1048576 bytes"),
    ("tls secret", "Secret", lambda d: setitem(d, "type", "kubernetes.io/tls"), "data[tls.crt]: Required value"),
    # node, lease, event, endpoints, binding
    ("node podCIDR", "Node", lambda d: setitem(spec(d), "podCIDR", "10.244.1.0"),
     'spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'),
    ("node taint effect", "Node", lambda d: setitem(spec(d)["taints"][0], "effect", "Evict"),
     'spec.taints[0].effect: Unsupported value: "Evict": supported values: "NoSchedule", "PreferNoSchedule", '
     '"NoExecute"'),
    ("node taint effect required", "Node", lambda d: spec(d)["taints"][0].pop("effect"),
     "spec.taints[0].effect: Required value"),
    ("role url", "Role", lambda d: setitem(d["rules"][0], "nonResourceURLs", ["/x"]),
     'rules[0].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to non-resource URLs'),
    ("role verbs", "Role", lambda d: d["rules"][0].pop("verbs"), "rules[0].verbs: Required value"),
    ("role groups", "Role", lambda d: d["rules"][0].pop("apiGroups"),
     "rules[0].apiGroups: Required value: resource rules must supply at least one api group"),
    ("role name", "Role", lambda d: setitem(d["metadata"], "name", "a/b"),
     "metadata.name: Invalid value: \"a/b\": may not contain '/'"),
    ("binding kind", "ClusterRoleBinding", lambda d: setitem(d["roleRef"], "kind", "Role"),
     'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'),
    ("binding sa ns", "ClusterRoleBinding", lambda d: d["subjects"][1].pop("namespace"),
     "subjects[1].namespace: Required value"),
    ("binding subject", "RoleBinding", lambda d: setitem(d["subjects"][0], "kind", "Robot"),
     'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'),
    ("binding group", "RoleBinding", lambda d: setitem(d["subjects"][0], "apiGroup", ""),
     'subjects[0].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"'),
    ("lease duration", "Lease", lambda d: setitem(spec(d), "leaseDurationSeconds", 0),
     "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
    ("event namespace", "Event", lambda d: setitem(d["involvedObject"], "namespace", "other"),
     'involvedObject.namespace: Invalid value: "other": does not match event.namespace'),
    ("event involvedObject", "Event", lambda d: d.pop("involvedObject"), "involvedObject: Required value"),
    ("event involved namespace", "Event", lambda d: d["involvedObject"].pop("namespace"), None),
    ("endpoints ip", "Endpoints", lambda d: setitem(d["subsets"][0]["addresses"][0], "ip", "nope"),
     'subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or '
     "2001:db8::ffff)"),
    ("endpoints loopback", "Endpoints", lambda d: setitem(d["subsets"][0]["addresses"][0], "ip", "127.0.0.1"),
     'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, '
     "::1/128)"),
    ("endpoints port name", "Endpoints", lambda d: d["subsets"][0]["ports"].append({"port": 81}),
     "subsets[0].ports[0].name: Required value"),
    ("endpoints port duplicate", "Endpoints", lambda d: setitem(d["subsets"][0], "ports", [
        {"name": "http", "port": 80}, {"name": "http", "port": 81}]),
     'subsets[0].ports[1].name: Duplicate value: "http"'),
    ("endpointslice addressType", "EndpointSlice", lambda d: setitem(d, "addressType", "IP"),
     'addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'),
    ("endpointslice addressType required", "EndpointSlice", lambda d: d.pop("addressType"),
     "addressType: Required value"),
    ("endpointslice no address", "EndpointSlice", lambda d: setitem(d["endpoints"][0], "addresses", []),
     "endpoints[0].addresses: Required value: must contain at least 1 address"),
    ("endpointslice too many addresses", "EndpointSlice",
     lambda d: setitem(d["endpoints"][0], "addresses", [f"10.0.0.{i}" for i in range(1, 102)]),
     "endpoints[0].addresses: Too many: 101: must have at most 100 items"),
    ("endpointslice v6 in v4", "EndpointSlice", lambda d: setitem(d["endpoints"][0], "addresses", ["fd00::1"]),
     'endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address'),
    ("endpointslice loopback", "EndpointSlice", lambda d: setitem(d["endpoints"][0], "addresses", ["127.0.0.1"]),
     'endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, '
     "::1/128)"),
    ("endpointslice ipv6", "EndpointSlice", lambda d: (setitem(d, "addressType", "IPv6"),
                                                       setitem(d["endpoints"][0], "addresses", ["fd00::1"])), None),
    ("endpointslice fqdn", "EndpointSlice", lambda d: (setitem(d, "addressType", "FQDN"),
                                                       setitem(d["endpoints"][0], "addresses", ["example.com"])),
     None),
    ("endpointslice fqdn one segment", "EndpointSlice",
     lambda d: (setitem(d, "addressType", "FQDN"), setitem(d["endpoints"][0], "addresses", ["example"])),
     'endpoints[0].addresses[0]: Invalid value: "example": should be a domain with at least two segments '
     "separated by dots"),
    ("endpointslice hostname", "EndpointSlice", lambda d: setitem(d["endpoints"][0], "hostname", "Web_0"),
     'endpoints[0].hostname: Invalid value: "Web_0": a lowercase RFC 1123 label must consist of lower case '
     "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
     "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
    ("endpointslice port protocol", "EndpointSlice", lambda d: setitem(d["ports"][0], "protocol", "HTTP"),
     'ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    ("endpointslice duplicate port", "EndpointSlice", lambda d: d["ports"].append({"name": "http", "port": 81}),
     'ports[1].name: Duplicate value: "http"'),
    ("endpointslice port without port", "EndpointSlice", lambda d: d["ports"][0].pop("port"), None),
    ("endpointslice service-name label", "EndpointSlice",
     lambda d: setitem(d["metadata"]["labels"], "kubernetes.io/service-name", "-bad"),
     'metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric '
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
     "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("endpointslice zone hints", "EndpointSlice",
     lambda d: setitem(d["endpoints"][0], "hints", {"forZones": [{"name": "a"}, {"name": "a"}]}),
     'endpoints[0].hints.forZones[1].name: Duplicate value: "a"'),
    ("binding target", "Binding", lambda d: setitem(d["target"], "kind", "Pod"),
     'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"'),
    ("binding name", "Binding", lambda d: d["target"].pop("name"), "target.name: Required value"),
]


@pytest.mark.parametrize(("kind", "mutate", "want"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(kind: str, mutate: Callable[[dict[str, Any]], Any], want: str | None) -> None:
    got = lines(validate(build(kind, mutate)))
    if want is None:  # a variation that must stay valid
        assert got == []
    else:
        assert want in got, "\n".join(got)


def test_reasons() -> None:
    errs = validate(build("Pod", lambda d: (d["metadata"].pop("name"), setitem(spec(d), "restartPolicy", "X"),
                                            spec(d)["containers"].append({"name": "web", "image": "x"}),
                                            setitem(c0(d), "volumeMounts", [{"name": "z", "mountPath": "/z"}]),
                                            setitem(spec(d), "ephemeralContainers", [{"name": "e", "image": "x"}]),
                                            setitem(spec(d), "activeDeadlineSeconds", 0))))
    by_path = {e.path: e.reason for e in errs}
    assert by_path["metadata.name"] == "FieldValueRequired"
    assert by_path["spec.restartPolicy"] == "FieldValueNotSupported"
    assert by_path["spec.containers[1].name"] == "FieldValueDuplicate"
    assert by_path["spec.containers[0].volumeMounts[0].name"] == "FieldValueNotFound"
    assert by_path["spec.ephemeralContainers"] == "FieldValueForbidden"
    assert by_path["spec.activeDeadlineSeconds"] == "FieldValueInvalid"


def test_undefaulted_pod_reports_required_defaults() -> None:
    got = lines(validate(build("Pod", defaults=False)))
    assert "spec.restartPolicy: Required value" in got
    assert "spec.containers[0].imagePullPolicy: Required value" in got


def test_no_duplicate_errors_for_required_fields() -> None:
    got = lines(validate(build("Pod", lambda d: c0(d).pop("image"))))
    assert got.count("spec.containers[0].image: Required value") == 1
    svc = lines(validate(build("Service", lambda d: setitem(spec(d)["ports"][0], "port", 0))))
    assert "spec.ports[0].port: Required value" not in svc


def test_generate_name_prefix_may_end_in_dash() -> None:
    assert lines(validate(build("Pod", lambda d: setitem(d["metadata"], "generateName", "web-")))) == []


# -- update rules ----------------------------------------------------------------------------------------

UPDATES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("pod image may change", "Pod", lambda d: setitem(c0(d), "image", "nginx:1.28"), None),
    ("pod init image may change", "Pod",
     lambda d: setitem(spec(d)["initContainers"][0], "image", "busybox:latest"), None),
    ("pod deadline may be set", "Pod", lambda d: setitem(spec(d), "activeDeadlineSeconds", 30), None),
    ("pod toleration added", "Pod", lambda d: spec(d)["tolerations"].append({"key": "x", "operator": "Exists"}), None),
    ("pod labels may change", "Pod", lambda d: setitem(d["metadata"], "labels", {"app": "other"}), None),
    ("pod other spec", "Pod", lambda d: setitem(c0(d), "command", ["sh"]), f"spec: Forbidden: {POD_UPDATE_FORBIDDEN}"),
    ("pod nodeName", "Pod", lambda d: setitem(spec(d), "nodeName", "node-1"),
     f"spec: Forbidden: {POD_UPDATE_FORBIDDEN}"),
    ("pod toleration removed", "Pod", lambda d: spec(d)["tolerations"].pop(0),
     "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"),
    ("pod containers added", "Pod", lambda d: spec(d)["containers"].append({"name": "b", "image": "x"}),
     "spec.containers: Forbidden: pod updates may not add or remove containers"),
    ("pod name immutable", "Pod", lambda d: setitem(d["metadata"], "name", "web-1"),
     'metadata.name: Invalid value: "web-1": field is immutable'),
    ("service clusterIP immutable", "Service", lambda d: setitem(spec(d), "clusterIP", "10.96.0.11"),
     'spec.clusterIP: Invalid value: "10.96.0.11": field is immutable'),
    ("service to ExternalName", "Service", lambda d: (setitem(spec(d), "type", "ExternalName"),
                                                      setitem(spec(d), "externalName", "example.com"),
                                                      setitem(spec(d), "clusterIP", ""),
                                                      setitem(spec(d), "clusterIPs", []),
                                                      setitem(spec(d), "ipFamilies", [])), None),
    ("deployment selector immutable", "Deployment",
     lambda d: (setitem(spec(d), "selector", {"matchLabels": {"app": "x"}}),
                setitem(tpl(d)["metadata"], "labels", {"app": "x"})),
     'spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"),
    ("deployment replicas may change", "Deployment", lambda d: setitem(spec(d), "replicas", 5), None),
    ("replicaset selector immutable", "ReplicaSet", lambda d: spec(d)["selector"]["matchExpressions"][0]["values"]
     .append("x"), "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
     'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"In", '
     'Values:[]string{"web", "x"}}}}: field is immutable'),
    ("secret type immutable", "Secret", lambda d: setitem(d, "type", "kubernetes.io/basic-auth"),
     'type: Invalid value: "kubernetes.io/basic-auth": field is immutable'),
    ("endpointslice addressType immutable", "EndpointSlice",
     lambda d: (setitem(d, "addressType", "IPv6"), setitem(d["endpoints"][0], "addresses", ["fd00::1"])),
     'addressType: Invalid value: "IPv6": field is immutable'),
    ("endpointslice endpoints may change", "EndpointSlice",
     lambda d: setitem(d["endpoints"][0], "conditions", {"ready": False}), None),
    ("node podCIDR immutable", "Node", lambda d: setitem(spec(d), "podCIDR", "10.244.2.0/24"),
     'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'),
]


@pytest.mark.parametrize(("kind", "mutate", "want"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES])
def test_update_rule(kind: str, mutate: Callable[[dict[str, Any]], Any], want: str | None) -> None:
    def old_mutate(d: dict[str, Any]) -> None:
        if kind == "Service":
            d["spec"]["clusterIP"] = "10.96.0.10"

    def new_mutate(d: dict[str, Any]) -> None:
        old_mutate(d)
        mutate(d)

    got = lines(validate(build(kind, new_mutate), old=build(kind, old_mutate)))
    if want is None:
        assert got == []
    else:
        assert want in got, "\n".join(got)


def test_pod_update_grace_period_negative_to_one() -> None:
    old = build("Pod", lambda d: setitem(spec(d), "terminationGracePeriodSeconds", -1))
    new = build("Pod", lambda d: setitem(spec(d), "terminationGracePeriodSeconds", 1))
    assert lines(validate(new, old=old)) == []
    new = build("Pod", lambda d: setitem(spec(d), "terminationGracePeriodSeconds", 5))
    assert f"spec: Forbidden: {POD_UPDATE_FORBIDDEN}" in lines(validate(new, old=old))


def test_pod_update_deadline_may_not_grow() -> None:
    old = build("Pod", lambda d: setitem(spec(d), "activeDeadlineSeconds", 30))
    new = build("Pod", lambda d: setitem(spec(d), "activeDeadlineSeconds", 60))
    assert lines(validate(new, old=old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"]


def test_immutable_configmap() -> None:
    old = build("ConfigMap", lambda d: setitem(d, "immutable", True))
    new = build("ConfigMap", lambda d: (setitem(d, "immutable", True), setitem(d, "data", {"k": "v"})))
    assert "data: Forbidden: field is immutable when `immutable` is set" in lines(validate(new, old=old))


# -- status updates -------------------------------------------------------------------------------------

def test_pod_status() -> None:
    old = build("Pod")
    new = build("Pod")
    assert isinstance(new, core.Pod)
    new.status.phase = "Exploded"
    new.status.conditions.add(type="Ready", status="Yes")
    new.status.conditions.add(status="True")
    got = lines(validate_status_update(new, old))
    assert 'status.phase: Unsupported value: "Exploded": supported values: "Pending", "Running", "Succeeded", ' \
           '"Failed", "Unknown"' in got
    assert 'status.conditions[0].status: Unsupported value: "Yes": supported values: "True", "False", "Unknown"' in got
    assert "status.conditions[1].type: Required value" in got
    new.ClearField("status")
    new.status.phase = "Running"
    new.status.pod_ip = "10.244.1.7"
    assert lines(validate_status_update(new, old)) == []


def test_workload_status_counts() -> None:
    old = build("Deployment")
    new = build("Deployment")
    new.status.replicas = 1  # type: ignore[attr-defined]
    new.status.ready_replicas = 2  # type: ignore[attr-defined]
    got = lines(validate_status_update(new, old))
    assert "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas" in got


def test_status_update_keeps_name() -> None:
    old = build("Namespace")
    new = build("Namespace", lambda d: setitem(d["metadata"], "name", "team-b"))
    assert 'metadata.name: Invalid value: "team-b": field is immutable' in lines(validate_status_update(new, old))


# -- helpers --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "ok"), [("a", True), ("a-b", True), ("-a", False), ("A", False),
                                           ("a" * 63, True), ("a" * 64, False)])
def test_dns1123_label(value: str, ok: bool) -> None:
    assert (is_dns1123_label(value) == []) is ok


@pytest.mark.parametrize(("value", "ok"), [("app", True), ("example.com/app", True), ("a/b/c", False),
                                           ("/a", False), ("Example.com/a", False), ("a_b.c-d", True)])
def test_qualified_name(value: str, ok: bool) -> None:
    assert (is_qualified_name(value) == []) is ok


def test_walk_required_covers_repeated_and_maps() -> None:
    errs = Errs()
    walk_required(core.PodSpec(containers=[core.Container()]), "spec", errs)
    assert [str(e) for e in errs] == ["spec.containers[0].name: Required value",
                                      "spec.containers[0].image: Required value"]
    errs = Errs()
    walk_required(core.PodSpec(), "spec", errs)
    assert [str(e) for e in errs] == ["spec.containers: Required value"]
