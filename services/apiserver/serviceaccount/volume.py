"""The ServiceAccount token volume every pod gets at create, as Kubernetes' ServiceAccount admission plugin
(plugin/pkg/admission/serviceaccount) mounts it: a projected volume `kube-api-access-<5 random>` with the
token (serviceAccountToken, expirationSeconds 3607, path `token`, which the kubelet requests bound to the pod
and refreshes), `ca.crt` from the namespace's kube-root-ca.crt ConfigMap (published by the controller
manager's rootcacertpublisher) and `namespace` (downwardAPI), mounted read-only at
/var/run/secrets/kubernetes.io/serviceaccount in every container that has nothing mounted there.

Skipped when automountServiceAccountToken is false on the pod, or (the pod saying nothing) on its
ServiceAccount. A pod whose ServiceAccount does not exist gets no volume here; refusing such a pod is the
ServiceAccount admission plugin's job (defaulting serviceAccountName to `default` too).
"""

from __future__ import annotations

import secrets

from pybernetes.api.core.v1 import core_pb2 as core

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607  # Kubernetes' 1 h + 7 s: the kubelet's requests are recognisable by it
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.String alphabet


def automount(pod: core.Pod, sa: core.ServiceAccount | None) -> bool:
    if pod.spec.HasField("automount_service_account_token"):
        return pod.spec.automount_service_account_token
    if sa is not None and sa.HasField("automount_service_account_token"):
        return sa.automount_service_account_token
    return True


def token_volume(name: str) -> core.Volume:
    v = core.Volume(name=name)
    p = v.projected
    p.default_mode = 0o644
    p.sources.add().service_account_token.CopyFrom(
        core.ServiceAccountTokenProjection(path="token", expiration_seconds=TOKEN_EXPIRATION))
    p.sources.add().config_map.CopyFrom(core.ConfigMapProjection(
        name=ROOT_CA_CONFIGMAP, items=[core.KeyToPath(key=ROOT_CA_KEY, path=ROOT_CA_KEY)]))
    f = p.sources.add().downward_api.items.add(path="namespace")
    f.field_ref.api_version, f.field_ref.field_path = "v1", "metadata.namespace"
    return v


def add_token_volume(pod: core.Pod, sa: core.ServiceAccount | None) -> str:
    """Add the token volume and mounts to `pod` (being created); the volume's name, or '' when none was added."""
    if sa is None or not automount(pod, sa):
        return ""
    containers = [c for c in (*pod.spec.init_containers, *pod.spec.containers)
                  if not any(m.mount_path == MOUNT_PATH for m in c.volume_mounts)]
    if not containers:
        return ""
    taken = {v.name for v in pod.spec.volumes}
    name = ""
    while not name or name in taken:
        name = VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    pod.spec.volumes.append(token_volume(name))
    for c in containers:
        c.volume_mounts.add(name=name, read_only=True, mount_path=MOUNT_PATH)
    return name
