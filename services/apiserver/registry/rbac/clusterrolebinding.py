"""ClusterRoleBindings: a ClusterRole only, ServiceAccount subjects with their namespace."""

from __future__ import annotations

from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.registry.field import Errs
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.rbac.role import is_path_segment_name
from services.apiserver.registry.rbac.rolebinding import validate_role_ref, validate_role_ref_update, validate_subjects


def validate(b: rbac.ClusterRoleBinding, errs: Errs) -> None:
    validate_role_ref(b.role_ref, b.HasField("role_ref"), ("ClusterRole",), errs)
    validate_subjects(b.subjects, errs, cluster=True)


def validate_update(new: rbac.ClusterRoleBinding, old: rbac.ClusterRoleBinding, errs: Errs) -> None:
    validate_role_ref_update(new.role_ref, old.role_ref, errs)


STRATEGY = KindStrategy(rbac.ClusterRoleBinding, name=is_path_segment_name, validate=validate,
                        validate_update=validate_update)
