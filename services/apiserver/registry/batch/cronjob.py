"""CronJobs: defaults and validation (Kubernetes' pkg/apis/batch: validateCronJobSpec), the schedule parsed by
pybernetes.api.cron; the jobTemplate's spec follows the Job rules (job.py) with a selector the Job gets later."""

from __future__ import annotations

from pybernetes.api import cron
from pybernetes.api.batch.v1 import batch_pb2 as batch
from services.apiserver.registry.field import Errs, child
from services.apiserver.registry.formats import is_dns1123_subdomain, max_len_error
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import go_label_selector, validate_labels
from services.apiserver.registry.podspec import default_template

from .job import validate_job_spec

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
# A Job's name is the CronJob's plus "-" and up to 10 digits of minutes, and must still be a DNS label.
MAX_NAME_LENGTH = 52


def name_errors(name: str) -> list[str]:
    errs = is_dns1123_subdomain(name)
    if len(name) > MAX_NAME_LENGTH:
        errs.append(max_len_error(MAX_NAME_LENGTH))
    return errs


def default(cj: batch.CronJob) -> None:
    """SetDefaults_CronJob (and the pod template defaults the generated defaulters apply below it)."""
    spec = cj.spec
    if not spec.concurrency_policy:
        spec.concurrency_policy = "Allow"
    if not spec.HasField("suspend"):
        spec.suspend = False
    if not spec.HasField("successful_jobs_history_limit"):
        spec.successful_jobs_history_limit = 3
    if not spec.HasField("failed_jobs_history_limit"):
        spec.failed_jobs_history_limit = 1
    default_template(spec.job_template.spec.template)


def _validate_schedule(spec: batch.CronJobSpec, allow_tz: bool, errs: Errs) -> None:
    p = "spec.schedule"
    if not spec.schedule:
        errs.required(p)
        return
    errs.invalid_each(p, spec.schedule, cron.schedule_errors(spec.schedule))
    if "TZ" in spec.schedule:
        if not allow_tz:
            errs.invalid(p, spec.schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        elif spec.HasField("time_zone"):
            errs.invalid(p, spec.schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")


def _validate(cj: batch.CronJob, old: batch.CronJob | None, errs: Errs) -> None:
    spec = cj.spec
    _validate_schedule(spec, old is not None and "TZ" in old.spec.schedule, errs)
    if spec.HasField("starting_deadline_seconds"):
        errs.nonnegative("spec.startingDeadlineSeconds", spec.starting_deadline_seconds)
    if spec.HasField("time_zone") and (old is None or old.spec.time_zone != spec.time_zone
                                       or not old.spec.HasField("time_zone")):
        errs.invalid_each("spec.timeZone", spec.time_zone, cron.time_zone_errors(spec.time_zone))
    if not spec.concurrency_policy:
        errs.required("spec.concurrencyPolicy")
    elif spec.concurrency_policy not in CONCURRENCY_POLICIES:
        errs.not_supported("spec.concurrencyPolicy", spec.concurrency_policy, CONCURRENCY_POLICIES)
    # ValidateJobTemplateSpec: the Job created from it gets a generated selector.
    jt = "spec.jobTemplate"
    validate_labels(spec.job_template.metadata.labels, child(jt, "metadata", "labels"), errs)
    validate_job_spec(spec.job_template.spec, child(jt, "spec"), errs)
    if spec.job_template.spec.HasField("selector"):
        errs.invalid(child(jt, "spec", "selector"), go_label_selector(spec.job_template.spec.selector),
                     "`selector` will be auto-generated")
    if spec.job_template.spec.manual_selector:
        errs.not_supported(child(jt, "spec", "manualSelector"), True, ("nil", "false"))
    for field_name, json_name in (("successful_jobs_history_limit", "successfulJobsHistoryLimit"),
                                  ("failed_jobs_history_limit", "failedJobsHistoryLimit")):
        errs.nonnegative(child("spec", json_name), getattr(spec, field_name))


def validate(cj: batch.CronJob, errs: Errs) -> None:
    # Runs on update too (the old object is not passed to create rules): a schedule with TZ stays refused.
    _validate(cj, None, errs)


def validate_status(new: batch.CronJob, old: batch.CronJob, errs: Errs) -> None:
    for i, ref in enumerate(new.status.active):
        if not ref.name:
            errs.required(child(f"status.active[{i}]", "name"))
        if ref.kind and ref.kind != "Job":
            errs.not_supported(child(f"status.active[{i}]", "kind"), ref.kind, ("Job",))


STRATEGY = KindStrategy(batch.CronJob, default=default, name=name_errors, validate=validate,
                        validate_status=validate_status, prepare_for_create=clear_status)
