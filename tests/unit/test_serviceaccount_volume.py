"""The ServiceAccount token volume pods get at create (services.apiserver.serviceaccount.volume)."""

from __future__ import annotations

from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry import defaults, validation
from services.apiserver.serviceaccount import volume


def pod() -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = "web", "team"
    p.spec.init_containers.add(name="init", image="busybox")
    p.spec.containers.add(name="app", image="busybox")
    return p


def test_volume_and_mounts_as_kubernetes_adds_them() -> None:
    p = pod()
    name = volume.add_token_volume(p, core.ServiceAccount())
    assert name.startswith("kube-api-access-") and len(name) == len("kube-api-access-") + 5
    v = codec.to_dict(p)["spec"]["volumes"][0]
    assert v == {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
    for c in (*p.spec.init_containers, *p.spec.containers):
        assert [(m.name, m.mount_path, m.read_only) for m in c.volume_mounts] == [
            (name, "/var/run/secrets/kubernetes.io/serviceaccount", True)]
    defaults.apply_defaults(p)
    assert validation.validate(p) == []


def test_opt_out_on_the_pod_or_the_account_and_missing_accounts() -> None:
    p = pod()
    p.spec.automount_service_account_token = False
    assert volume.add_token_volume(p, core.ServiceAccount()) == "" and not p.spec.volumes
    p = pod()
    sa = core.ServiceAccount(automount_service_account_token=False)
    assert volume.add_token_volume(p, sa) == "" and not p.spec.volumes
    p.spec.automount_service_account_token = True  # the pod's word wins over its account's
    assert volume.add_token_volume(p, sa)
    p = pod()
    assert volume.add_token_volume(p, None) == "" and not p.spec.volumes


def test_containers_with_their_own_mount_there_are_left_alone() -> None:
    p = pod()
    p.spec.volumes.add(name="mine").empty_dir.SetInParent()
    p.spec.containers[0].volume_mounts.add(name="mine", mount_path=volume.MOUNT_PATH)
    name = volume.add_token_volume(p, core.ServiceAccount())
    assert [m.name for m in p.spec.containers[0].volume_mounts] == ["mine"]
    assert [m.name for m in p.spec.init_containers[0].volume_mounts] == [name]
