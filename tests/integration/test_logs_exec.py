"""pbctl logs and exec reach the container through the apiserver, which proxies to the pod's kubelet over mTLS;
the kubelet API itself refuses every other client at the handshake (no certificate, a foreign CA's) or, for
another identity the cluster CA vouches for, with 403."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from pbctl.main import run as pbctl
from pybernetes import errors, pkiutil, tls
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from tests.helpers import eventually
from tests.integration import fixtures_kubelet
from tests.integration.conftest import ApiServer
from tests.integration.fixtures_kubelet import KubeletRunner, kubelet_config, make_pod
from tests.integration.fixtures_node import CRINode

pytestmark = pytest.mark.integration

lab_images = fixtures_kubelet.lab_images
lab_network = fixtures_kubelet.lab_network
cri_node = fixtures_kubelet.cri_node


@pytest.fixture
async def node(apiserver: ApiServer, cri_node: CRINode, tmp_path: Path) -> AsyncIterator[ApiServer]:
    # The node's InternalIP is loopback so the in-process apiserver can reach this kubelet's API.
    runner = KubeletRunner(kubelet_config(apiserver, cri_node, tmp_path / "kubelet", node_ip="127.0.0.1"))
    await runner.start()
    try:
        yield apiserver
    finally:
        await runner.stop()
        await cri_node.containerd.remove_all_pods()


async def running(api: ApiServer, name: str) -> core.Pod:
    async def check() -> core.Pod | None:
        p = await api.client.get(core.Pod, name, namespace="default")
        return p if p.status.phase == "Running" else None

    return await eventually(check, timeout=60, what=f"pod {name} Running")


async def test_logs_tail_follow_and_previous(node: ApiServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    api = node
    # stdout and stderr are separate pipes: keep their writes apart in time so the log's order is defined.
    await api.client.create(make_pod("talker", ["sh", "-c", "for i in 1 2 3; do echo line-$i; done; sleep 0.5; "
                                                "echo oops >&2; sleep 0.5; echo late; sleep 3600"]))
    await running(api, "talker")

    async def text(**kw: object) -> str:
        out = b""
        async for chunk in api.client.pod_logs("default", "talker", **kw):  # type: ignore[arg-type]
            out += chunk
        return out.decode()

    await eventually(lambda: _contains(text(), "late"), timeout=20, what="all lines logged")
    full = await text()
    assert full.splitlines() == ["line-1", "line-2", "line-3", "oops", "late"]
    assert (await text(tail_lines=2)).splitlines() == ["oops", "late"]
    stamped = (await text(tail_lines=1, timestamps=True)).strip()
    assert stamped.endswith(" late") and stamped[:4].isdigit()
    with pytest.raises(errors.BadRequest, match="previous terminated container"):
        await text(previous=True)
    cfg = tmp_path / "pbconfig"
    api.write_kubeconfig(cfg)
    capsys.readouterr()
    assert await pbctl(["--config", str(cfg), "logs", "talker", "--tail", "1"]) == 0
    assert capsys.readouterr().out == "late\n"
    assert await pbctl(["--config", str(cfg), "logs", "nope"]) == 1
    assert 'pods "nope" not found' in capsys.readouterr().err


async def test_exec_output_exit_code_and_stdin(node: ApiServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    api = node
    await api.client.create(make_pod("shell", ["sleep", "3600"]))
    await running(api, "shell")
    outs = [o async for o in api.client.pod_exec("default", "shell", ["sh", "-c", "echo out; echo err >&2; exit 3"])]
    stdout = b"".join(o.stdout for o in outs if o.WhichOneof("output") == "stdout")
    stderr = b"".join(o.stderr for o in outs if o.WhichOneof("output") == "stderr")
    assert stdout == b"out\n" and stderr == b"err\n"
    assert outs[-1].WhichOneof("output") == "exit_code" and outs[-1].exit_code == 3

    async def feed() -> AsyncIterator[bytes]:
        yield b"hello "
        await asyncio.sleep(0.1)
        yield b"world\n"

    outs = [o async for o in api.client.pod_exec("default", "shell", ["cat"], stdin=feed())]
    assert b"".join(o.stdout for o in outs if o.WhichOneof("output") == "stdout") == b"hello world\n"
    assert outs[-1].exit_code == 0
    cfg = tmp_path / "pbconfig"
    api.write_kubeconfig(cfg)
    capsys.readouterr()
    assert await pbctl(["--config", str(cfg), "exec", "shell", "--", "hostname"]) == 0
    assert capsys.readouterr().out.strip() == "shell"
    assert await pbctl(["--config", str(cfg), "exec", "shell", "--", "sh", "-c", "exit 7"]) == 7
    assert "command terminated with exit code 7" in capsys.readouterr().err
    with pytest.raises(errors.BadRequest, match="container nope is not valid"):
        [o async for o in api.client.pod_exec("default", "shell", ["true"], container="nope")]


async def _stats(port: int, server_cert: bytes, client: tls.CertPair | None) -> pb.StatsSummary:
    """The kubelet's Stats, asked directly (not through the apiserver), trusting its serving certificate."""
    creds = grpc.ssl_channel_credentials(server_cert, client.key.read_bytes() if client else None,
                                         client.cert.read_bytes() if client else None)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
        out: pb.StatsSummary = await pb_grpc.KubeletStub(ch).Stats(pb.StatsRequest(), timeout=10)
        return out


