"""StatefulSets: validation (selector, template, pod management and update strategy, the fields an update may
change), defaults, create strategy (Kubernetes pkg/apis/apps/validation ValidateStatefulSet and
SetDefaults_StatefulSet, 1.33: serviceName is optional).

volumeClaimTemplates are part of the schema but refused until pybernetes has persistent volumes.
The selector/template and status rules are shared with the other workloads (workloads.py).
"""

from __future__ import annotations

from typing import Literal

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, GoValue, child
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import validate_conditions
from services.apiserver.registry.podspec import default_template
from services.apiserver.registry.workloads import (
    go_int_or_string,
    int_or_percent_value,
    validate_apps_selector,
    validate_not_more_than_100_percent,
    validate_positive_int_or_percent,
    validate_selector_and_template,
    validate_selector_update,
)

ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
RETAIN = "Retain"
RETENTION_POLICIES = (RETAIN, "Delete")
# The spec fields an update may change (everything else is forbidden, as in Kubernetes).
UPDATABLE: tuple[Literal["replicas", "ordinals", "template", "update_strategy", "revision_history_limit",
                         "persistent_volume_claim_retention_policy", "min_ready_seconds"], ...] = (
    "replicas", "ordinals", "template", "update_strategy", "revision_history_limit",
             "persistent_volume_claim_retention_policy", "min_ready_seconds")
UPDATABLE_TEXT = ("'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds'")


def _validate_update_strategy(st: apps.StatefulSetUpdateStrategy, errs: Errs) -> None:
    p = "spec.updateStrategy"
    if not st.type:
        errs.required(child(p, "type"))
    elif st.type == ON_DELETE:
        if st.HasField("rolling_update"):
            errs.invalid(child(p, "rollingUpdate"), GoValue("&apps.RollingUpdateStatefulSetStrategy{...}"),
                         f"only allowed for updateStrategy '{ROLLING_UPDATE}'")
    elif st.type == ROLLING_UPDATE:
        ru, rp = st.rolling_update, child(p, "rollingUpdate")
        if ru.HasField("partition"):
            errs.nonnegative(child(rp, "partition"), ru.partition)
        if ru.HasField("max_unavailable"):
            validate_positive_int_or_percent(ru.max_unavailable, child(rp, "maxUnavailable"), errs)
            if int_or_percent_value(ru.max_unavailable) == 0:
                errs.invalid(child(rp, "maxUnavailable"), go_int_or_string(ru.max_unavailable),
                             "must be greater than 0")
            validate_not_more_than_100_percent(ru.max_unavailable, child(rp, "maxUnavailable"), errs)
    else:
        errs.not_supported(child(p, "type"), st.type, (ON_DELETE, ROLLING_UPDATE))


def validate(ss: apps.StatefulSet, errs: Errs) -> None:
    spec = ss.spec
    if not spec.pod_management_policy:
        errs.required("spec.podManagementPolicy")
    elif spec.pod_management_policy not in (ORDERED_READY, PARALLEL):
        errs.not_supported("spec.podManagementPolicy", spec.pod_management_policy, (ORDERED_READY, PARALLEL))
    _validate_update_strategy(spec.update_strategy, errs)
    if spec.HasField("persistent_volume_claim_retention_policy"):
        policy, pp = spec.persistent_volume_claim_retention_policy, "spec.persistentVolumeClaimRetentionPolicy"
        for value, name in ((policy.when_deleted, "whenDeleted"), (policy.when_scaled, "whenScaled")):
            if value not in RETENTION_POLICIES:
                errs.not_supported(child(pp, name), value, RETENTION_POLICIES)
    errs.nonnegative("spec.replicas", spec.replicas)
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    if spec.HasField("ordinals"):
        errs.nonnegative("spec.ordinals.start", spec.ordinals.start)
    if spec.HasField("revision_history_limit"):
        errs.nonnegative("spec.revisionHistoryLimit", spec.revision_history_limit)
    validate_apps_selector(spec, errs, "statefulset")
    validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                   spec.template, "spec", "StatefulSet", errs)
    if spec.volume_claim_templates:
        errs.forbidden("spec.volumeClaimTemplates",
                       "not supported until pybernetes has persistent volumes; use emptyDir or hostPath volumes")


def validate_update(new: apps.StatefulSet, old: apps.StatefulSet, errs: Errs) -> None:
    a, b = apps.StatefulSetSpec(), apps.StatefulSetSpec()
    a.CopyFrom(new.spec)
    b.CopyFrom(old.spec)
    for name in UPDATABLE:
        a.ClearField(name)
        b.ClearField(name)
    if a != b:
        errs.forbidden("spec", f"updates to statefulset spec for fields other than {UPDATABLE_TEXT} are forbidden")
    validate_selector_update(new, old, errs)


def default(ss: apps.StatefulSet) -> None:
    spec = ss.spec
    if not spec.pod_management_policy:
        spec.pod_management_policy = ORDERED_READY
    st = spec.update_strategy
    if not st.type:
        st.type = ROLLING_UPDATE
    if st.type == ROLLING_UPDATE:
        st.rolling_update.SetInParent()
        if not st.rolling_update.HasField("partition"):
            st.rolling_update.partition = 0
        if not st.rolling_update.HasField("max_unavailable"):
            st.rolling_update.max_unavailable.CopyFrom(meta.IntOrString(type=0, int_val=1))
    if spec.HasField("persistent_volume_claim_retention_policy"):
        policy = spec.persistent_volume_claim_retention_policy
        policy.when_deleted = policy.when_deleted or RETAIN
        policy.when_scaled = policy.when_scaled or RETAIN
    if not spec.HasField("replicas"):
        spec.replicas = 1
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    default_template(spec.template)


def validate_status(new: apps.StatefulSet, old: apps.StatefulSet, errs: Errs) -> None:
    st = new.status
    for value, name in ((st.replicas, "replicas"), (st.ready_replicas, "readyReplicas"),
                        (st.current_replicas, "currentReplicas"), (st.updated_replicas, "updatedReplicas"),
                        (st.available_replicas, "availableReplicas"), (st.observed_generation, "observedGeneration")):
        errs.nonnegative(child("status", name), value)
    if st.HasField("collision_count"):
        errs.nonnegative("status.collisionCount", st.collision_count)
    for value, name in ((st.ready_replicas, "readyReplicas"), (st.current_replicas, "currentReplicas"),
                        (st.updated_replicas, "updatedReplicas")):
        if value > st.replicas:
            errs.invalid(child("status", name), value, "cannot be greater than status.replicas")
    if st.available_replicas > st.ready_replicas:
        errs.invalid("status.availableReplicas", st.available_replicas, "cannot be greater than status.readyReplicas")
    validate_conditions(st.conditions, "status.conditions", errs)


STRATEGY = KindStrategy(apps.StatefulSet, default=default, validate=validate, validate_update=validate_update,
                        validate_status=validate_status, prepare_for_create=clear_status)
