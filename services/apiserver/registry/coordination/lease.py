"""Leases: validation of the lease spec."""

from __future__ import annotations

from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from services.apiserver.registry.field import Errs
from services.apiserver.registry.kindstrategy import KindStrategy


def validate(lease: coordination.Lease, errs: Errs) -> None:
    spec = lease.spec
    if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds <= 0:
        errs.invalid("spec.leaseDurationSeconds", spec.lease_duration_seconds, "must be greater than 0")
    if spec.HasField("lease_transitions") and spec.lease_transitions < 0:
        errs.invalid("spec.leaseTransitions", spec.lease_transitions, "must be greater than or equal to 0")
    if spec.HasField("preferred_holder") and spec.preferred_holder and not spec.HasField("strategy"):
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")


STRATEGY = KindStrategy(coordination.Lease, validate=validate)
