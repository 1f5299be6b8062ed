"""ResourceQuotas: validation of spec.hard, the scopes and the status (Kubernetes' ValidateResourceQuota).

Status is the quota controller's (services/controllers/resourcequota.py), written through the status
subresource; a create starts without one.
"""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.quantities import resource_list

SCOPES = ("BestEffort", "NotBestEffort", "NotTerminating", "Terminating")
SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "In", "NotIn")


def validate(q: core.ResourceQuota, errs: Errs) -> None:
    resource_list(q.spec.hard, "spec.hard", errs)
    for i, scope in enumerate(q.spec.scopes):
        if scope not in SCOPES:
            errs.not_supported(index("spec.scopes", i), scope, SCOPES)
    for i, req in enumerate(q.spec.scope_selector.match_expressions):
        p = index("spec.scopeSelector.matchExpressions", i)
        if req.scope_name not in (*SCOPES, "PriorityClass", "CrossNamespacePodAffinity"):
            errs.not_supported(child(p, "scopeName"), req.scope_name, SCOPES)
        if req.operator not in SELECTOR_OPERATORS:
            errs.not_supported(child(p, "operator"), req.operator, SELECTOR_OPERATORS)
    resource_list(q.status.hard, "status.hard", errs)
    resource_list(q.status.used, "status.used", errs)


def validate_status(new: core.ResourceQuota, old: core.ResourceQuota, errs: Errs) -> None:
    validate(new, errs)


STRATEGY = KindStrategy(core.ResourceQuota, validate=validate, validate_status=validate_status,
                        prepare_for_create=clear_status)
