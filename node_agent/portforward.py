"""pods/portforward on the kubelet: one TCP connection to a port of a pod, opened inside the pod's network
namespace, as Kubernetes' CRI runtimes do (so a server bound to the pod's localhost is reachable too).

The pod's namespace is its sandbox's: the sandbox process's /proc/<pid>/ns/net (containerd's verbose
PodSandboxStatus names the pid). The socket is created there (pybernetes.netns.socket_in) by a worker thread,
then used by the event loop from the kubelet's own namespace. Bytes are relayed until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator

from pybernetes import errors, netns
from pybernetes.api.rpc.v1 import rpc_pb2 as pb

from .cri import api_pb2 as cri
from .cri.client import CRIClient
from .runtime import POD_NAME, POD_NAMESPACE

log = logging.getLogger("pybernetes.kubelet.portforward")

CHUNK = 32 * 1024


def connect_in_netns(netns_path: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to localhost:`port` inside the network namespace at `netns_path` (blocking: run it in
    a thread)."""
    sock = netns.socket_in(netns_path)
    try:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    sock.setblocking(False)
    return sock


async def sandbox_netns(runtime: CRIClient, namespace: str, name: str) -> str:
    """/proc/<pid>/ns/net of the pod's ready sandbox."""
    boxes = await runtime.list_pod_sandbox(state=cri.SANDBOX_READY,
                                           label_selector={POD_NAMESPACE: namespace, POD_NAME: name})
    if not boxes:
        raise errors.NotFound(f'pod "{name}" has no running sandbox on this node')
    status = await runtime.pod_sandbox_status(max(boxes, key=lambda b: b.created_at).id, verbose=True)
    try:
        pid = int(json.loads(status.info.get("info", "{}")).get("pid", 0))
    except ValueError:
        pid = 0
    if pid <= 0:
        raise errors.Unavailable(f'the runtime does not say which process holds pod "{name}"\'s network')
    return f"/proc/{pid}/ns/net"


async def forward(runtime: CRIClient, start: pb.PortForwardStart,
                  inputs: AsyncIterator[pb.PortForwardInput]) -> AsyncIterator[pb.PortForwardOutput]:
    """Relay one connection: inputs' data to the pod's port, the port's bytes back as outputs."""
    if not 0 < start.port < 65536:
        raise errors.BadRequest(f"invalid port {start.port}: must be 1-65535")
    netns = await sandbox_netns(runtime, start.namespace, start.name)
    loop = asyncio.get_running_loop()
    try:
        sock = await loop.run_in_executor(None, connect_in_netns, netns, start.port)
    except OSError as e:
        raise errors.BadRequest(f'error forwarding port {start.port} to pod "{start.name}": {e.strerror or e}') \
            from None
    reader, writer = await asyncio.open_connection(sock=sock)
    log.info("port-forward opened pod=%s/%s port=%d", start.namespace, start.name, start.port)

    async def pump_in() -> None:
        with contextlib.suppress(ConnectionError):
            async for msg in inputs:
                if msg.HasField("data") and msg.data:
                    writer.write(msg.data)
                    await writer.drain()
                elif msg.close_write:
                    break
            if writer.can_write_eof():
                writer.write_eof()

    feeder = asyncio.create_task(pump_in())
    try:
        while data := await reader.read(CHUNK):
            yield pb.PortForwardOutput(data=data)
    except ConnectionError:
        pass
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await feeder
        writer.close()
        log.info("port-forward closed pod=%s/%s port=%d", start.namespace, start.name, start.port)
