"""Job and CronJob defaulting and validation (Kubernetes' pkg/apis/batch): each refusal names its field."""

from __future__ import annotations

from collections.abc import Callable
from operator import setitem
from typing import Any

import pytest

from pybernetes.api import jobs
from pybernetes.api.batch.v1 import batch_pb2 as batch
from services.apiserver.registry import apply_defaults, validate
from services.apiserver.registry.batch import job as job_strategy
from tests.unit.test_validation import build, lines


def spec(doc: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = doc["spec"]
    return s


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = doc["spec"]["template"]["spec"]
    return s


def job_spec(doc: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]
    return s


RULES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("job parallelism", "Job", lambda d: setitem(spec(d), "parallelism", -1),
     "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
    ("job completions", "Job", lambda d: setitem(spec(d), "completions", -2),
     "spec.completions: Invalid value: -2: must be greater than or equal to 0"),
    ("job backoffLimit", "Job", lambda d: setitem(spec(d), "backoffLimit", -1),
     "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
    ("job deadline", "Job", lambda d: setitem(spec(d), "activeDeadlineSeconds", -5),
     "spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"),
    ("job ttl", "Job", lambda d: setitem(spec(d), "ttlSecondsAfterFinished", -1),
     "spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0"),
    ("job ttl zero", "Job", lambda d: setitem(spec(d), "ttlSecondsAfterFinished", 0), None),
    ("job restartPolicy Always", "Job", lambda d: setitem(pod_spec(d), "restartPolicy", "Always"),
     'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    ("job restartPolicy defaulted to Always", "Job", lambda d: pod_spec(d).pop("restartPolicy"),
     'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    ("job restartPolicy OnFailure", "Job", lambda d: setitem(pod_spec(d), "restartPolicy", "OnFailure"), None),
    ("job completionMode", "Job", lambda d: setitem(spec(d), "completionMode", "Sometimes"),
     'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    ("job selector mismatch", "Job", lambda d: setitem(spec(d), "selector", {"matchLabels": {"app": "other"}}),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
     "template `labels`"),
    ("job selector missing", "Job", lambda d: spec(d).pop("selector"), "spec.selector: Required value"),
    ("job template missing", "Job", lambda d: spec(d).pop("template"), "spec.template.spec.containers: Required value"),
    ("job container image", "Job", lambda d: pod_spec(d)["containers"][0].pop("image"),
     "spec.template.spec.containers[0].image: Required value"),
    ("cronjob schedule", "CronJob", lambda d: setitem(spec(d), "schedule", "* * * *"),
     'spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'),
    ("cronjob schedule range", "CronJob", lambda d: setitem(spec(d), "schedule", "61 * * * *"),
     'spec.schedule: Invalid value: "61 * * * *": [61 * * * *] is not acceptable, out of range'),
    ("cronjob schedule empty", "CronJob", lambda d: setitem(spec(d), "schedule", ""),
     "spec.schedule: Required value"),
    ("cronjob schedule descriptor", "CronJob", lambda d: setitem(spec(d), "schedule", "@hourly"), None),
    ("cronjob schedule TZ", "CronJob", lambda d: setitem(spec(d), "schedule", "CRON_TZ=UTC 0 * * * *"),
     'spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
     "field instead"),
    ("cronjob timeZone", "CronJob", lambda d: setitem(spec(d), "timeZone", "Mars/Olympus"),
     'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'),
    ("cronjob timeZone Local", "CronJob", lambda d: setitem(spec(d), "timeZone", "Local"),
     'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in '
     "https://www.iana.org/time-zones"),
    ("cronjob timeZone IANA", "CronJob", lambda d: setitem(spec(d), "timeZone", "Europe/Paris"), None),
    ("cronjob concurrencyPolicy", "CronJob", lambda d: setitem(spec(d), "concurrencyPolicy", "Sometimes"),
     'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'),
    ("cronjob startingDeadlineSeconds", "CronJob", lambda d: setitem(spec(d), "startingDeadlineSeconds", -1),
     "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("cronjob history", "CronJob", lambda d: setitem(spec(d), "successfulJobsHistoryLimit", -1),
     "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
    ("cronjob failed history", "CronJob", lambda d: setitem(spec(d), "failedJobsHistoryLimit", -3),
     "spec.failedJobsHistoryLimit: Invalid value: -3: must be greater than or equal to 0"),
    ("cronjob job selector", "CronJob", lambda d: setitem(job_spec(d), "selector", {"matchLabels": {"a": "b"}}),
     'spec.jobTemplate.spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated"),
    ("cronjob job restartPolicy", "CronJob",
     lambda d: setitem(job_spec(d)["template"]["spec"], "restartPolicy", "Always"),
     'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
     '"OnFailure", "Never"'),
    ("cronjob job backoffLimit", "CronJob", lambda d: setitem(job_spec(d), "backoffLimit", -1),
     "spec.jobTemplate.spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
    ("cronjob name length", "CronJob", lambda d: setitem(d["metadata"], "name", "c" * 53),
     f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters'),
]


@pytest.mark.parametrize(("kind", "mutate", "want"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(kind: str, mutate: Callable[[dict[str, Any]], Any], want: str | None) -> None:
    got = lines(validate(build(kind, mutate)))
    if want is None:
        assert got == []
    else:
        assert want in got, "\n".join(got)


def test_job_defaults() -> None:
    j = build("Job")
    assert isinstance(j, batch.Job)
    s = j.spec
    assert (s.parallelism, s.completions, s.backoff_limit, s.completion_mode, s.suspend) == (1, 1, 6, "NonIndexed",
                                                                                            False)
    assert dict(j.metadata.labels) == {"app": "web"}  # the template's labels when the job has none
    parallel = build("Job", lambda d: setitem(spec(d), "parallelism", 3))
    assert isinstance(parallel, batch.Job)
    assert parallel.spec.parallelism == 3 and not parallel.spec.HasField("completions")


def test_cronjob_defaults() -> None:
    cj = build("CronJob")
    assert isinstance(cj, batch.CronJob)
    s = cj.spec
    assert (s.concurrency_policy, s.suspend, s.successful_jobs_history_limit, s.failed_jobs_history_limit) == \
        ("Allow", False, 3, 1)
    assert s.job_template.spec.template.spec.dns_policy == "ClusterFirst"


def generated(mutate: Callable[[batch.Job], None] | None = None) -> batch.Job:
    j = build("Job", lambda d: (spec(d).pop("manualSelector"), spec(d).pop("selector")), defaults=False)
    assert isinstance(j, batch.Job)
    j.metadata.uid = "0b1c"
    if mutate is not None:
        mutate(j)
    job_strategy.prepare_for_create(j)
    apply_defaults(j)
    return j


def test_generated_selector_and_labels() -> None:
    j = generated()
    assert dict(j.spec.selector.match_labels) == {jobs.CONTROLLER_UID_LABEL: "0b1c"}
    assert dict(j.spec.template.metadata.labels) == {
        "app": "web", jobs.CONTROLLER_UID_LABEL: "0b1c", jobs.JOB_NAME_LABEL: "pi",
        jobs.LEGACY_CONTROLLER_UID_LABEL: "0b1c", jobs.LEGACY_JOB_NAME_LABEL: "pi"}
    assert lines(validate(j)) == []


def test_generated_selector_refuses_a_foreign_uid_label() -> None:
    j = generated(lambda j: j.spec.template.metadata.labels.update({jobs.CONTROLLER_UID_LABEL: "other"}))
    got = lines(validate(j))
    assert any(g.startswith('spec.template.metadata.labels[batch.kubernetes.io/controller-uid]: Invalid value: ')
               and g.endswith("must be '0b1c'") for g in got), got


def test_job_update_rules() -> None:
    old = generated()
    new = batch.Job()
    new.CopyFrom(old)
    new.spec.completions = 5
    new.spec.template.spec.containers[0].image = "other"
    got = lines(validate(new, old=old))
    assert "spec.completions: Invalid value: 5: field is immutable" in got
    assert "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable" in got
    new.CopyFrom(old)
    new.spec.parallelism = 4  # parallelism may change (scaling a job)
    new.spec.suspend = True
    assert lines(validate(new, old=old)) == []


def test_job_status_counts() -> None:
    from services.apiserver.registry import validate_status_update

    old = generated()
    new = batch.Job()
    new.CopyFrom(old)
    new.status.failed = -1
    assert "status.failed: Invalid value: -1: must be greater than or equal to 0" in lines(
        validate_status_update(new, old))
