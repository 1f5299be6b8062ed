"""Deployments: validation (selector, template, rollout strategy, deadlines), defaults, create strategy.

The selector/template and status rules are shared with the other workloads (workloads.py).
"""

from __future__ import annotations

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, GoValue, child, go_quote
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.podspec import default_template
from services.apiserver.registry.workloads import (
    go_int_or_string,
    int_or_percent_value,
    validate_apps_selector,
    validate_positive_int_or_percent,
    validate_replica_counts,
    validate_selector_and_template,
    validate_selector_update,
)


def validate(d: apps.Deployment, errs: Errs) -> None:
    spec = d.spec
    errs.nonnegative("spec.replicas", spec.replicas)
    validate_apps_selector(spec, errs)
    validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                   spec.template, "spec", "Deployment", errs)
    st, p = spec.strategy, "spec.strategy"
    if st.type == "Recreate":
        if st.HasField("rolling_update"):
            errs.forbidden(child(p, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")
    elif st.type == "RollingUpdate":
        if not st.HasField("rolling_update"):
            errs.required(child(p, "rollingUpdate"), "this should be defaulted and never be nil")
        else:
            ru, rp = st.rolling_update, child(p, "rollingUpdate")
            validate_positive_int_or_percent(ru.max_unavailable, child(rp, "maxUnavailable"), errs)
            validate_positive_int_or_percent(ru.max_surge, child(rp, "maxSurge"), errs)
            if int_or_percent_value(ru.max_unavailable) == 0 and int_or_percent_value(ru.max_surge) == 0:
                errs.invalid(child(rp, "maxUnavailable"), go_int_or_string(ru.max_unavailable),
                             "may not be 0 when `maxSurge` is 0")
            if ru.max_unavailable.type == 1 and int_or_percent_value(ru.max_unavailable) > 100:
                errs.invalid(child(rp, "maxUnavailable"), go_int_or_string(ru.max_unavailable),
                             "must not be greater than 100%")
    else:
        ru_text = "(*apps.RollingUpdateDeployment)(nil)" if not st.HasField("rolling_update") \
            else "&apps.RollingUpdateDeployment{...}"
        errs.not_supported(p, GoValue(f"apps.DeploymentStrategy{{Type:{go_quote(st.type)}, RollingUpdate:{ru_text}}}"),
                           ("Recreate", "RollingUpdate"))
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    if spec.HasField("revision_history_limit"):
        errs.nonnegative("spec.revisionHistoryLimit", spec.revision_history_limit)
    if spec.HasField("progress_deadline_seconds"):
        errs.nonnegative("spec.progressDeadlineSeconds", spec.progress_deadline_seconds)
        if spec.progress_deadline_seconds <= spec.min_ready_seconds:
            errs.invalid("spec.progressDeadlineSeconds", spec.progress_deadline_seconds,
                         "must be greater than minReadySeconds")


def default(d: apps.Deployment) -> None:
    spec = d.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    strategy = spec.strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
    if strategy.type == "RollingUpdate":
        ru = strategy.rolling_update
        ru.SetInParent()
        if not ru.HasField("max_unavailable"):
            ru.max_unavailable.CopyFrom(meta.IntOrString(type=1, str_val="25%"))
        if not ru.HasField("max_surge"):
            ru.max_surge.CopyFrom(meta.IntOrString(type=1, str_val="25%"))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = 600
    default_template(spec.template)


def validate_status(new: apps.Deployment, old: apps.Deployment, errs: Errs) -> None:
    validate_replica_counts(new.status, errs)


STRATEGY = KindStrategy(apps.Deployment, default=default, validate=validate, validate_update=validate_selector_update,
                        validate_status=validate_status, prepare_for_create=clear_status)
