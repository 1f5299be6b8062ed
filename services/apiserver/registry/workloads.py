"""What the workload kinds share: the selector and pod template of ReplicationControllers, ReplicaSets,
Deployments, DaemonSets and StatefulSets, the immutable selector of the apps kinds, int-or-percent rollout
bounds, and the replica counts of their status."""

from __future__ import annotations

from typing import Any

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, GoValue, child, go_map, go_quote
from services.apiserver.registry.formats import is_valid_percent
from services.apiserver.registry.metadata import (
    go_label_selector,
    selector_matches,
    validate_conditions,
    validate_label_selector,
)
from services.apiserver.registry.podspec import validate_pod_template

AppsSpec = apps.DeploymentSpec | apps.ReplicaSetSpec | apps.DaemonSetSpec | apps.StatefulSetSpec
AppsKind = apps.Deployment | apps.ReplicaSet | apps.DaemonSet | apps.StatefulSet


def validate_apps_selector(spec: AppsSpec, errs: Errs, kind: str = "deployment") -> None:
    if not spec.HasField("selector"):
        errs.required("spec.selector")
        return
    validate_label_selector(spec.selector, "spec.selector", errs)
    if not spec.selector.match_labels and not spec.selector.match_expressions:
        errs.invalid("spec.selector", go_label_selector(spec.selector), f"empty selector is invalid for {kind}")


def go_int_or_string(v: meta.IntOrString) -> GoValue:
    return GoValue(f"intstr.IntOrString{{Type:{v.type}, IntVal:{v.int_val}, StrVal:{go_quote(v.str_val)}}}")


def validate_positive_int_or_percent(v: meta.IntOrString, path: str, errs: Errs) -> None:
    if v.type == 1:
        errs.invalid_each(path, go_int_or_string(v), is_valid_percent(v.str_val))
    else:
        errs.nonnegative(path, v.int_val)


def int_or_percent_value(v: meta.IntOrString) -> int:
    """The number of an int-or-percent ("25%" -> 25); -1 for a malformed percentage."""
    if v.type == 1:
        try:
            return int(v.str_val.removesuffix("%"))
        except ValueError:
            return -1
    return v.int_val


def validate_not_more_than_100_percent(v: meta.IntOrString, path: str, errs: Errs) -> None:
    if v.type == 1 and int_or_percent_value(v) > 100:
        errs.invalid(path, go_int_or_string(v), "must not be greater than 100%")


def validate_selector_update(new: AppsKind, old: AppsKind, errs: Errs) -> None:
    if new.spec.selector != old.spec.selector:
        errs.invalid("spec.selector", go_label_selector(new.spec.selector), "field is immutable")


def validate_selector_and_template(selector: meta.LabelSelector | None, has_template: bool,
                                   template: core.PodTemplateSpec, path: str, kind: str, errs: Errs) -> None:
    """ValidatePodTemplateSpecForReplicaSet and friends: selector vs labels, restartPolicy Always."""
    tp = child(path, "template")
    if not has_template:
        errs.required(tp)
        return
    if selector is not None and (selector.match_labels or selector.match_expressions) \
            and not selector_matches(selector, template.metadata.labels):
        errs.invalid(child(tp, "metadata", "labels"), go_map(template.metadata.labels),
                     "`selector` does not match template `labels`")
    validate_pod_template(template, tp, errs)
    if template.spec.restart_policy != "Always":
        errs.not_supported(child(tp, "spec", "restartPolicy"), template.spec.restart_policy, ("Always",))
    if template.spec.HasField("active_deadline_seconds"):
        if kind == "ReplicationController":
            errs.forbidden(child(tp, "spec", "activeDeadlineSeconds"),
                           "activeDeadlineSeconds in ReplicationController is not Supported")
        else:
            # Deployments share the ReplicaSet rule and its message, as in Kubernetes.
            named = kind if kind in ("DaemonSet", "StatefulSet") else "ReplicaSet"
            errs.invalid(child(tp, "spec", "activeDeadlineSeconds"), template.spec.active_deadline_seconds,
                         f"activeDeadlineSeconds in {named} is not Supported")


def validate_replica_counts(st: Any, errs: Errs) -> None:
    """Workload status: counts non-negative and consistent (ValidateReplicaSetStatus and friends)."""
    for field_name, json_name in (("replicas", "replicas"), ("fully_labeled_replicas", "fullyLabeledReplicas"),
                                  ("updated_replicas", "updatedReplicas"), ("ready_replicas", "readyReplicas"),
                                  ("available_replicas", "availableReplicas"),
                                  ("unavailable_replicas", "unavailableReplicas"),
                                  ("observed_generation", "observedGeneration")):
        if field_name in st.DESCRIPTOR.fields_by_name:
            errs.nonnegative(child("status", json_name), getattr(st, field_name))
    if "fully_labeled_replicas" in st.DESCRIPTOR.fields_by_name and st.fully_labeled_replicas > st.replicas:
        errs.invalid("status.fullyLabeledReplicas", st.fully_labeled_replicas,
                     "cannot be greater than status.replicas")
    if st.ready_replicas > st.replicas:
        errs.invalid("status.readyReplicas", st.ready_replicas, "cannot be greater than status.replicas")
    if st.available_replicas > st.replicas:
        errs.invalid("status.availableReplicas", st.available_replicas, "cannot be greater than status.replicas")
    if st.available_replicas > st.ready_replicas:
        errs.invalid("status.availableReplicas", st.available_replicas,
                     "cannot be greater than readyReplicas")
    validate_conditions(st.conditions, "status.conditions", errs)
