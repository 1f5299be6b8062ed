"""ClusterRoles: the rules (URLs allowed) and the aggregation rule's label selectors."""

from __future__ import annotations

from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.registry.field import Errs, index
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.metadata import validate_label_selector
from services.apiserver.registry.rbac.role import is_path_segment_name, validate_rules


def validate(role: rbac.ClusterRole, errs: Errs) -> None:
    validate_rules(role.rules, "rules", errs, namespaced=False)
    if role.HasField("aggregation_rule"):
        sels = role.aggregation_rule.cluster_role_selectors
        if not sels:
            errs.required("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector required if "
                          "aggregationRule is non-nil")
        for i, sel in enumerate(sels):
            validate_label_selector(sel, index("aggregationRule.clusterRoleSelectors", i), errs)


STRATEGY = KindStrategy(rbac.ClusterRole, name=is_path_segment_name, validate=validate)
