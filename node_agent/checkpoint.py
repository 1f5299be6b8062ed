"""Local checkpoint of the pods bound to this node: <root-dir>/checkpoints/<uid>.pb (serialized core.Pod).

Written (atomically) whenever a pod's spec or metadata changes, removed when the pod is finished with.
At startup the kubelet loads them so that, with the apiserver unreachable, it keeps running and
restarting the pods it had; the API's view replaces them once the pod informer syncs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pybernetes.api.core.v1 import core_pb2 as core

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, root_dir: Path) -> None:
        self.dir = root_dir / "checkpoints"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._last: dict[str, bytes] = {}

    def _path(self, uid: str) -> Path:
        return self.dir / f"{uid}.pb"

    @staticmethod
    def _content(pod: core.Pod) -> bytes:
        # Status is not checkpointed: it changes all the time and is rebuilt from the runtime.
        p = core.Pod()
        p.metadata.CopyFrom(pod.metadata)
        p.spec.CopyFrom(pod.spec)
        p.status.phase = pod.status.phase
        p.status.pod_ip = pod.status.pod_ip
        if pod.status.HasField("start_time"):
            p.status.start_time.CopyFrom(pod.status.start_time)
        p.metadata.ClearField("resource_version")
        p.metadata.ClearField("managed_fields")
        return p.SerializeToString(deterministic=True)

    def save(self, pod: core.Pod) -> None:
        uid = pod.metadata.uid
        data = self._content(pod)
        if self._last.get(uid) == data:
            return
        path = self._path(uid)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._last[uid] = data

    def remove(self, uid: str) -> None:
        self._last.pop(uid, None)
        self._path(uid).unlink(missing_ok=True)

    def load(self) -> list[core.Pod]:
        pods: list[core.Pod] = []
        for p in sorted(self.dir.glob("*.pb")):
            try:
                pod = core.Pod.FromString(p.read_bytes())
            except Exception as e:
                log.warning("bad checkpoint skipped path=%s error=%s", p, e)
                continue
            self._last[pod.metadata.uid] = p.read_bytes()
            pods.append(pod)
        return pods
