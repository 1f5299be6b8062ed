"""Kubernetes' protobuf bodies (what client-go's typed clients send) read into their JSON shape."""

from __future__ import annotations

from typing import Any

import pytest

from pybernetes.api import k8swire


def _envelope(api_version: str, kind: str, obj: Any) -> bytes:
    unknown: Any = k8swire._message("k8s.io.apimachinery.pkg.runtime.Unknown")()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = api_version, kind
    unknown.raw = obj.SerializeToString()
    return k8swire.MAGIC + unknown.SerializeToString()


def test_deployment_with_apimachinery_types() -> None:
    d: Any = k8swire._message("k8s.io.api.apps.v1.Deployment")()
    d.metadata.name = "web"
    d.metadata.labels["app"] = "web"
    d.metadata.creationTimestamp.seconds = 1_700_000_000
    d.spec.replicas = 0  # set to zero: present, as a JSON 0 would be
    d.spec.strategy.rollingUpdate.maxSurge.type = 1
    d.spec.strategy.rollingUpdate.maxSurge.strVal = "25%"
    d.spec.strategy.rollingUpdate.maxUnavailable.intVal = 1
    c = d.spec.template.spec.containers.add()
    c.name, c.image = "nginx", "nginx"
    c.resources.limits["memory"].string = "64Mi"
    c.command.extend(["sh", "-c"])
    out = k8swire.decode(_envelope("apps/v1", "Deployment", d))
    assert out == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {"replicas": 0,
                 "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx", "command": ["sh", "-c"],
                                                       "resources": {"limits": {"memory": "64Mi"}}}]}}},
    }


def test_secret_bytes_and_groups_map_to_packages() -> None:
    s: Any = k8swire._message("k8s.io.api.core.v1.Secret")()
    s.data["p"] = b"s3cret"
    assert k8swire.decode(_envelope("v1", "Secret", s))["data"] == {"p": "czNjcmV0"}
    assert k8swire.package_of("rbac.authorization.k8s.io/v1", "Role") == "k8s.io.api.rbac.v1"
    assert k8swire.package_of("v1", "DeleteOptions") == "k8s.io.apimachinery.pkg.apis.meta.v1"
    assert k8swire._duration(90 * 10**9) == "1m30s"


@pytest.mark.parametrize(("body", "message"), [
    (b'{"kind": "Pod"}', "magic"),
    (k8swire.MAGIC + b"\xff\xff", "envelope"),
])
def test_bad_bodies_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(k8swire.WireError, match=message):
        k8swire.decode(body)


def test_unknown_kind() -> None:
    pod: Any = k8swire._message("k8s.io.api.core.v1.Pod")()
    with pytest.raises(k8swire.WireError, match=r"no protobuf schema for k8s\.io\.api\.core\.v1\.Frobnicator"):
        k8swire.decode(_envelope("v1", "Frobnicator", pod))
