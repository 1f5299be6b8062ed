"""Jobs and CronJobs in the lab (issue 15): real pods on real nodes run to an end.

A Job of 3 completions with parallelism 2 ends Complete; a failing Job ends Failed after its backoffLimit;
a CronJob `*/1 * * * *` creates a Job each minute and keeps its history limit; `pbctl apply` of a CronJob with
a bad schedule fails naming `spec.schedule` and creates nothing. Runs against the session
lab (tests/e2e/conftest.py); the CronJob part waits for real minutes (about three).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e

IMAGE = "localhost:5000/busybox:stable"
# A CronJob's jobTemplate (its last field) for the manifests below: one pod printing the date.
CRON_JOB_TEMPLATE = f"""  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: main, image: "{IMAGE}", command: ["date"]}}]
"""

MANIFESTS = f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: e2e-pi}}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "{IMAGE}", command: ["sh", "-c", "sleep 2"]}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: e2e-fails}}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "{IMAGE}", command: ["sh", "-c", "exit 3"]}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: e2e-tick}}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 1
{CRON_JOB_TEMPLATE}"""


def job_row(lab: Lab, name: str) -> dict[str, str]:
    """`pbctl get job NAME` as {STATUS, COMPLETIONS, ...} (empty while it does not exist)."""
    out = lab.pbctl("get", "job", name, check=False)
    lines = [line.split() for line in out.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0][:3] != ["NAME", "STATUS", "COMPLETIONS"]:
        return {}
    return dict(zip(lines[0], lines[1], strict=False))


def tick_jobs(lab: Lab) -> list[str]:
    out = lab.pbctl("get", "jobs", "-o", "name", check=False)
    return sorted(line.split("/", 1)[1] for line in out.split() if "/e2e-tick-" in line)


def finished_row(lab: Lab, name: str) -> dict[str, str] | None:
    row = job_row(lab, name)
    return row if row.get("STATUS") in ("Complete", "Failed") else None


def test_jobs_complete_and_fail(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "batch.yaml"
    path.write_text(MANIFESTS)
    lab.pbctl("apply", "-f", str(path))
    done = poll(lambda: finished_row(lab, "e2e-pi"), 180, "job e2e-pi finished")
    assert done is not None
    assert (done["STATUS"], done["COMPLETIONS"]) == ("Complete", "3/3"), done
    failed = poll(lambda: finished_row(lab, "e2e-fails"), 180, "job e2e-fails finished")
    assert failed is not None
    assert failed["STATUS"] == "Failed", failed
    count = lab.pbctl("get", "job", "e2e-fails", "-o", "jsonpath={.status.failed}").strip()
    assert count == "2"  # backoffLimit 1: the second failed pod ends it


def test_cronjob_runs_each_minute_and_keeps_history(lab: Lab) -> None:
    first = poll(lambda: tick_jobs(lab), 150, "a first job of the cronjob")
    poll(lambda: [j for j in tick_jobs(lab) if j not in first], 150, "a job of the next minute")
    # successfulJobsHistoryLimit 1: once the newer ones finish, only one finished job is kept.
    poll(lambda: len(tick_jobs(lab)) <= 2 and not set(first) & set(tick_jobs(lab)), 150, "the oldest job deleted")
    lab.pbctl("delete", "cronjob", "e2e-tick")
    lab.pbctl("delete", "job", "e2e-pi", "e2e-fails")


def test_bad_schedule_refused_naming_its_field(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "bad-cron.yaml"
    path.write_text(f"""
apiVersion: batch/v1
kind: CronJob
metadata: {{name: e2e-bad-cron}}
spec:
  schedule: "61 * * * *"
{CRON_JOB_TEMPLATE}""")
    with pytest.raises(AssertionError) as refused:
        lab.pbctl("apply", "-f", str(path))
    message = str(refused.value)
    assert "failed (1)" in message and 'The CronJob "e2e-bad-cron" is invalid: spec.schedule:' in message, message
    assert "e2e-bad-cron" not in lab.pbctl("get", "cronjobs", "-o", "name")
