"""Timestamps for API objects, in Kubernetes' two precisions.

`now()` is a metav1.Time: whole seconds, as Kubernetes serializes creation, deletion and condition times.
`micro_now()` is a metav1.MicroTime: microseconds, for Lease renewals and times compared closely (heartbeats,
Deployment progress).
"""

from __future__ import annotations

import time

from pybernetes.api.meta.v1 import meta_pb2 as meta


def now() -> meta.Time:
    return meta.Time(seconds=int(time.time()))


def micro_now() -> meta.Time:
    t = time.time()
    return meta.Time(seconds=int(t), nanos=int((t - int(t)) * 1e6) * 1000)
