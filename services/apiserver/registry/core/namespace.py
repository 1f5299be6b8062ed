"""Namespaces: validation (finalizers, status phase), defaults (name label, the "kubernetes" finalizer,
phase Active), create strategy and field selectors."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs
from services.apiserver.registry.formats import is_dns1123_label
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import validate_conditions, validate_finalizers


def validate(ns: core.Namespace, errs: Errs) -> None:
    validate_finalizers(ns.spec.finalizers, "spec.finalizers", errs)


def validate_status(new: core.Namespace, old: core.Namespace, errs: Errs) -> None:
    if new.status.phase and new.status.phase not in ("Active", "Terminating"):
        errs.not_supported("status.phase", new.status.phase, ("Active", "Terminating"))
    validate_conditions(new.status.conditions, "status.conditions", errs)


def default(ns: core.Namespace) -> None:
    if ns.metadata.name:
        ns.metadata.labels["kubernetes.io/metadata.name"] = ns.metadata.name
    # The "kubernetes" finalizer is a create-time default only (the namespace controller removes it
    # while finalizing): a namespace without a phase and not being deleted is a fresh one.
    fresh = not ns.status.phase and not ns.metadata.HasField("deletion_timestamp")
    if fresh and "kubernetes" not in ns.spec.finalizers:
        ns.spec.finalizers.append("kubernetes")
    if not ns.status.phase:
        ns.status.phase = "Active"


def fields(n: core.Namespace) -> dict[str, str]:
    return {"metadata.name": n.metadata.name, "status.phase": n.status.phase}


STRATEGY = KindStrategy(core.Namespace, default=default, name=is_dns1123_label, validate=validate,
                        validate_status=validate_status, prepare_for_create=clear_status, fields=fields)
