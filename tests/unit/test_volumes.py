"""The kubelet's downwardAPI and projected volumes (node_agent.runtime.prepare_volumes), written to a temp dir
from a pod and an in-memory configMap/secret getter."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from node_agent import runtime
from pybernetes.api.core.v1 import core_pb2 as core

OBJECTS = {("configmaps", "default", "cfg"): {"greeting": b"hello", "other": b"x"},
           ("secrets", "default", "sec"): {"password": b"s3cret"}}


async def get(kind: str, ns: str, name: str) -> dict[str, bytes] | None:
    return OBJECTS.get((kind, ns, name))


def pod_with(volume: core.Volume) -> core.Pod:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web-1", "default", "uid-1"
    pod.metadata.labels.update({"app": "web", "tier": 'front "end"'})
    pod.metadata.annotations["note"] = "hi"
    pod.spec.node_name = "node-1"
    c = pod.spec.containers.add(name="app")
    c.resources.limits["memory"].string = "64Mi"
    c.resources.requests["cpu"].string = "250m"
    pod.spec.volumes.add().CopyFrom(volume)
    return pod


def read_all(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_downward_api_volume(tmp_path: Path) -> None:
    v = core.Volume(name="info")
    v.downward_api.default_mode = 0o600
    for path, field in (("name", "metadata.name"), ("labels", "metadata.labels"), ("app", "metadata.labels['app']"),
                        ("annotations", "metadata.annotations")):
        v.downward_api.items.add(path=path).field_ref.field_path = field
    mem = v.downward_api.items.add(path="limits/memory", mode=0o644)
    mem.resource_field_ref.container_name, mem.resource_field_ref.resource = "app", "limits.memory"
    mem.resource_field_ref.divisor.string = "1Mi"
    cpu = v.downward_api.items.add(path="limits/cpu")
    cpu.resource_field_ref.container_name, cpu.resource_field_ref.resource = "app", "requests.cpu"
    cpu.resource_field_ref.divisor.string = "1m"
    out = await runtime.prepare_volumes(pod_with(v), tmp_path, get)
    root = Path(out["info"])
    assert read_all(root) == {
        "name": "web-1", "labels": 'app="web"\ntier="front \\"end\\""', "app": "web",
        "annotations": 'note="hi"', "limits/memory": "64", "limits/cpu": "250"}
    assert oct(os.stat(root / "name").st_mode & 0o777) == oct(0o600)
    assert oct(os.stat(root / "limits/memory").st_mode & 0o777) == oct(0o644)


async def test_projected_volume_merges_its_sources(tmp_path: Path) -> None:
    v = core.Volume(name="all")
    v.projected.default_mode = 0o640
    v.projected.sources.add().config_map.name = "cfg"  # every key
    sec = v.projected.sources.add().secret
    sec.name = "sec"
    sec.items.add(key="password", path="creds/pw", mode=0o400)
    missing = v.projected.sources.add().config_map
    missing.name, missing.optional = "absent", True
    v.projected.sources.add().downward_api.items.add(path="podname").field_ref.field_path = "metadata.name"
    out = await runtime.prepare_volumes(pod_with(v), tmp_path, get)
    root = Path(out["all"])
    assert read_all(root) == {"greeting": "hello", "other": "x", "creds/pw": "s3cret", "podname": "web-1"}
    assert oct(os.stat(root / "greeting").st_mode & 0o777) == oct(0o640)
    assert oct(os.stat(root / "creds/pw").st_mode & 0o777) == oct(0o400)


def missing_config_map(v: core.Volume) -> None:
    v.projected.sources.add().config_map.name = "absent"


def missing_key(v: core.Volume) -> None:
    sec = v.projected.sources.add().secret
    sec.name = "sec"
    sec.items.add(key="nope", path="p")


def token(v: core.Volume) -> None:
    v.projected.sources.add().service_account_token.path = "token"


def status_field(v: core.Volume) -> None:
    v.downward_api.items.add(path="ip").field_ref.field_path = "status.podIP"


def unknown_container(v: core.Volume) -> None:
    ref = v.downward_api.items.add(path="m").resource_field_ref
    ref.container_name, ref.resource = "nope", "limits.memory"


@pytest.mark.parametrize("build, message", [
    (missing_config_map, 'configmap "absent" not found'),
    (missing_key, "volume 'bad' source 0: key 'nope' not found"),
    # serviceAccountToken projections are served now, through the kubelet's token manager (none here).
    (token, "volume 'bad' source 0: serviceAccountToken needs the kubelet's API client"),
    (status_field, "fieldRef 'status.podIP' is not supported in volumes"),
    (unknown_container, "no container 'nope'"),
])
async def test_volume_errors_name_the_cause(tmp_path: Path, build: Callable[[core.Volume], None],
                                            message: str) -> None:
    v = core.Volume(name="bad")
    build(v)
    with pytest.raises(runtime.ConfigError) as e:
        await runtime.prepare_volumes(pod_with(v), tmp_path, get)
    assert message in e.value.message


async def test_token_projection_is_written_and_refreshed_in_place(tmp_path: Path) -> None:
    """The kube-api-access volume: token, ca.crt, namespace; a rewrite keeps the directory (bind mounts see the
    new token) and drops files no longer projected."""
    v = core.Volume(name="kube-api-access-abcde")
    v.projected.default_mode = 0o644
    v.projected.sources.add().service_account_token.CopyFrom(
        core.ServiceAccountTokenProjection(path="token", expiration_seconds=3607))
    v.projected.sources.add().config_map.CopyFrom(core.ConfigMapProjection(
        name="kube-root-ca.crt", items=[core.KeyToPath(key="ca.crt", path="ca.crt")]))
    ns = v.projected.sources.add().downward_api.items.add(path="namespace")
    ns.field_ref.field_path = "metadata.namespace"
    asked: list[tuple[str, str, int]] = []

    async def get_ca(kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        return {"ca.crt": b"CA"} if (kind, name) == ("configmaps", "kube-root-ca.crt") else None

    async def token_of(pod: core.Pod, audience: str, seconds: int) -> bytes:
        asked.append((pod.metadata.uid, audience, seconds))
        return f"jwt-{len(asked)}".encode()

    pod = pod_with(v)
    out = await runtime.prepare_volumes(pod, tmp_path, get_ca, token_of)
    root = Path(out["kube-api-access-abcde"])
    assert read_all(root) == {"token": "jwt-1", "ca.crt": "CA", "namespace": "default"}
    assert asked == [("uid-1", "", 3607)]
    inode = root.stat().st_ino
    (root / "stale").write_text("x")
    await runtime.prepare_volumes(pod, tmp_path, get_ca, token_of)
    assert read_all(root) == {"token": "jwt-2", "ca.crt": "CA", "namespace": "default"}
    assert root.stat().st_ino == inode
