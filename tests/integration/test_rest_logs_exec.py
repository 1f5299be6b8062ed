"""pods/log and pods/exec over the REST API with real kubectl v1.33 and the official Python client, through the
apiserver's kubelet proxy to a real kubelet and containerd (run under `flock /tmp/pb-netns.lock`)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration import fixtures_kubelet, test_logs_exec
from tests.integration.conftest import ApiServer
from tests.integration.fixtures_kubelet import make_pod
from tests.integration.test_logs_exec import running
from tests.integration.test_rest_kubectl import Kubectl

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes import stream as k8s_stream  # noqa: E402

pytestmark = pytest.mark.integration

lab_images = fixtures_kubelet.lab_images
lab_network = fixtures_kubelet.lab_network
cri_node = fixtures_kubelet.cri_node
node = test_logs_exec.node


@pytest.fixture
def kubectl(node: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(node, tmp_path / "home")


@pytest.fixture
def v1(node: ApiServer) -> Iterator[k8s.CoreV1Api]:
    c = k8s_config.new_client_from_config(config_file=str(node.admin_conf))
    try:
        yield k8s.CoreV1Api(c)
    finally:
        c.close()


async def call(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)  # the client blocks; the apiserver runs on this loop


async def test_kubectl_and_python_client_logs(node: ApiServer, kubectl: Kubectl, v1: k8s.CoreV1Api) -> None:
    api = node
    await api.client.create(make_pod("talker", ["sh", "-c", "for i in 1 2 3; do echo line-$i; done; sleep 3600"]))
    await api.client.create(make_pod("ticker", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); "
                                                "echo tick-$i; sleep 0.2; done"], restart_policy="Never"))
    await running(api, "talker")
    for _ in range(50):
        _, out, _ = await kubectl.run("logs", "talker")
        if out.count("\n") == 3:
            break
        await asyncio.sleep(0.2)
    assert out == "line-1\nline-2\nline-3\n"
    _, out, _ = await kubectl.run("logs", "talker", "--tail=1")
    assert out == "line-3\n"
    _, out, _ = await kubectl.run("logs", "pod/talker", "-c", "main", "--timestamps", "--tail=1")
    assert out.endswith(" line-3\n") and out[:4].isdigit()
    _, out, _ = await kubectl.run("logs", "talker", "--limit-bytes=8")
    assert out == "line-1\nl"
    _, out, _ = await kubectl.run("logs", "talker", "--since=1h")
    assert out == "line-1\nline-2\nline-3\n"
    rc, _, err = await kubectl.run("logs", "nope", ok=False)
    assert rc != 0 and 'pods "nope" not found' in err
    rc, _, err = await kubectl.run("logs", "talker", "-c", "other", ok=False)
    assert rc != 0 and "container other is not valid for pod talker" in err
    rc, _, err = await kubectl.run("logs", "talker", "--previous", ok=False)
    assert rc != 0 and "previous terminated container" in err
    assert await call(v1.read_namespaced_pod_log, "talker", "default", tail_lines=2) == "line-2\nline-3\n"

    # -f streams: lines arrive while the container keeps writing (stopped here after three).
    await running(api, "ticker")
    p = await asyncio.create_subprocess_exec(*kubectl.argv("logs", "-f", "ticker"), env=kubectl.env,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert p.stdout is not None
        got = [(await asyncio.wait_for(p.stdout.readline(), 20)).decode() for _ in range(3)]
        assert got == ["tick-1\n", "tick-2\n", "tick-3\n"]
        assert p.returncode is None  # still following
    finally:
        p.kill()
        await p.wait()
    resp = await call(v1.read_namespaced_pod_log, "ticker", "default", follow=True, _preload_content=False)
    try:
        first = await call(resp.readline)
        assert first == b"tick-1\n"
    finally:
        resp.release_conn()


def close(ws: Any) -> None:
    ws.close()
    ws.sock.shutdown()  # websocket-client skips closing its socket when the server has already hung up


async def test_kubectl_and_python_client_exec(node: ApiServer, kubectl: Kubectl, v1: k8s.CoreV1Api) -> None:
    api = node
    await api.client.create(make_pod("shell", ["sleep", "3600"]))
    await running(api, "shell")
    rc, out, err = await kubectl.run("exec", "shell", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3", ok=False)
    assert (rc, out, err) == (3, "hi\n", "oops\ncommand terminated with exit code 3\n")  # as against kube
    _, out, _ = await kubectl.run("exec", "-i", "shell", "--", "cat", stdin="x\ny\n")
    assert out == "x\ny\n"
    _, out, _ = await kubectl.run("exec", "shell", "-c", "main", "--", "hostname")
    assert out == "shell\n"
    rc, _, err = await kubectl.run("exec", "nope", "--", "true", ok=False)
    assert rc != 0 and 'pods "nope" not found' in err
    rc, _, err = await kubectl.run("exec", "shell", "-c", "other", "--", "true", ok=False)
    assert rc != 0 and "container other is not valid" in err

    ws = await call(k8s_stream.stream, v1.connect_get_namespaced_pod_exec, "shell", "default",
                    command=["sh", "-c", "echo out; exit 4"], stderr=True, stdin=False, stdout=True, tty=False,
                    _preload_content=False)
    await call(ws.run_forever, timeout=20)
    assert ws.returncode == 4 and ws.read_stdout() == "out\n"  # returncode first: reading empties the channels
    close(ws)
    # (_preload_content=True works too, but the client never closes that socket: ResourceWarning here.)
    ws = await call(k8s_stream.stream, v1.connect_get_namespaced_pod_exec, "shell", "default",
                    command=["head", "-n", "1"], stderr=True, stdin=True, stdout=True, tty=False,
                    _preload_content=False)
    await call(ws.write_stdin, "from-python\n")
    await call(ws.run_forever, timeout=20)
    assert ws.returncode == 0 and ws.read_stdout() == "from-python\n"
    close(ws)


async def test_spdy_and_plain_requests_get_a_clear_error(node: ApiServer) -> None:
    await node.client.create(make_pod("any", ["sleep", "3600"]))  # valid, so the protocol is what fails
    ctx = ssl.create_default_context(cafile=str(node.cfg.data_dir / "pki" / "ca.crt"))
    url = f"https://localhost:{node.cfg.secure_port}/api/v1/namespaces/default/pods/any/exec?command=true&stdout=1"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {node.token}"}) as s:
        async with s.post(url, ssl=ctx, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                 "X-Stream-Protocol-Version": "v4.channel.k8s.io"}) as r:
            body = await r.json()
            assert r.status == 400 and "SPDY is not supported" in body["message"]
        async with s.get(url, ssl=ctx) as r:
            assert r.status == 400 and "Upgrade request required" in (await r.json())["message"]


async def test_kubectl_attach_reads_and_writes_the_containers_own_streams(node: ApiServer, kubectl: Kubectl) -> None:
    api = node
    pod = make_pod("reader", ["sh", "-c", "while read l; do echo got-$l; done"])
    pod.spec.containers[0].stdin = True
    await api.client.create(pod)
    await api.client.create(make_pod("ticker", ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]))
    await running(api, "reader")
    await running(api, "ticker")
    # Without -i: the main process's output from now on.
    p = await asyncio.create_subprocess_exec(*kubectl.argv("attach", "ticker"), env=kubectl.env,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert p.stdout is not None
        line = await asyncio.wait_for(p.stdout.readline(), 20)
        if not line:
            assert p.stderr is not None
            raise AssertionError((await p.stderr.read()).decode())
        assert line == b"tick\n"
    finally:
        if p.returncode is None:
            p.kill()
        await p.wait()
    # The same over gRPC (pbctl attach).
    stream = api.client.pod_exec("default", "ticker", [], attach=True)
    first = await anext(stream)
    assert first.stdout.startswith(b"tick\n")
    await stream.aclose()
    # With -i: what is typed reaches the process's stdin, its answers come back.
    p = await asyncio.create_subprocess_exec(*kubectl.argv("attach", "-i", "reader"), env=kubectl.env,
                                             stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    try:
        assert p.stdin is not None and p.stdout is not None
        for word in ("one", "two"):
            p.stdin.write(f"{word}\n".encode())
            await p.stdin.drain()
            assert await asyncio.wait_for(p.stdout.readline(), 20) == f"got-{word}\n".encode()
    finally:
        p.kill()
        await p.wait()
    rc, _, err = await kubectl.run("attach", "nope", ok=False)
    assert rc != 0 and 'pods "nope" not found' in err
