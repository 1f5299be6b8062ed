"""describe job / cronjob: kubectl's DescribeJob and DescribeCronJob (counts, limits, times, pod template)."""

from __future__ import annotations

from pbctl.describers.pod import describe_template
from pbctl.describers.writer import Writer, controller_of, fmt_time, labels, print_annotations
from pybernetes.api import cells
from pybernetes.api.batch.v1 import batch_pb2 as batch


def _bool(v: bool) -> str:
    return "true" if v else "false"


def describe_job(w: Writer, job: batch.Job) -> None:
    md, spec, st = job.metadata, job.spec, job.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    w.w(0, f"Selector:\t{cells.format_selector(spec.selector)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    ctl = controller_of(md)
    if ctl:
        w.w(0, f"Controlled By:\t{ctl}\n")
    if spec.HasField("parallelism"):
        w.w(0, f"Parallelism:\t{spec.parallelism}\n")
    w.w(0, f"Completions:\t{spec.completions if spec.HasField('completions') else '<unset>'}\n")
    if spec.HasField("completion_mode"):
        w.w(0, f"Completion Mode:\t{spec.completion_mode}\n")
    if spec.HasField("suspend"):
        w.w(0, f"Suspend:\t{_bool(spec.suspend)}\n")
    if spec.HasField("backoff_limit"):
        w.w(0, f"Backoff Limit:\t{spec.backoff_limit}\n")
    if spec.HasField("ttl_seconds_after_finished"):
        w.w(0, f"TTL Seconds After Finished:\t{spec.ttl_seconds_after_finished}\n")
    if cells.is_set(st.start_time):
        w.w(0, f"Start Time:\t{fmt_time(st.start_time)}\n")
    if cells.is_set(st.completion_time):
        w.w(0, f"Completed At:\t{fmt_time(st.completion_time)}\n")
    if cells.is_set(st.start_time) and cells.is_set(st.completion_time):
        w.w(0, f"Duration:\t{cells.human_duration(st.completion_time.seconds - st.start_time.seconds)}\n")
    if spec.HasField("active_deadline_seconds"):
        w.w(0, f"Active Deadline Seconds:\t{spec.active_deadline_seconds}s\n")
    ready = f" ({st.ready} Ready)" if st.HasField("ready") else ""
    w.w(0, f"Pods Statuses:\t{st.active} Active{ready} / {st.succeeded} Succeeded / {st.failed} Failed\n")
    describe_template(w, spec.template)


def describe_cronjob(w: Writer, cj: batch.CronJob) -> None:
    md, spec, st = cj.metadata, cj.spec, cj.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"Schedule:\t{spec.schedule}\n")
    w.w(0, f"Concurrency Policy:\t{spec.concurrency_policy}\n")
    w.w(0, f"Suspend:\t{(('True' if spec.suspend else 'False') if spec.HasField('suspend') else '<unset>')}\n")
    for title, present, value in (
            ("Successful Job History Limit", spec.HasField("successful_jobs_history_limit"),
             spec.successful_jobs_history_limit),
            ("Failed Job History Limit", spec.HasField("failed_jobs_history_limit"), spec.failed_jobs_history_limit)):
        w.w(0, f"{title}:\t{value if present else '<unset>'}\n")
    sds = spec.starting_deadline_seconds
    w.w(0, f"Starting Deadline Seconds:\t{f'{sds}s' if spec.HasField('starting_deadline_seconds') else '<unset>'}\n")
    jt = spec.job_template.spec
    w.w(0, f"Selector:\t{cells.format_selector(jt.selector) if jt.HasField('selector') else '<unset>'}\n")
    w.w(0, f"Parallelism:\t{jt.parallelism if jt.HasField('parallelism') else '<unset>'}\n")
    w.w(0, f"Completions:\t{jt.completions if jt.HasField('completions') else '<unset>'}\n")
    if jt.HasField("active_deadline_seconds"):
        w.w(0, f"Active Deadline Seconds:\t{jt.active_deadline_seconds}s\n")
    describe_template(w, jt.template)
    w.w(0, f"Last Schedule Time:\t{fmt_time(st.last_schedule_time)}\n")
    w.w(0, f"Active Jobs:\t{', '.join(r.name for r in st.active) or '<none>'}\n")
