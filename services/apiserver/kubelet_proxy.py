"""pods/log, pods/exec, pods/portforward and nodes/proxy/stats/summary: the apiserver proxies to the
kubelet of the node.

Clients never reach nodes directly; the apiserver resolves pod -> node -> the kubelet's address
(status.addresses InternalIP, status.daemonEndpoints.kubeletEndpoint.Port, default ports.KUBELET) and relays the
stream, presenting its kubelet client token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import grpc

from pybernetes import errors, ports, rpc
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.client.client import error_from_rpc

from .rest import Rest


class KubeletProxy:
    def __init__(self, rest: Rest, *, token: str = "") -> None:
        self.rest = rest
        self.md = rpc.bearer(token)
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()

    async def _resolve(self, namespace: str, name: str, container: str) -> tuple[pb_grpc.KubeletStub, str]:
        pod = await self.rest.get("pods", namespace, name)
        assert isinstance(pod, core.Pod)
        if not pod.spec.node_name:
            raise errors.BadRequest(f'pod {name} does not have a host assigned')
        names = [c.name for c in pod.spec.containers]
        if not container:
            if len(names) != 1:
                raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: "
                                        f"[{' '.join(names)}]")
            container = names[0]
        elif container not in names + [c.name for c in pod.spec.init_containers]:
            raise errors.BadRequest(f"container {container} is not valid for pod {name}")
        return await self._stub_for(pod.spec.node_name), container

    async def container_for(self, namespace: str, name: str, container: str) -> str:
        """The container a request names (the only one when it names none); errors as _resolve's, before a
        stream opens (the REST front end answers them with a Status before upgrading to WebSocket)."""
        _, container = await self._resolve(namespace, name, container)
        return container

    async def _stub_for(self, node_name: str) -> pb_grpc.KubeletStub:
        node = await self.rest.get("nodes", "", node_name)
        assert isinstance(node, core.Node)
        address = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
        if not address:
            raise errors.Unavailable(f'node "{node.metadata.name}" has no InternalIP: cannot reach its kubelet')
        port = node.status.daemon_endpoints.kubelet_endpoint.port or ports.KUBELET
        target = f"{address}:{port}"
        ch = self._channels.get(target)
        if ch is None:
            ch = self._channels[target] = rpc.channel(target)
        return pb_grpc.KubeletStub(ch)

    async def stats(self, req: pb.NodeStatsRequest, *, timeout: float = 30.0) -> pb.StatsSummary:
        """The node's resource usage summary (nodes/proxy/stats/summary)."""
        if not req.node:
            raise errors.BadRequest("a node name is required")
        stub = await self._stub_for(req.node)
        try:
            out: pb.StatsSummary = await stub.Stats(pb.StatsRequest(), metadata=self.md, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise _from_kubelet(e) from None
        out.node.node_name = req.node
        return out

    async def logs(self, req: pb.PodLogsRequest) -> AsyncGenerator[pb.LogChunk, None]:
        """The container's log; `limit_bytes` (when > 0) cuts it after that many bytes."""
        stub, container = await self._resolve(req.namespace, req.name, req.container)
        fwd = pb.PodLogsRequest()
        fwd.CopyFrom(req)
        fwd.container = container
        left = req.limit_bytes if req.limit_bytes > 0 else -1
        call = stub.ContainerLogs(fwd, metadata=self.md)
        try:
            async for chunk in call:
                if left >= 0:
                    chunk.data = chunk.data[:left]
                    left -= len(chunk.data)
                yield chunk
                if left == 0:
                    return
        except grpc.aio.AioRpcError as e:
            raise _from_kubelet(e) from None
        finally:
            call.cancel()

    async def exec(self, inputs: AsyncIterator[pb.ExecInput]) -> AsyncIterator[pb.ExecOutput]:
        first = await anext(inputs, None)
        if first is None or not first.HasField("start"):
            raise errors.BadRequest("exec: the first message must say what to run")
        start = first.start
        if not start.command and not start.attach:
            raise errors.BadRequest("you must specify at least one command for the container")
        stub, container = await self._resolve(start.namespace, start.name, start.container)
        start.container = container

        async def relay() -> AsyncIterator[pb.ExecInput]:
            yield first
            async for msg in inputs:
                yield msg

        call = stub.Exec(relay(), metadata=self.md)
        try:
            async for out in call:
                yield out
        except grpc.aio.AioRpcError as e:
            raise _from_kubelet(e) from None
        finally:
            with contextlib.suppress(Exception):
                call.cancel()

    async def portforward(self, inputs: AsyncIterator[pb.PortForwardInput]) -> AsyncIterator[pb.PortForwardOutput]:
        """One connection to a port of a pod, relayed to and from the pod's kubelet."""
        first = await anext(inputs, None)
        if first is None or not first.HasField("start"):
            raise errors.BadRequest("port-forward: the first message must name the pod and the port")
        start = first.start
        if not 0 < start.port < 65536:
            raise errors.BadRequest(f"invalid port {start.port}: must be 1-65535")
        stub = await self.stub_for_pod(start.namespace, start.name)

        async def relay() -> AsyncIterator[pb.PortForwardInput]:
            yield first
            async for msg in inputs:
                yield msg

        call = stub.PortForward(relay(), metadata=self.md)
        try:
            async for out in call:
                yield out
        except grpc.aio.AioRpcError as e:
            raise _from_kubelet(e) from None
        finally:
            with contextlib.suppress(Exception):
                call.cancel()

    async def stub_for_pod(self, namespace: str, name: str) -> pb_grpc.KubeletStub:
        """The kubelet of the node the pod runs on; errors (no such pod, not running) before any stream."""
        pod = await self.rest.get("pods", namespace, name)
        assert isinstance(pod, core.Pod)
        if not pod.spec.node_name:
            raise errors.BadRequest(f"pod {name} does not have a host assigned")
        if pod.status.phase != "Running":
            raise errors.BadRequest(f"unable to forward port because pod is not running. Current status="
                                    f"{pod.status.phase or 'Pending'}")
        return await self._stub_for(pod.spec.node_name)


def _from_kubelet(e: grpc.aio.AioRpcError) -> errors.ApiError:
    err = error_from_rpc(e)
    if e.code() == grpc.StatusCode.UNAVAILABLE:
        return errors.Unavailable(f"the pod's kubelet is unreachable: {e.details()}")
    return err
