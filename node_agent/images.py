"""EnsureImage with imagePullPolicy, pull backoff, and the Pulling/Pulled/Failed/BackOff events.

A failed pull leaves the container waiting with reason ErrImagePull (the registry's message); until the
backoff (10 s doubling to 300 s, per pod and image) expires the reason is ImagePullBackOff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from node_agent.cri.client import CRIClient
from node_agent.cri.errors import CRIUnavailable, ImagePullError
from pybernetes.api.core.v1 import core_pb2 as core

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0

EventFn = Callable[[core.Pod, str, str, str], None]


class ImageError(Exception):
    def __init__(self, reason: str, message: str, retry_at: float = 0.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_at = retry_at


@dataclass
class _Backoff:
    delay: float
    until: float
    message: str


def pull_policy(c: core.Container) -> str:
    if c.image_pull_policy:
        return c.image_pull_policy
    tag = c.image.rsplit("/", 1)[-1]
    if "@" in c.image:
        return "IfNotPresent"
    return "Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent"


class ImageManager:
    def __init__(self, cri: CRIClient, event: EventFn, *, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF) -> None:
        self.cri = cri
        self.event = event
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._backoff: dict[tuple[str, str], _Backoff] = {}

    def forget_pod(self, uid: str) -> None:
        for k in [k for k in self._backoff if k[0] == uid]:
            del self._backoff[k]

    async def ensure(self, pod: core.Pod, c: core.Container) -> str:
        """The image reference to run `c` with; raises ImageError(reason, message)."""
        image = c.image
        policy = pull_policy(c)
        present = await self.cri.image_status(image)
        if present is not None and policy != "Always":
            self.event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        if policy == "Never":
            msg = f'Container image "{image}" is not present with pull policy of Never'
            self.event(pod, "Warning", "ErrImageNeverPull", msg)
            raise ImageError("ErrImageNeverPull", msg)
        key = (pod.metadata.uid, image)
        now = time.monotonic()
        bo = self._backoff.get(key)
        if bo is not None and now < bo.until:
            msg = f'Back-off pulling image "{image}"'
            self.event(pod, "Normal", "BackOff", msg)
            raise ImageError("ImagePullBackOff", f"{msg}: {bo.message}", bo.until)
        self.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            ref = await self.cri.pull_image(image)
        except CRIUnavailable:
            raise
        except ImagePullError as e:
            if present is not None:  # policy Always but the registry failed: use what we have
                log.warning("pull failed, using present image image=%s error=%s", image, e.message)
                return present.id
            delay = self.initial_backoff if bo is None else min(bo.delay * 2, self.max_backoff)
            msg = f'Failed to pull image "{image}": {e.message}'
            self._backoff[key] = _Backoff(delay, time.monotonic() + delay, e.message)
            self.event(pod, "Warning", "Failed", msg)
            self.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            raise ImageError("ErrImagePull", msg, time.monotonic() + delay) from None
        self._backoff.pop(key, None)
        self.event(pod, "Normal", "Pulled",
                   f'Successfully pulled image "{image}" in {time.monotonic() - t0:.3f}s')
        return ref
