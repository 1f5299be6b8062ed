"""ServiceAccount: every pod runs as a ServiceAccount of its namespace (Kubernetes' plugin of the same name).

On pod create, `admit` names `default` when the pod names none, refuses a pod whose account does not exist
(`error looking up service account NS/NAME: serviceaccount "NAME" not found`; the `default` account is waited
for briefly, as the serviceaccount controller creates it just after its namespace) and copies the account's
imagePullSecrets into a pod that has none. Mirror pods (the kubelet's static pods) are left as they are and
may reference neither accounts nor secrets. The token volume is not this module's (ServiceAccount tokens are).
"""

from __future__ import annotations

import asyncio
import random

from pybernetes.api.core.v1 import core_pb2 as core

from ..storage.store import Store
from . import lookup
from .attributes import CREATE, Attributes, Plugin, forbidden

NAME = "ServiceAccount"
DEFAULT = "default"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_ATTEMPTS = 10  # Kubernetes' retries for the default account, 100-200 ms apart


def is_mirror_pod(pod: core.Pod) -> bool:
    return MIRROR_POD_ANNOTATION in pod.metadata.annotations


def references_secrets(pod: core.Pod) -> bool:
    if pod.spec.image_pull_secrets:
        return True
    for v in pod.spec.volumes:
        if v.HasField("secret") or any(p.HasField("secret") for p in v.projected.sources):
            return True
    for c in [*pod.spec.containers, *pod.spec.init_containers]:
        if any(e.value_from.HasField("secret_key_ref") for e in c.env):
            return True
        if any(ef.HasField("secret_ref") for ef in c.env_from):
            return True
    return False


class ServiceAccount(Plugin):
    name = NAME
    mutating = True
    validating = True

    def __init__(self, store: Store, *, retry_interval: tuple[float, float] = (0.1, 0.2)) -> None:
        self.store = store
        self.retry_interval = retry_interval

    async def _account(self, namespace: str, name: str) -> core.ServiceAccount | None:
        attempts = DEFAULT_ATTEMPTS if name == DEFAULT else 1
        for i in range(attempts):
            if i:
                await asyncio.sleep(random.uniform(*self.retry_interval))
            sa = await lookup.get(self.store, core.ServiceAccount, namespace, name)
            if sa is not None:
                return sa
        return None

    @staticmethod
    def _applies(a: Attributes) -> bool:
        return a.operation == CREATE and not a.subresource and isinstance(a.obj, core.Pod)

    async def admit(self, a: Attributes) -> None:
        pod = a.obj
        if not self._applies(a) or not isinstance(pod, core.Pod) or is_mirror_pod(pod):
            return
        if not pod.spec.service_account_name:
            pod.spec.service_account_name = DEFAULT
        # The deprecated alias follows, as defaulting keeps it on every later write (Kubernetes' v1 shows both).
        pod.spec.service_account = name = pod.spec.service_account_name
        sa = await self._account(a.namespace, name)
        if sa is None:
            raise forbidden(a, f'error looking up service account {a.namespace}/{name}: serviceaccount "{name}" '
                               "not found")
        if not pod.spec.image_pull_secrets:
            pod.spec.image_pull_secrets.extend(sa.image_pull_secrets)

    async def validate(self, a: Attributes) -> None:
        pod = a.obj
        if not self._applies(a) or not isinstance(pod, core.Pod):
            return
        if is_mirror_pod(pod):
            if pod.spec.service_account_name:
                raise forbidden(a, "a mirror pod may not reference service accounts")
            if references_secrets(pod):
                raise forbidden(a, "a mirror pod may not reference secrets")
            return
        if not pod.spec.service_account_name:
            raise forbidden(a, f"no service account specified for pod {a.namespace}/{a.name}")
