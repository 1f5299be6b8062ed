"""QoS classes as Kubernetes computes them."""

from __future__ import annotations

import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.qos import qos_class


def pod(*containers: tuple[dict[str, str], dict[str, str]], init: tuple[dict[str, str], dict[str, str]] | None = None
        ) -> core.Pod:
    p = core.Pod()
    for req, lim in containers:
        c = p.spec.containers.add(name=f"c{len(p.spec.containers)}")
        for k, v in req.items():
            c.resources.requests[k].string = v
        for k, v in lim.items():
            c.resources.limits[k].string = v
    if init is not None:
        ic = p.spec.init_containers.add(name="init")
        for k, v in init[0].items():
            ic.resources.requests[k].string = v
        for k, v in init[1].items():
            ic.resources.limits[k].string = v
    return p


FULL = {"cpu": "1", "memory": "1Gi"}


@pytest.mark.parametrize(("p", "want"), [
    (pod(({}, {})), "BestEffort"),
    (pod(({"ephemeral-storage": "1Gi"}, {})), "BestEffort"),  # only cpu and memory count
    (pod(({"cpu": "0"}, {})), "BestEffort"),  # zero is no request
    (pod((FULL, FULL)), "Guaranteed"),
    (pod(({"cpu": "1000m", "memory": "1024Mi"}, FULL)), "Guaranteed"),  # equal values, other spellings
    (pod((FULL, FULL), (FULL, FULL)), "Guaranteed"),
    (pod((FULL, FULL), ({}, {})), "Burstable"),  # one container without limits
    (pod(({"cpu": "500m", "memory": "1Gi"}, FULL)), "Burstable"),
    (pod(({"cpu": "100m"}, {})), "Burstable"),
    (pod((FULL, FULL), init=({}, {"cpu": "1"})), "Burstable"),  # init containers count
    (pod(({"cpu": "bogus"}, {})), "BestEffort"),  # invalid: validation's business, not a crash
])
def test_qos_class(p: core.Pod, want: str) -> None:
    assert qos_class(p) == want
