"""Async CRI client: a thin typed wrapper over containerd's runtime.v1 gRPC services on a unix socket.

Every call gets a deadline and turns gRPC failures into node_agent.cri.errors exceptions, so callers
never see grpc.RpcError. Results are the generated protobuf messages (or their key field).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from node_agent.cri import api_pb2 as pb
from node_agent.cri.errors import CRIError, translate

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)

DEFAULT_TIMEOUT = 30.0
# Pulls and sandbox creation (CNI, pause image) can legitimately take longer than plain calls.
PULL_TIMEOUT = 300.0
SANDBOX_TIMEOUT = 120.0
CRI_API_VERSION = "v1"
SERVICE_PACKAGE = "runtime.v1"
RUNTIME = "RuntimeService"
IMAGE = "ImageService"


class CRIClient:
    """Client for one runtime endpoint, e.g. CRIClient("/run/pb/node1/containerd.sock")."""

    def __init__(self, socket_path: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(
            f"unix://{socket_path}",
            # Stats and list replies grow with the pod count; exec output is capped at 16MB by the runtime.
            options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)],
        )
        # Method handles are built from the full gRPC path (the generated stubs are untyped).
        self._methods: dict[str, Any] = {}

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CRIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _method(self, service: str, method: str, resp_type: type[Message]) -> Any:
        path = f"/{SERVICE_PACKAGE}.{service}/{method}"
        if path not in self._methods:
            self._methods[path] = self._channel.unary_unary(
                path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=resp_type.FromString,
            )
        return self._methods[path]

    async def _call(
        self,
        service: str,
        method: str,
        request: Message,
        resp_type: type[R],
        deadline: float | None = None,
    ) -> R:
        fn = self._method(service, method, resp_type)
        start = time.monotonic()
        try:
            resp = await fn(request, timeout=deadline if deadline is not None else self.timeout)
        except grpc.RpcError as err:
            translated = translate(err, method)
            log.debug("cri call failed", extra={"method": method, "error": str(translated)})
            raise translated from None
        log.debug("cri call", extra={"method": method, "seconds": round(time.monotonic() - start, 4)})
        if not isinstance(resp, resp_type):
            raise CRIError(f"unexpected response type {type(resp).__name__}", method=method)
        return resp

    # ---- runtime ----

    async def version(self, *, deadline: float | None = None) -> pb.VersionResponse:
        req = pb.VersionRequest(version=CRI_API_VERSION)
        return await self._call(RUNTIME, "Version", req, pb.VersionResponse, deadline)

    async def status(self, *, verbose: bool = False) -> pb.StatusResponse:
        return await self._call(RUNTIME, "Status", pb.StatusRequest(verbose=verbose), pb.StatusResponse)

    # ---- sandboxes ----

    async def run_pod_sandbox(
        self, config: pb.PodSandboxConfig, *, runtime_handler: str = "", deadline: float = SANDBOX_TIMEOUT
    ) -> str:
        req = pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        resp = await self._call(RUNTIME, "RunPodSandbox", req, pb.RunPodSandboxResponse, deadline)
        return resp.pod_sandbox_id

    async def stop_pod_sandbox(self, pod_sandbox_id: str, *, deadline: float = SANDBOX_TIMEOUT) -> None:
        req = pb.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        await self._call(RUNTIME, "StopPodSandbox", req, pb.StopPodSandboxResponse, deadline)

    async def remove_pod_sandbox(self, pod_sandbox_id: str, *, deadline: float = SANDBOX_TIMEOUT) -> None:
        req = pb.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        await self._call(RUNTIME, "RemovePodSandbox", req, pb.RemovePodSandboxResponse, deadline)

    async def pod_sandbox_status(
        self, pod_sandbox_id: str, *, verbose: bool = False
    ) -> pb.PodSandboxStatusResponse:
        req = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose)
        return await self._call(RUNTIME, "PodSandboxStatus", req, pb.PodSandboxStatusResponse)

    async def list_pod_sandbox(
        self,
        *,
        id: str = "",
        state: pb.PodSandboxState.ValueType | None = None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[pb.PodSandbox]:
        flt = pb.PodSandboxFilter(id=id, label_selector=dict(label_selector or {}))
        if state is not None:
            flt.state.state = state
        req = pb.ListPodSandboxRequest(filter=flt)
        return list((await self._call(RUNTIME, "ListPodSandbox", req, pb.ListPodSandboxResponse)).items)

    # ---- containers ----

    async def create_container(
        self, pod_sandbox_id: str, config: pb.ContainerConfig, sandbox_config: pb.PodSandboxConfig
    ) -> str:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config
        )
        resp = await self._call(RUNTIME, "CreateContainer", req, pb.CreateContainerResponse)
        return resp.container_id

    async def start_container(self, container_id: str) -> None:
        req = pb.StartContainerRequest(container_id=container_id)
        await self._call(RUNTIME, "StartContainer", req, pb.StartContainerResponse)

    async def stop_container(self, container_id: str, *, grace_seconds: int = 0) -> None:
        req = pb.StopContainerRequest(container_id=container_id, timeout=grace_seconds)
        # The runtime waits up to the grace period before killing: give the RPC room beyond it.
        await self._call(
            RUNTIME, "StopContainer", req, pb.StopContainerResponse, self.timeout + grace_seconds
        )

    async def remove_container(self, container_id: str) -> None:
        req = pb.RemoveContainerRequest(container_id=container_id)
        await self._call(RUNTIME, "RemoveContainer", req, pb.RemoveContainerResponse)

    async def list_containers(
        self,
        *,
        id: str = "",
        pod_sandbox_id: str = "",
        state: pb.ContainerState.ValueType | None = None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[pb.Container]:
        flt = pb.ContainerFilter(
            id=id, pod_sandbox_id=pod_sandbox_id, label_selector=dict(label_selector or {})
        )
        if state is not None:
            flt.state.state = state
        req = pb.ListContainersRequest(filter=flt)
        return list((await self._call(RUNTIME, "ListContainers", req, pb.ListContainersResponse)).containers)

    async def container_status(self, container_id: str, *, verbose: bool = False) -> pb.ContainerStatus:
        req = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        return (await self._call(RUNTIME, "ContainerStatus", req, pb.ContainerStatusResponse)).status

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], *, timeout_seconds: int = 10
    ) -> pb.ExecSyncResponse:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout_seconds)
        return await self._call(RUNTIME, "ExecSync", req, pb.ExecSyncResponse, timeout_seconds + 5.0)

    async def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> str:
        """Prepare a streaming exec; returns the runtime's streaming server URL."""
        req = pb.ExecRequest(
            container_id=container_id, cmd=list(cmd), tty=tty, stdin=stdin, stdout=stdout, stderr=stderr
        )
        return (await self._call(RUNTIME, "Exec", req, pb.ExecResponse)).url

    async def attach(self, container_id: str, *, tty: bool = False, stdin: bool = False, stdout: bool = True,
                     stderr: bool = True) -> str:
        """Prepare a streaming attach to the container's main process; returns the streaming server URL."""
        req = pb.AttachRequest(container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)
        return (await self._call(RUNTIME, "Attach", req, pb.AttachResponse)).url

    async def container_stats(self, container_id: str) -> pb.ContainerStats:
        req = pb.ContainerStatsRequest(container_id=container_id)
        return (await self._call(RUNTIME, "ContainerStats", req, pb.ContainerStatsResponse)).stats

    async def list_container_stats(
        self, *, id: str = "", pod_sandbox_id: str = "", label_selector: Mapping[str, str] | None = None
    ) -> list[pb.ContainerStats]:
        flt = pb.ContainerStatsFilter(
            id=id, pod_sandbox_id=pod_sandbox_id, label_selector=dict(label_selector or {})
        )
        req = pb.ListContainerStatsRequest(filter=flt)
        resp = await self._call(RUNTIME, "ListContainerStats", req, pb.ListContainerStatsResponse)
        return list(resp.stats)

    # ---- images ----

    async def list_images(self, image: str = "") -> list[pb.Image]:
        req = pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image=image)))
        return list((await self._call(IMAGE, "ListImages", req, pb.ListImagesResponse)).images)

    async def image_status(self, image: str) -> pb.Image | None:
        """The image if present on the node, else None (the CRI answers an empty image, not an error)."""
        req = pb.ImageStatusRequest(image=pb.ImageSpec(image=image))
        resp = await self._call(IMAGE, "ImageStatus", req, pb.ImageStatusResponse)
        return resp.image if resp.HasField("image") and resp.image.id else None

    async def image_fs_info(self) -> list[pb.FilesystemUsage]:
        """The filesystems holding images (one for containerd's snapshotter)."""
        resp = await self._call(IMAGE, "ImageFsInfo", pb.ImageFsInfoRequest(), pb.ImageFsInfoResponse)
        return list(resp.image_filesystems)

    async def pull_image(
        self,
        image: str,
        *,
        auth: pb.AuthConfig | None = None,
        sandbox_config: pb.PodSandboxConfig | None = None,
        deadline: float = PULL_TIMEOUT,
    ) -> str:
        """Pull `image`; returns the image reference (ID). Raises ImagePullError on failure."""
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config)
        return (await self._call(IMAGE, "PullImage", req, pb.PullImageResponse, deadline)).image_ref

    async def remove_image(self, image: str) -> None:
        req = pb.RemoveImageRequest(image=pb.ImageSpec(image=image))
        await self._call(IMAGE, "RemoveImage", req, pb.RemoveImageResponse)
