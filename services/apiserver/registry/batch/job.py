"""Jobs: the generated selector, defaults and validation (Kubernetes' pkg/apis/batch and pkg/registry/batch/job).

Unless `spec.manualSelector` is true, the server gives the pod template the job-name and controller-uid labels
(prefixed and legacy) and selects on `batch.kubernetes.io/controller-uid`, so a Job's pods are its own. The
job-spec rules are shared with the CronJob's jobTemplate (`validate_job_spec`).
"""

from __future__ import annotations

from pybernetes.api import jobs
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.objects import meta_of
from services.apiserver.registry.field import Errs, GoValue, child, go_map, key
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import (
    go_label_selector,
    selector_matches,
    validate_conditions,
    validate_label_selector,
)
from services.apiserver.registry.podspec import default_template, validate_pod_template

NON_INDEXED = "NonIndexed"
INDEXED = "Indexed"
RESTART_POLICIES = ("OnFailure", "Never")


def generate_selector(job: batch.Job) -> None:
    """generateSelector: labels on the template (user-set ones kept; validation refuses a mismatch) and the
    controller-uid selector."""
    labels = job.spec.template.metadata.labels
    md = meta_of(job)
    for name in (jobs.LEGACY_JOB_NAME_LABEL, jobs.JOB_NAME_LABEL):
        labels.setdefault(name, md.name)
    for name in (jobs.LEGACY_CONTROLLER_UID_LABEL, jobs.CONTROLLER_UID_LABEL):
        labels.setdefault(name, md.uid)
    job.spec.selector.match_labels.setdefault(jobs.CONTROLLER_UID_LABEL, md.uid)


def prepare_for_create(job: batch.Job) -> None:
    clear_status(job)
    if not job.spec.manual_selector:
        generate_selector(job)


def default_job_spec(spec: batch.JobSpec) -> None:
    """SetDefaults_Job's spec part: completions and parallelism 1 when both are unset, backoffLimit 6."""
    if not spec.HasField("completions") and not spec.HasField("parallelism"):
        spec.completions = 1
    if not spec.HasField("parallelism"):
        spec.parallelism = 1
    if not spec.HasField("backoff_limit"):
        spec.backoff_limit = 6
    if not spec.HasField("completion_mode"):
        spec.completion_mode = NON_INDEXED
    if not spec.HasField("suspend"):
        spec.suspend = False
    default_template(spec.template)


def default(job: batch.Job) -> None:
    default_job_spec(job.spec)
    if job.spec.template.metadata.labels and not job.metadata.labels:
        job.metadata.labels.update(job.spec.template.metadata.labels)


def validate_job_spec(spec: batch.JobSpec, path: str, errs: Errs) -> None:
    """validateJobSpec: what a Job's spec and a CronJob's jobTemplate.spec share (the selector is apart)."""
    for present, value, json_name in (
            (spec.HasField("parallelism"), spec.parallelism, "parallelism"),
            (spec.HasField("completions"), spec.completions, "completions"),
            (spec.HasField("active_deadline_seconds"), spec.active_deadline_seconds, "activeDeadlineSeconds"),
            (spec.HasField("backoff_limit"), spec.backoff_limit, "backoffLimit"),
            (spec.HasField("ttl_seconds_after_finished"), spec.ttl_seconds_after_finished,
             "ttlSecondsAfterFinished")):
        if present:
            errs.nonnegative(child(path, json_name), value)
    if spec.HasField("completion_mode"):
        if spec.completion_mode == INDEXED:
            errs.not_supported(child(path, "completionMode"), spec.completion_mode, (NON_INDEXED,))
        elif spec.completion_mode != NON_INDEXED:
            errs.not_supported(child(path, "completionMode"), spec.completion_mode, (NON_INDEXED, INDEXED))
    tp = child(path, "template")
    if not spec.HasField("template"):
        errs.required(tp)
        return
    validate_pod_template(spec.template, tp, errs)
    if spec.template.spec.restart_policy not in RESTART_POLICIES:
        errs.not_supported(child(tp, "spec", "restartPolicy"), spec.template.spec.restart_policy, RESTART_POLICIES)


def _validate_has_label(labels: dict[str, str], name: str, expected: str, errs: Errs) -> None:
    p = key(child("spec", "template", "metadata", "labels"), name)
    if name not in labels:
        errs.required(p, f"must be '{expected}'")
    elif labels[name] != expected:
        errs.invalid(p, go_map(labels), f"must be '{expected}'")


def _validate_generated_selector(job: batch.Job, errs: Errs) -> None:
    """validateGeneratedSelector: a generated selector's labels are on the template and select this job."""
    if job.spec.manual_selector or not job.spec.template.metadata.labels:
        return
    md = meta_of(job)
    if not md.uid:
        errs.required("metadata.uid")
    labels = dict(job.spec.template.metadata.labels)
    for name, expected in ((jobs.LEGACY_CONTROLLER_UID_LABEL, md.uid), (jobs.LEGACY_JOB_NAME_LABEL, md.name),
                           (jobs.CONTROLLER_UID_LABEL, md.uid), (jobs.JOB_NAME_LABEL, md.name)):
        _validate_has_label(labels, name, expected, errs)
    expected_labels = {jobs.CONTROLLER_UID_LABEL: md.uid, jobs.JOB_NAME_LABEL: md.name}
    if not selector_matches(job.spec.selector, expected_labels):
        errs.invalid("spec.selector", go_label_selector(job.spec.selector), "`selector` not auto-generated")


def validate(job: batch.Job, errs: Errs) -> None:
    spec = job.spec
    _validate_generated_selector(job, errs)
    if not spec.HasField("selector"):
        errs.required("spec.selector")
    else:
        validate_label_selector(spec.selector, "spec.selector", errs)
        if not selector_matches(spec.selector, spec.template.metadata.labels):
            errs.invalid("spec.template.metadata.labels", go_map(spec.template.metadata.labels),
                         "`selector` does not match template `labels`")
    validate_job_spec(spec, "spec", errs)


def validate_update(new: batch.Job, old: batch.Job, errs: Errs) -> None:
    """ValidateJobUpdate: selector, completions and completionMode are fixed; the template may change only
    while the job is suspended (Kubernetes allows that to reschedule a job that has not run)."""
    if new.spec.selector != old.spec.selector:
        errs.invalid("spec.selector", go_label_selector(new.spec.selector), "field is immutable")
    errs.immutable("spec.completions", new.spec.completions, old.spec.completions)
    errs.immutable("spec.completionMode", new.spec.completion_mode, old.spec.completion_mode)
    if new.spec.template != old.spec.template and not (old.spec.suspend and new.spec.suspend):
        errs.invalid("spec.template", GoValue("core.PodTemplateSpec{...}"), "field is immutable")


def validate_status(new: batch.Job, old: batch.Job, errs: Errs) -> None:
    st = new.status
    for field_name, json_name in (("active", "active"), ("succeeded", "succeeded"), ("failed", "failed"),
                                  ("ready", "ready"), ("terminating", "terminating")):
        errs.nonnegative(child("status", json_name), getattr(st, field_name))
    if st.HasField("completion_time") and st.HasField("start_time") \
            and st.completion_time.seconds < st.start_time.seconds:
        errs.invalid("status.completionTime", st.completion_time.seconds, "completionTime cannot be set before "
                     "startTime")
    validate_conditions(st.conditions, "status.conditions", errs)


STRATEGY = KindStrategy(batch.Job, default=default, validate=validate, validate_update=validate_update,
                        validate_status=validate_status, prepare_for_create=prepare_for_create)
