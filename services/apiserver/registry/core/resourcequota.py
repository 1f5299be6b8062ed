"""ResourceQuotas: validation of spec.hard, the scopes and the status (Kubernetes' ValidateResourceQuota).

Status is the quota controller's (services/controllers/resourcequota.py), written through the status
subresource; a create starts without one.
"""

from __future__ import annotations

from collections.abc import Mapping

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, child, index, key
from services.apiserver.registry.formats import is_qualified_name
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status

SCOPES = ("BestEffort", "NotBestEffort", "NotTerminating", "Terminating")
SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "In", "NotIn")


def _resources(bag: Mapping[str, meta.Quantity], path: str, errs: Errs) -> None:
    for name in sorted(bag):
        p = key(path, name)
        errs.invalid_each(p, name, is_qualified_name(name))
        text = bag[name].string
        try:
            amount = quantity.parse(text)
        except quantity.QuantityError as e:
            errs.invalid(p, text, str(e))
            continue
        if amount < 0:
            errs.invalid(p, text, "must be greater than or equal to 0")


def validate(q: core.ResourceQuota, errs: Errs) -> None:
    _resources(q.spec.hard, "spec.hard", errs)
    for i, scope in enumerate(q.spec.scopes):
        if scope not in SCOPES:
            errs.not_supported(index("spec.scopes", i), scope, SCOPES)
    for i, req in enumerate(q.spec.scope_selector.match_expressions):
        p = index("spec.scopeSelector.matchExpressions", i)
        if req.scope_name not in (*SCOPES, "PriorityClass", "CrossNamespacePodAffinity"):
            errs.not_supported(child(p, "scopeName"), req.scope_name, SCOPES)
        if req.operator not in SELECTOR_OPERATORS:
            errs.not_supported(child(p, "operator"), req.operator, SELECTOR_OPERATORS)
    _resources(q.status.hard, "status.hard", errs)
    _resources(q.status.used, "status.used", errs)


def validate_status(new: core.ResourceQuota, old: core.ResourceQuota, errs: Errs) -> None:
    validate(new, errs)


STRATEGY = KindStrategy(core.ResourceQuota, validate=validate, validate_status=validate_status,
                        prepare_for_create=clear_status)
