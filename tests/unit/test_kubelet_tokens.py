"""The kubelet's token manager (node_agent.tokens): tokens requested bound to the pod, cached, due at 80 % of
their lifetime; and the `kubernetes` Service's variables every container gets (runtime.service_env)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from node_agent import runtime
from node_agent.tokens import TokenManager
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from tests.unit.test_kubelet_sync import Harness, make_pod


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
    assert tm.due("uid-1")  # none held yet (a restarted kubelet's adopted pods): renew
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
    assert tm.due("uid-1")


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


async def test_running_pod_gets_its_token_rewritten_when_due(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    client = FakeClient([h.clock.now()])
    h.syncer.tokens = TokenManager(cast(Any, client), clock=h.clock.now)
    p = make_pod()
    v = p.spec.volumes.add(name="kube-api-access-abcde")
    v.projected.sources.add().service_account_token.CopyFrom(
        core.ServiceAccountTokenProjection(path="token", expiration_seconds=3607))
    await h.syncer.sync_pod(p)
    token = runtime.pod_volume_dir(tmp_path, "uid-1") / "projected" / "kube-api-access-abcde" / "token"
    assert token.read_text() == "jwt-1"
    await h.syncer.sync_pod(p)
    assert len(client.calls) == 1  # not due: the cached token stays
    h.clock.advance(0.8 * 3607)
    client.now[0] = h.clock.now()
    await h.syncer.sync_pod(p)
    assert token.read_text() == "jwt-2" and client.calls[-1][4] == ("web", "uid-1")
