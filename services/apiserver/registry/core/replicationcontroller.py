"""ReplicationControllers: validation, defaults (selector and labels from the template), create strategy.

The selector/template and status rules are shared with the apps workloads (workloads.py).
"""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import validate_labels
from services.apiserver.registry.podspec import default_template
from services.apiserver.registry.workloads import validate_replica_counts, validate_selector_and_template


def validate(rc: core.ReplicationController, errs: Errs) -> None:
    spec = rc.spec
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    if not spec.selector:
        errs.required("spec.selector")
    errs.nonnegative("spec.replicas", spec.replicas)
    validate_labels(spec.selector, "spec.selector", errs)
    sel = meta.LabelSelector(match_labels=dict(spec.selector))
    validate_selector_and_template(sel, spec.HasField("template"), spec.template, "spec",
                                   "ReplicationController", errs)


def default(rc: core.ReplicationController) -> None:
    spec = rc.spec
    if spec.HasField("template"):
        labels = spec.template.metadata.labels
        if labels:
            if not spec.selector:
                spec.selector.update(labels)
            if not rc.metadata.labels:
                rc.metadata.labels.update(labels)
        default_template(spec.template)
    if not spec.HasField("replicas"):
        spec.replicas = 1


def validate_status(new: core.ReplicationController, old: core.ReplicationController, errs: Errs) -> None:
    validate_replica_counts(new.status, errs)


STRATEGY = KindStrategy(core.ReplicationController, default=default, validate=validate,
                        validate_status=validate_status, prepare_for_create=clear_status)
