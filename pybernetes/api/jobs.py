"""What the batch/v1 kinds share across components: the labels a Job's pods carry and a Job's finished state.

The apiserver generates a Job's selector and template labels from these names (registry/batch/job.py), the
Job and CronJob controllers select and read Jobs with them, and the printing table's Job STATUS
(pybernetes/api/cells.py `job_status`) reads its conditions with `condition_true`. Names and values are
Kubernetes' (k8s.io/api/batch/v1 types.go).
"""

from __future__ import annotations

from pybernetes.api.batch.v1 import batch_pb2 as batch

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# The unprefixed labels Kubernetes still sets beside the prefixed ones.
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
# Set by the CronJob controller on each Job it creates: the scheduled time, RFC 3339.
CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"

COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"


def finished_condition(job: batch.Job) -> str:
    """"Complete" or "Failed" when that condition is True, else "" (IsJobFinished)."""
    for c in job.status.conditions:
        if c.type in (COMPLETE, FAILED) and c.status == "True":
            return str(c.type)
    return ""


def condition_true(job: batch.Job, typ: str) -> bool:
    return any(c.type == typ and c.status == "True" for c in job.status.conditions)
