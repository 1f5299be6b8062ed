"""pbctl logs and exec reach the container through the apiserver, which proxies to the pod's kubelet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbctl.main import run as pbctl
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
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


async def _contains(coro: object, needle: str) -> bool:
    return needle in await coro  # type: ignore[misc]
