"""The kubelet's token manager (node_agent.tokens): tokens requested bound to the pod, cached, due at 80 % of
their lifetime; and the `kubernetes` Service's variables every container gets (runtime.service_env)."""

from __future__ import annotations

from typing import Any, cast

from node_agent import runtime
from node_agent.tokens import TokenManager
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core


class FakeClient:
    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.calls: list[tuple[str, str, list[str], int | None, tuple[str, str] | None]] = []

    async def create_token(self, namespace: str, account: str, *, audiences: list[str],
                           expiration_seconds: int | None, bound_pod: tuple[str, str] | None) -> authn.TokenRequest:
        self.calls.append((namespace, account, audiences, expiration_seconds, bound_pod))
        tr = authn.TokenRequest()
        tr.status.token = f"jwt-{len(self.calls)}"
        tr.status.expiration_timestamp.seconds = int(self.now[0]) + (expiration_seconds or 3600)
        return tr


def pod() -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = "web", "team", "uid-1"
    p.spec.service_account_name = "robot"
    return p


async def test_tokens_are_bound_to_the_pod_cached_and_refreshed_at_80_percent() -> None:
    now = [1000.0]
    client = FakeClient(now)
    tm = TokenManager(cast(Any, client), clock=lambda: now[0])
    assert await tm.token(pod(), "", 3600) == b"jwt-1"
    assert client.calls == [("team", "robot", [], 3600, ("web", "uid-1"))]
    now[0] += 0.8 * 3600 - 1
    assert not tm.due("uid-1") and await tm.token(pod(), "", 3600) == b"jwt-1"
    now[0] += 1
    assert tm.due("uid-1")
    assert await tm.token(pod(), "", 3600) == b"jwt-2" and not tm.due("uid-1")
    await tm.token(pod(), "vault", 600)  # another audience: its own token
    assert client.calls[-1][2:4] == (["vault"], 600)
    tm.forget("uid-1")
    assert not tm.due("uid-1")


def test_kubernetes_service_variables() -> None:
    svc = core.Service()
    svc.metadata.name = "kubernetes"
    svc.spec.cluster_ip = "10.96.0.1"
    svc.spec.ports.add(name="https", port=443, protocol="TCP")
    assert runtime.service_env(svc) == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}
    svc.spec.cluster_ip = "None"
    assert runtime.service_env(svc) == {}