async def test_kubelet_api_only_for_the_apiserver(node: ApiServer, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from services.apiserver.kubelet_proxy import peer_certificate

    api = node
    n = await api.client.get(core.Node, fixtures_kubelet.NODE_NAME)
    port = n.status.daemon_endpoints.kubelet_endpoint.port
    pki = api.cfg.data_dir / "pki"
    apiserver_client = pkiutil.ensure_kubelet_client_cert(pki)
    server_cert = await peer_certificate("127.0.0.1", port, apiserver_client)
    # The apiserver's kubelet client certificate is let in (what the refusals below are measured against).
    assert (await _stats(port, server_cert, apiserver_client)).node.cpu.time > 0
    # No client certificate, or one from another CA naming the same user and system:masters: refused at the
    # handshake (gRPC never gets to the method: UNAVAILABLE).
    foreign = pkiutil.ensure_client_cert(tmp_path / "foreign", "impostor", tls.KUBELET_CLIENT_NAME,
                                         (tls.MASTERS_GROUP,))
    for who in (None, foreign):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _stats(port, server_cert, who)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    # Another identity the cluster CA signed (a node's) passes the handshake, but may not use the API.
    other_node = pkiutil.ensure_client_cert(pki, "node-2", "system:node:node-2", (tls.NODES_GROUP,))
    with pytest.raises(grpc.aio.AioRpcError) as forbidden:
        await _stats(port, server_cert, other_node)
    assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "user=system:node:node-2" in (forbidden.value.details() or "")
    # Meanwhile logs and exec through the apiserver work.
    await api.client.create(make_pod("mtls", ["sh", "-c", "echo through-the-apiserver; sleep 3600"]))
    await running(api, "mtls")
    cfg = tmp_path / "pbconfig"
    api.write_kubeconfig(cfg)
    await eventually(lambda: _contains(_logs(api, "mtls"), "through-the-apiserver"), timeout=20, what="logged")
    capsys.readouterr()
    assert await pbctl(["--config", str(cfg), "logs", "mtls"]) == 0
    assert capsys.readouterr().out == "through-the-apiserver\n"
    assert await pbctl(["--config", str(cfg), "exec", "mtls", "--", "echo", "exec-ok"]) == 0
    assert capsys.readouterr().out == "exec-ok\n"


async def _logs(api: ApiServer, name: str) -> str:
    return b"".join([c async for c in api.client.pod_logs("default", name)]).decode()


async def _contains(coro: object, needle: str) -> bool:
    return needle in await coro  # type: ignore[misc]
