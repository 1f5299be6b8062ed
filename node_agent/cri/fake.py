"""An in-memory container runtime with the CRIClient surface the kubelet uses (no containerd, no processes).

FakeCRI keeps sandboxes, containers and their states in dicts: a started container runs until `exit`
(or a stop) ends it, pod IPs come from one fixed address. Two users: the kubelet's unit tests (which
record every call with `record=True` and can hold one with `gates`), and the bench's hollow nodes
(bench/hollow.py), which run the real kubelet over it as kubemark runs the kubelet over its fake
remote runtime. What it does not do: images (every image is present), exec, logs, stats, networking.

A list hands out the fake's own messages, which it never changes afterwards (a change stores a changed copy):
the caller gets a snapshot, as a real runtime's decoded reply is, without a copy per object per call. Hollow
nodes relist every second, and those copies were a third of their CPU. A selector on the pod UID label (the
kubelet's view of one pod) is answered from an index.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from node_agent.cri import api_pb2 as pb
from node_agent.cri.errors import NotFound
from node_agent.runtime import POD_UID
from pybernetes.api.objects import copy
from pybernetes.clock import Clock, RealClock

NS = 1_000_000_000
M = TypeVar("M", bound=Message)
S = TypeVar("S", pb.PodSandbox, pb.Container)


class FakeCRI:
    """An in-memory container runtime: sandboxes, containers and their states (see the module).

    With `record`, `calls` holds every mutating call; `gates[method]` (an asyncio.Event) holds that call
    until the test sets it, and `entered[method]` is set when a call reached the gate, so a test can act
    "between" two runtime operations.
    """

    def __init__(self, clock: Clock | None = None, *, record: bool = True, pod_ip: str = "10.244.0.7") -> None:
        self.clock: Clock = clock or RealClock()
        self.record = record
        self.pod_ip = pod_ip
        self.sandboxes: dict[str, pb.PodSandbox] = {}
        self.containers: dict[str, pb.Container] = {}
        self.statuses: dict[str, pb.ContainerStatus] = {}
        # pod UID label -> its sandboxes' and containers' ids, in creation order (a dict as an ordered set)
        self._by_pod: dict[str, dict[str, None]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, sandbox/container name or id)
        self.stop_grace: dict[str, int] = {}  # container id -> grace of its last StopContainer
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self._ids = itertools.count(1)
        self._created = itertools.count(1)

    async def _enter(self, method: str, what: str) -> None:
        if self.record:
            self.calls.append((method, what))
        gate = self.gates.get(method)
        if gate is not None:
            self.entered.setdefault(method, asyncio.Event()).set()
            await gate.wait()

    def _ns(self) -> int:
        return int(self.clock.wall() * NS)

    def names(self, method: str) -> list[str]:
        return [w for m, w in self.calls if m == method]

    # -- runtime ----------------------------------------------------------------------------------

    async def version(self, *, deadline: float | None = None) -> pb.VersionResponse:
        return pb.VersionResponse(version="v1", runtime_name="fake", runtime_version="0.0.0",
                                  runtime_api_version="v1")

    async def status(self, *, verbose: bool = False) -> pb.StatusResponse:
        resp = pb.StatusResponse()
        for type_ in ("RuntimeReady", "NetworkReady"):
            resp.status.conditions.add(type=type_, status=True)
        return resp

    async def close(self) -> None:
        pass

    # -- sandboxes ------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: pb.PodSandboxConfig, **_: Any) -> str:
        await self._enter("RunPodSandbox", config.metadata.name)
        sid = f"sb{next(self._ids)}"
        self.sandboxes[sid] = pb.PodSandbox(id=sid, metadata=config.metadata, state=pb.SANDBOX_READY,
                                            created_at=next(self._created), labels=config.labels,
                                            annotations=config.annotations)
        self._index(sid, config.labels)
        return sid

    async def stop_pod_sandbox(self, sid: str) -> None:
        await self._enter("StopPodSandbox", sid)
        sb = self.sandboxes.get(sid)
        if sb is None:
            raise NotFound(f"sandbox {sid}")
        self.sandboxes[sid] = _changed(sb, state=pb.SANDBOX_NOTREADY)
        for cid, c in list(self.containers.items()):  # as containerd: stopping the sandbox kills its containers
            if c.pod_sandbox_id == sid and self.statuses[cid].state == pb.CONTAINER_RUNNING:
                self.exit(cid, 137)

    async def remove_pod_sandbox(self, sid: str) -> None:
        await self._enter("RemovePodSandbox", sid)
        sb = self.sandboxes.pop(sid, None)
        if sb is None:
            raise NotFound(f"sandbox {sid}")
        self._unindex(sid, sb.labels)
        for cid in [cid for cid, c in self.containers.items() if c.pod_sandbox_id == sid]:
            self._unindex(cid, self.containers[cid].labels)
            del self.containers[cid], self.statuses[cid]

    async def pod_sandbox_status(self, sid: str, **_: Any) -> pb.PodSandboxStatusResponse:
        if sid not in self.sandboxes:
            raise NotFound(f"sandbox {sid}")
        resp = pb.PodSandboxStatusResponse()
        resp.status.id = sid
        resp.status.network.ip = self.pod_ip
        return resp

    async def list_pod_sandbox(self, *, label_selector: Mapping[str, str] | None = None,
                               **_: Any) -> list[pb.PodSandbox]:
        return self._select(self.sandboxes, label_selector)

    # -- containers -----------------------------------------------------------------------------

    async def create_container(self, sid: str, config: pb.ContainerConfig, sbcfg: pb.PodSandboxConfig,
                               **_: Any) -> str:
        await self._enter("CreateContainer", config.metadata.name)
        if sid not in self.sandboxes:
            raise NotFound(f"sandbox {sid}")
        cid = f"c{next(self._ids)}"
        created = next(self._created)
        self.containers[cid] = pb.Container(id=cid, pod_sandbox_id=sid, metadata=config.metadata,
                                            image=config.image, image_ref="sha256:img", state=pb.CONTAINER_CREATED,
                                            created_at=created, labels=config.labels,
                                            annotations=config.annotations)
        self.statuses[cid] = pb.ContainerStatus(id=cid, metadata=config.metadata, state=pb.CONTAINER_CREATED,
                                                created_at=created, image=config.image, image_ref="sha256:img",
                                                labels=config.labels, annotations=config.annotations)
        self._index(cid, config.labels)
        return cid

    async def start_container(self, cid: str, **_: Any) -> None:
        await self._enter("StartContainer", cid)
        if cid not in self.containers:
            raise NotFound(f"container {cid}")
        self.statuses[cid] = _changed(self.statuses[cid], state=pb.CONTAINER_RUNNING, started_at=self._ns())
        self.containers[cid] = _changed(self.containers[cid], state=pb.CONTAINER_RUNNING)

    async def stop_container(self, cid: str, *, grace_seconds: int = 0, **_: Any) -> None:
        await self._enter("StopContainer", cid)
        if cid not in self.containers:
            raise NotFound(f"container {cid}")
        self.stop_grace[cid] = grace_seconds
        if self.statuses[cid].state == pb.CONTAINER_RUNNING:
            self.exit(cid, 143 if grace_seconds else 137)

    async def remove_container(self, cid: str, **_: Any) -> None:
        await self._enter("RemoveContainer", cid)
        c = self.containers.pop(cid, None)
        if c is None:
            raise NotFound(f"container {cid}")
        self._unindex(cid, c.labels)
        del self.statuses[cid]

    async def list_containers(self, *, label_selector: Mapping[str, str] | None = None,
                              **_: Any) -> list[pb.Container]:
        return self._select(self.containers, label_selector)

    async def container_status(self, cid: str, **_: Any) -> pb.ContainerStatus:
        if cid not in self.statuses:
            raise NotFound(f"container {cid}")
        return copy(self.statuses[cid])

    async def list_container_stats(self, **_: Any) -> list[pb.ContainerStats]:
        return []

    # -- images ---------------------------------------------------------------------------------

    async def image_status(self, image: str, **_: Any) -> pb.Image:
        return pb.Image(id=f"sha256:{image}")

    async def pull_image(self, image: str, **_: Any) -> str:
        return f"sha256:{image}"

    async def image_fs_info(self) -> list[pb.FilesystemUsage]:
        return []

    # -- what happens inside containers ---------------------------------------------------------

    def exit(self, cid: str, code: int) -> None:
        self.statuses[cid] = _changed(self.statuses[cid], state=pb.CONTAINER_EXITED, exit_code=code,
                                      finished_at=self._ns())
        self.containers[cid] = _changed(self.containers[cid], state=pb.CONTAINER_EXITED)

    def running(self, name: str) -> str:
        """The id of the running container `name` (exactly one)."""
        ids = [cid for cid, c in self.containers.items()
               if c.metadata.name == name and self.statuses[cid].state == pb.CONTAINER_RUNNING]
        assert len(ids) == 1, (name, ids)
        return ids[0]


    # -- the pod UID index ------------------------------------------------------------------------

    def _index(self, id_: str, labels: Mapping[str, str]) -> None:
        if uid := labels.get(POD_UID):
            self._by_pod.setdefault(uid, {})[id_] = None

    def _unindex(self, id_: str, labels: Mapping[str, str]) -> None:
        if (ids := self._by_pod.get(labels.get(POD_UID, ""))) is not None:
            ids.pop(id_, None)
            if not ids:
                del self._by_pod[labels[POD_UID]]

    def _select(self, stored: Mapping[str, S], selector: Mapping[str, str] | None) -> list[S]:
        """The stored messages `selector` matches, in creation order; one naming a pod UID looks at that pod's only."""
        if not selector:
            return list(stored.values())
        candidates: Iterable[S] = stored.values()
        if POD_UID in selector:
            candidates = [stored[i] for i in self._by_pod.get(selector[POD_UID], {}) if i in stored]
        return [m for m in candidates if _selected(m.labels, selector)]


def _changed(m: M, **fields: Any) -> M:
    """A copy of `m` with `fields` set: a message once handed out is never changed."""
    out = copy(m)
    for k, v in fields.items():
        setattr(out, k, v)
    return out


def _selected(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())
