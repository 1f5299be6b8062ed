"""pods/log, pods/exec, pods/portforward and nodes/proxy/stats/summary: the apiserver proxies to the
kubelet of the node.

Clients never reach nodes directly; the apiserver resolves pod -> node -> the kubelet's address
(status.addresses InternalIP, status.daemonEndpoints.kubeletEndpoint.Port, default ports.KUBELET) and relays the
stream over mTLS: it presents its apiserver-kubelet-client certificate (`KubeletTLS.client`, kube-apiserver's
--kubelet-client-certificate/--kubelet-client-key) and checks the kubelet's serving certificate against
--kubelet-certificate-authority. Without that CA kube-apiserver does not check it at all; here the certificate a
kubelet first presents is pinned for its channel (gRPC cannot skip the check), re-read when the channel fails.
A kubelet client token (--kubelet-client-token-file) is still sent when given, for kubelets that check tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from cryptography import x509

from pybernetes import certinfo, errors, ports, rpc, tls
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.client.client import error_from_rpc

from .rest import Rest

# rpc's message limits and short reconnect backoff, on a TLS channel (rpc.channel builds plaintext ones).
_OPTIONS: list[tuple[str, Any]] = [("grpc.max_receive_message_length", rpc.MAX_MESSAGE_BYTES),
                                   ("grpc.max_send_message_length", rpc.MAX_MESSAGE_BYTES),
                                   ("grpc.initial_reconnect_backoff_ms", 500),
                                   ("grpc.min_reconnect_backoff_ms", rpc.CONNECT_TIMEOUT_MS),
                                   ("grpc.max_reconnect_backoff_ms", 3000)]


@dataclass(frozen=True)
class KubeletTLS:
    """The apiserver's client certificate towards kubelets, and the CA of their serving certificates (None:
    pin what each kubelet presents)."""

    client: tls.CertPair
    ca: Path | None = None


async def peer_certificate(host: str, port: int, client: tls.CertPair, timeout: float = 5.0) -> bytes:
    """The PEM serving certificate `host:port` presents (unverified: the caller pins it), handshaking with the
    client certificate, since a kubelet refuses connections without one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(client.cert, client.key)
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout)
    except (OSError, TimeoutError) as e:
        raise errors.Unavailable(f"the kubelet at {host}:{port} is unreachable: {e}") from None
    try:
        der = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        w.close()
        with contextlib.suppress(Exception):
            await w.wait_closed()
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _name_in(pem: bytes) -> str:
    """A name the pinned certificate carries (its first DNS SAN, else CN), for gRPC's hostname check."""
    cert = x509.load_pem_x509_certificate(pem)
    with contextlib.suppress(x509.ExtensionNotFound):
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        if dns:
            return str(dns[0])
    return tls.identity(certinfo.pem_to_der(pem))[0]

In = TypeVar("In", pb.ExecInput, pb.PortForwardInput)


class KubeletProxy:
    def __init__(self, rest: Rest, *, token: str = "", tls: KubeletTLS | None = None) -> None:
        self.rest = rest
        self.md = rpc.bearer(token)
        self.tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def _channel(self, address: str, port: int) -> grpc.aio.Channel:
        target = f"{address}:{port}"
        if self.tls is None:
            return rpc.channel(target)
        pair = self.tls.client
        key, chain = pair.key.read_bytes(), pair.cert.read_bytes()
        if self.tls.ca is not None:
            creds = grpc.ssl_channel_credentials(self.tls.ca.read_bytes(), key, chain)
            return grpc.aio.secure_channel(target, creds, options=_OPTIONS)
        pinned = await peer_certificate(address, port, pair)
        creds = grpc.ssl_channel_credentials(pinned, key, chain)
        return grpc.aio.secure_channel(target, creds,
                                       options=[*_OPTIONS, ("grpc.ssl_target_name_override", _name_in(pinned))])

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
        if ch is not None and self.tls is not None and self.tls.ca is None and \
                ch.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            # A pinned certificate may be stale (the kubelet made itself a new one): pin again.
            self._channels.pop(target)
            await ch.close()
            ch = None
        if ch is None:
            ch = self._channels[target] = await self._channel(address, port)
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
        async for out in self._relay(stub.Exec, first, inputs):
            yield out

    async def portforward(self, inputs: AsyncIterator[pb.PortForwardInput]) -> AsyncIterator[pb.PortForwardOutput]:
        """One connection to a port of a pod, relayed to and from the pod's kubelet."""
        first = await anext(inputs, None)
        if first is None or not first.HasField("start"):
            raise errors.BadRequest("port-forward: the first message must name the pod and the port")
        start = first.start
        if not 0 < start.port < 65536:
            raise errors.BadRequest(f"invalid port {start.port}: must be 1-65535")
        stub = await self.stub_for_pod(start.namespace, start.name)
        async for out in self._relay(stub.PortForward, first, inputs):
            yield out

    async def _relay(self, method: Any, first: In, inputs: AsyncIterator[In]) -> AsyncIterator[Any]:
        """A bidirectional kubelet stream: `first` (already read and checked) and the rest of `inputs` to the
        kubelet, its answers back; the call ends with the caller's iteration."""
        call = method(rpc.prepend(first, inputs), metadata=self.md)
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
