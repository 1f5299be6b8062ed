"""pods/portforward through the apiserver to a real kubelet, which connects inside the pod's network namespace:
pbctl port-forward (gRPC), the official Python client (`kubernetes.stream.portforward`, WebSocket
v4.channel.k8s.io), and the errors. Run under `flock /tmp/pb-netns.lock` (a real containerd node)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pbctl.main import run as pbctl
from pybernetes import errors
from pybernetes.ports import free_port
from tests.integration import fixtures_kubelet, test_logs_exec, test_rest_logs_exec
from tests.integration.conftest import ApiServer
from tests.integration.fixtures_kubelet import make_pod
from tests.integration.test_logs_exec import running
from tests.integration.test_rest_kubectl import Kubectl

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import stream as k8s_stream  # noqa: E402

pytestmark = pytest.mark.integration

# The real node and the official Python client of the REST logs/exec tests.
lab_images = fixtures_kubelet.lab_images
lab_network = fixtures_kubelet.lab_network
cri_node = fixtures_kubelet.cri_node
node = test_logs_exec.node
v1 = test_rest_logs_exec.v1

# busybox httpd bound to the POD's loopback only: reachable solely from inside the pod's network namespace.
SERVER = ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && "
          "exec httpd -f -p 127.0.0.1:8080 -h /www"]


async def _fetch(port: int) -> str:
    for _ in range(100):  # until pbctl listens
        try:
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/index.html") as r:
                assert r.status == 200
                return await r.text()
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


async def test_pbctl_and_client_port_forward_reach_the_pods_loopback(node: ApiServer, tmp_path: Path) -> None:
    api = node
    await api.client.create(make_pod("srv", SERVER))
    await running(api, "srv")

    async def request() -> AsyncIterator[bytes]:
        yield b"GET /index.html HTTP/1.0\r\n\r\n"

    async def whole(port: int) -> bytes:
        out = b""
        async for chunk in api.client.pod_port_forward("default", "srv", port, request()):
            out += chunk
        return out

    reply = b""
    for _ in range(50):  # httpd may not listen yet when the pod turns Running
        with contextlib.suppress(errors.BadRequest):
            reply = await whole(8080)
            break
        await asyncio.sleep(0.2)
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"hello-from-pod\n")
    with pytest.raises(errors.BadRequest, match="error forwarding port 9 to pod \"srv\": Connection refused"):
        await whole(9)
    with pytest.raises(errors.NotFound, match='pods "nope" not found'):
        async for _ in api.client.pod_port_forward("default", "nope", 80, request()):
            pass

    cfg = tmp_path / "pbconfig"
    api.write_kubeconfig(cfg)
    local = free_port()
    task = asyncio.create_task(pbctl(["--config", str(cfg), "port-forward", "pod/srv", f"{local}:8080"]))
    try:
        assert await _fetch(local) == "hello-from-pod\n"
        assert await _fetch(local) == "hello-from-pod\n"  # a second connection, a second stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _python_client_get(v1: k8s.CoreV1Api) -> tuple[bytes, str | None]:
    pf = k8s_stream.portforward(v1.connect_get_namespaced_pod_portforward, "srv", "default", ports="8080")
    sock: Any = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    out = b""
    while data := sock.recv(4096):
        out += data
    sock.close()
    error = pf.error(8080)
    for _ in range(100):  # the client's proxy thread closes the WebSocket once the port is closed
        if not pf.connected:
            break
        time.sleep(0.05)
    pf.websocket.shutdown()  # websocket-client leaves the socket open when the server hung up first
    return out, error


async def test_python_client_and_kubectl_port_forward(
        node: ApiServer, v1: k8s.CoreV1Api, tmp_path: Path) -> None:
    api = node
    await api.client.create(make_pod("srv", SERVER))
    await running(api, "srv")
    out, error = b"", None
    for _ in range(50):  # httpd may not listen yet when the pod turns Running: refused, on the error channel
        out, error = await asyncio.to_thread(_python_client_get, v1)
        if error is None or "Connection refused" not in error:
            break
        await asyncio.sleep(0.2)
    assert error is None
    assert out.startswith(b"HTTP/1.") and out.endswith(b"hello-from-pod\n")
    # kubectl tunnels SPDY/3.1 through the WebSocket: two connections, then a refused port (an error stream).
    kubectl = Kubectl(api, tmp_path / "home")
    local, refused = free_port(), free_port()
    p = await asyncio.create_subprocess_exec(*kubectl.argv("port-forward", "pod/srv", f"{local}:8080",
                                                           f"{refused}:9"),
                                             env=kubectl.env, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    try:
        assert await _fetch(local) == "hello-from-pod\n"
        assert await _fetch(local) == "hello-from-pod\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", refused)
        assert await asyncio.wait_for(reader.read(), 20) == b""  # nothing listens on 9 in the pod: closed
        writer.close()
        # kubectl reads the error stream, logs it, and (as against Kubernetes) gives up the whole forward.
        await asyncio.wait_for(p.wait(), 20)
    finally:
        if p.returncode is None:
            p.terminate()
        _, err = await p.communicate()
    assert p.returncode == 1
    text = err.decode()
    assert 'error forwarding port 9 to pod \\"srv\\": Connection refused' in text  # klog quotes it
    assert "error: lost connection to pod" in text
