"""DaemonSets: validation (selector, template, update strategy), defaults, create strategy
(Kubernetes pkg/apis/apps/validation ValidateDaemonSet and SetDefaults_DaemonSet).

The selector/template and status rules are shared with the other workloads (workloads.py).
"""

from __future__ import annotations

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, child
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

ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"


def _validate_update_strategy(st: apps.DaemonSetUpdateStrategy, errs: Errs) -> None:
    p = "spec.updateStrategy"
    if not st.type:
        errs.required(child(p, "type"))
        return
    if st.type == ON_DELETE:
        return
    if st.type != ROLLING_UPDATE:
        errs.not_supported(child(p, "type"), st.type, (ON_DELETE, ROLLING_UPDATE))
        return
    if not st.HasField("rolling_update"):
        errs.required(child(p, "rollingUpdate"))
        return
    ru, rp = st.rolling_update, child(p, "rollingUpdate")
    for v, name in ((ru.max_unavailable, "maxUnavailable"), (ru.max_surge, "maxSurge")):
        validate_positive_int_or_percent(v, child(rp, name), errs)
        validate_not_more_than_100_percent(v, child(rp, name), errs)
    # Exactly one of maxSurge and maxUnavailable is non-zero.
    has_unavailable = int_or_percent_value(ru.max_unavailable) != 0
    has_surge = int_or_percent_value(ru.max_surge) != 0
    if has_unavailable and has_surge:
        errs.invalid(child(rp, "maxSurge"), go_int_or_string(ru.max_surge),
                     "may not be set when maxUnavailable is non-zero")
    elif not has_unavailable and not has_surge:
        errs.required(child(rp, "maxUnavailable"), "cannot be 0 when maxSurge is 0")


def validate(ds: apps.DaemonSet, errs: Errs) -> None:
    spec = ds.spec
    validate_apps_selector(spec, errs, "daemonset")
    validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                   spec.template, "spec", "DaemonSet", errs)
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    _validate_update_strategy(spec.update_strategy, errs)
    if spec.HasField("revision_history_limit"):
        errs.nonnegative("spec.revisionHistoryLimit", spec.revision_history_limit)


def default(ds: apps.DaemonSet) -> None:
    spec = ds.spec
    st = spec.update_strategy
    if not st.type:
        st.type = ROLLING_UPDATE
    if st.type == ROLLING_UPDATE:
        st.rolling_update.SetInParent()
        if not st.rolling_update.HasField("max_unavailable"):
            st.rolling_update.max_unavailable.CopyFrom(meta.IntOrString(type=0, int_val=1))
        if not st.rolling_update.HasField("max_surge"):
            st.rolling_update.max_surge.CopyFrom(meta.IntOrString(type=0, int_val=0))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    default_template(spec.template)


def validate_status(new: apps.DaemonSet, old: apps.DaemonSet, errs: Errs) -> None:
    st = new.status
    for value, name in ((st.current_number_scheduled, "currentNumberScheduled"),
                        (st.number_misscheduled, "numberMisscheduled"),
                        (st.desired_number_scheduled, "desiredNumberScheduled"), (st.number_ready, "numberReady"),
                        (st.observed_generation, "observedGeneration"),
                        (st.updated_number_scheduled, "updatedNumberScheduled"),
                        (st.number_available, "numberAvailable"), (st.number_unavailable, "numberUnavailable")):
        errs.nonnegative(child("status", name), value)
    if st.HasField("collision_count"):
        errs.nonnegative("status.collisionCount", st.collision_count)
    validate_conditions(st.conditions, "status.conditions", errs)


STRATEGY = KindStrategy(apps.DaemonSet, default=default, validate=validate, validate_update=validate_selector_update,
                        validate_status=validate_status, prepare_for_create=clear_status)
