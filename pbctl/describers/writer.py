"""What every describe report shares: kubectl's PrefixWriter, times, label/annotation blocks, Events, and the
workloads' "Pods Status" line and Type/Status/Reason conditions table.

Callers: the describers beside this module and the describe verb (which appends each object's Events).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from google.protobuf.message import Message

from pbctl import printers
from pbctl.common import LAST_APPLIED, Ctx
from pybernetes import errors
from pybernetes.api import cells, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of

SKIP_ANNOTATIONS = frozenset({LAST_APPLIED})


class Writer:
    """kubectl's PrefixWriter: levels indent by two spaces; the result is tab-aligned (padding 2)."""

    def __init__(self) -> None:
        self._buf: list[str] = []

    def w(self, level: int, text: str) -> None:
        self._buf.append("  " * level + text)

    def text(self) -> str:
        return printers.tabwrite("".join(self._buf), minwidth=0, padding=2)


def fmt_time(t: meta.Time) -> str:
    """RFC 1123 with numeric zone, local time, as kubectl prints times in describe."""
    if not cells.is_set(t):
        return "<unset>"
    d = dt.datetime.fromtimestamp(t.seconds, tz=dt.UTC).astimezone()
    return d.strftime("%a, %d %b %Y %H:%M:%S %z")


def multiline(w: Writer, level: int, title: str, data: Mapping[str, str], skip: frozenset[str] = frozenset(),
              sep: str = "=") -> None:
    items = [(k, v) for k, v in sorted(data.items()) if k not in skip]
    if not items:
        w.w(level, f"{title}:\t<none>\n")
        return
    for i, (k, v) in enumerate(items):
        v = v.replace("\n", " ")
        if len(v) > 200 and sep == ": ":
            v = v[:200] + "..."
        w.w(level, f"{title}:\t{k}{sep}{v}\n" if i == 0 else f"\t{k}{sep}{v}\n")


def labels(w: Writer, title: str, data: Mapping[str, str], level: int = 0) -> None:
    multiline(w, level, title, data)


def print_annotations(w: Writer, data: Mapping[str, str], level: int = 0) -> None:
    multiline(w, level, "Annotations", data, SKIP_ANNOTATIONS, ": ")


def controller_of(md: meta.ObjectMeta) -> str:
    for o in md.owner_references:
        if o.controller:
            return f"{o.kind}/{o.name}"
    return ""


# -- events ----------------------------------------------------------------------------------------

async def fetch_events(ctx: Ctx, info: kinds.ResourceInfo, obj: Message) -> list[core.Event]:
    md = meta_of(obj)
    sel = f"involvedObject.name={md.name},involvedObject.kind={info.kind}"
    if info.namespaced:
        sel += f",involvedObject.namespace={md.namespace}"
    try:
        res = await ctx.client.list_all(core.Event, namespace=md.namespace if info.namespaced else "",
                                        field_selector=sel)
    except errors.ApiError as e:
        if isinstance(e, errors.Unavailable):
            raise
        return []
    evs = [e for e in res.items if not e.involved_object.uid or e.involved_object.uid == md.uid]

    def when(e: core.Event) -> float:
        for t in (e.last_timestamp, e.event_time, e.metadata.creation_timestamp):
            if cells.is_set(t):
                return t.seconds + t.nanos / 1e9
        return 0.0

    return sorted(evs, key=when)


def describe_events(w: Writer, events: Sequence[core.Event], t: float) -> None:
    if not events:
        w.w(0, "Events:\t<none>\n")
        return
    w.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.w(1, "----\t------\t----\t----\t-------\n")
    for e in events:
        last = e.last_timestamp if cells.is_set(e.last_timestamp) else e.event_time
        first = e.first_timestamp if cells.is_set(e.first_timestamp) else e.event_time
        count = e.series.count or e.count
        age = cells.age(last, t)
        if count > 1:
            age = f"{age} (x{count} over {cells.age(first, t)})"
        src = e.source.component or e.reporting_component or "<unknown>"
        w.w(1, f"{e.type}\t{e.reason}\t{age}\t{src}\t{e.message.strip()}\n")


def ios(v: meta.IntOrString, default: str) -> str:
    if not v.ListFields():
        return default
    return v.str_val if v.type == 1 else str(v.int_val)


def pods_status(w: Writer, pods: Sequence[core.Pod], title: str = "Pods Status") -> None:
    """kubectl's printed pod phase counts (getPodStatusForController)."""
    phases = {p: sum(1 for x in pods if x.status.phase == p) for p in ("Running", "Pending", "Succeeded", "Failed")}
    w.w(0, f"{title}:\t{phases['Running']} Running / {phases['Pending']} Waiting / {phases['Succeeded']} "
           f"Succeeded / {phases['Failed']} Failed\n")


class Condition(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...


def workload_conditions(w: Writer, conditions: Sequence[Condition]) -> None:
    """A Deployment's / ReplicaSet's / ReplicationController's Conditions table (none: nothing)."""
    if conditions:
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.w(1, "----\t------\t------\n")
        for c in conditions:
            w.w(1, f"{c.type} \t{c.status}\t{c.reason}\n")
