"""ReplicaSets: validation, defaults, create strategy (selector/template and status rules: workloads.py)."""

from __future__ import annotations

from pybernetes.api.apps.v1 import apps_pb2 as apps
from services.apiserver.registry.field import Errs
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.podspec import default_template
from services.apiserver.registry.workloads import (
    validate_apps_selector,
    validate_replica_counts,
    validate_selector_and_template,
    validate_selector_update,
)


def validate(rs: apps.ReplicaSet, errs: Errs) -> None:
    spec = rs.spec
    errs.nonnegative("spec.replicas", spec.replicas)
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    validate_apps_selector(spec, errs)
    validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                   spec.template, "spec", "ReplicaSet", errs)


def default(rs: apps.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    default_template(rs.spec.template)


def validate_status(new: apps.ReplicaSet, old: apps.ReplicaSet, errs: Errs) -> None:
    validate_replica_counts(new.status, errs)


STRATEGY = KindStrategy(apps.ReplicaSet, default=default, validate=validate, validate_update=validate_selector_update,
                        validate_status=validate_status, prepare_for_create=clear_status)
