"""pbctl's Job and CronJob columns (kubectl 1.33's printJob/printCronJob) and their describe reports."""

from __future__ import annotations

from typing import Any

from pbctl import printers
from pbctl.describers.batch import describe_cronjob, describe_job
from pbctl.describers.writer import Writer
from pybernetes.api import codec, kinds
from pybernetes.api.batch.v1 import batch_pb2 as batch

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"name": "pi", "namespace": "default", "creationTimestamp": "2023-11-14T22:10:00Z"},
    "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
             "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
             "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}},
    "status": {"startTime": "2023-11-14T22:10:00Z", "active": 2, "ready": 1, "succeeded": 1},
}
CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "hello", "namespace": "default", "creationTimestamp": "2023-11-14T21:13:20Z"},
    "spec": {"schedule": "*/1 * * * *", "suspend": False, "concurrencyPolicy": "Allow",
             "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
             "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                            "containers": [{"name": "hello", "image": "busybox"}]}}}}},
    "status": {"lastScheduleTime": "2023-11-14T22:13:00Z", "active": [{"kind": "Job", "name": "hello-28333333"}]},
}


def job(**status: Any) -> batch.Job:
    doc = {**JOB, "status": {**JOB["status"], **status}}
    return codec.from_dict(doc, batch.Job)


def table(obj: Any) -> list[list[str]]:
    info = kinds.for_message(obj)
    return [printers.headers_for(info), printers.row_for(info, obj, NOW)]


def test_job_columns() -> None:
    assert table(job()) == [["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
                            ["pi", "Running", "1/3", "3m20s", "3m20s"]]
    done = job(succeeded=3, active=0, completionTime="2023-11-14T22:10:42Z",
               conditions=[{"type": "Complete", "status": "True"}])
    assert table(done)[1] == ["pi", "Complete", "3/3", "42s", "3m20s"]
    failed = job(failed=7, conditions=[{"type": "FailureTarget", "status": "True"},
                                       {"type": "Failed", "status": "True"}])
    assert table(failed)[1][1] == "Failed"
    suspended = job(conditions=[{"type": "Suspended", "status": "True"}])
    assert table(suspended)[1][1] == "Suspended"


def test_job_completions_without_completions() -> None:
    j = job()
    j.spec.ClearField("completions")
    assert table(j)[1][2] == "1/1 of 2"
    j.spec.parallelism = 1
    assert table(j)[1][2] == "1/1"


def test_cronjob_columns() -> None:
    cj = codec.from_dict(CRONJOB, batch.CronJob)
    assert table(cj) == [["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
                         ["hello", "*/1 * * * *", "<none>", "False", "1", "20s", "60m"]]
    cj.spec.time_zone = "Europe/Paris"
    cj.status.ClearField("last_schedule_time")
    assert table(cj)[1][2:6] == ["Europe/Paris", "False", "1", "<none>"]


def test_describe_job() -> None:
    w = Writer()
    describe_job(w, job())
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in w.text().splitlines()
             if ":" in line and not line.startswith(" ")}
    assert lines["Selector"] == "batch.kubernetes.io/controller-uid=u1"
    assert (lines["Parallelism"], lines["Completions"], lines["Completion Mode"], lines["Suspend"],
            lines["Backoff Limit"]) == ("2", "3", "NonIndexed", "false", "6")
    assert lines["Pods Statuses"] == "2 Active (1 Ready) / 1 Succeeded / 0 Failed"
    assert "Pod Template" in lines and "Duration" not in lines


def test_describe_cronjob() -> None:
    w = Writer()
    describe_cronjob(w, codec.from_dict(CRONJOB, batch.CronJob))
    text = w.text()
    for want in ("Schedule:", "*/1 * * * *", "Concurrency Policy:", "Allow", "Successful Job History Limit:",
                 "Starting Deadline Seconds:", "<unset>", "Active Jobs:", "hello-28333333"):
        assert want in text
