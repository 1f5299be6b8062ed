"""RoleBindings: the roleRef (a Role of the namespace or a ClusterRole, immutable once set) and the
subjects (User, Group, or ServiceAccount with its apiGroup empty), as kube's ValidateRoleBinding."""

from __future__ import annotations

from collections.abc import Sequence

from pybernetes.api.kinds import RBAC_GROUP
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.formats import is_dns1123_label, is_dns1123_subdomain
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.rbac.role import is_path_segment_name

SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def validate_role_ref(ref: rbac.RoleRef, has: bool, kinds: Sequence[str], errs: Errs) -> None:
    if not has:
        errs.required("roleRef")
        return
    if ref.api_group != RBAC_GROUP:
        errs.not_supported("roleRef.apiGroup", ref.api_group, [RBAC_GROUP])
    if ref.kind and ref.kind not in kinds:
        errs.not_supported("roleRef.kind", ref.kind, kinds)
    if ref.name:
        errs.invalid_each("roleRef.name", ref.name, is_path_segment_name(ref.name))


def validate_subjects(subjects: Sequence[rbac.Subject], errs: Errs, *, cluster: bool) -> None:
    for i, s in enumerate(subjects):
        p = index("subjects", i)
        if s.kind == "ServiceAccount":
            if s.api_group:
                errs.not_supported(child(p, "apiGroup"), s.api_group, [""])
            if s.name:
                errs.invalid_each(child(p, "name"), s.name, is_dns1123_subdomain(s.name))
            if s.namespace:
                errs.invalid_each(child(p, "namespace"), s.namespace, is_dns1123_label(s.namespace))
            elif cluster:
                errs.required(child(p, "namespace"))
        elif s.kind in ("User", "Group"):
            if s.api_group != RBAC_GROUP:
                errs.not_supported(child(p, "apiGroup"), s.api_group, [RBAC_GROUP])
        elif s.kind:
            errs.not_supported(child(p, "kind"), s.kind, SUBJECT_KINDS)


def validate(b: rbac.RoleBinding, errs: Errs) -> None:
    validate_role_ref(b.role_ref, b.HasField("role_ref"), ("Role", "ClusterRole"), errs)
    validate_subjects(b.subjects, errs, cluster=False)


def validate_role_ref_update(new: rbac.RoleRef, old: rbac.RoleRef, errs: Errs) -> None:
    if new != old:
        errs.invalid("roleRef", f"{new.kind}/{new.name}", "cannot change roleRef")


def validate_update(new: rbac.RoleBinding, old: rbac.RoleBinding, errs: Errs) -> None:
    validate_role_ref_update(new.role_ref, old.role_ref, errs)


STRATEGY = KindStrategy(rbac.RoleBinding, name=is_path_segment_name, validate=validate,
                        validate_update=validate_update)
