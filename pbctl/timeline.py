"""One timeline of everything that happened to an object and its descendants, across components (pbctl trace).

`assemble(root, objects, events)` is pure: it finds the root's descendants through ownerReferences
(Deployment -> ReplicaSets -> Pods), gathers their creation times, the Events about them (controller,
scheduler and kubelet, with sub-second eventTime), the pods' condition transitions and container start
times, and orders it all by time with offsets from the first entry.

Object creation times, condition transitions and container start times are stored with whole-second
precision; such an entry at second T happened somewhere in [T, T+1). It is placed at the latest
sub-second entry that must precede it within that second (e.g. Ready after the kubelet's Started), and an
object's creation at the earliest sub-second entry about it or its descendants (an object exists before
anything happens to it). Those entries are marked approximate.

The trace ID is derived from the root's uid and carried to every descendant found by matching
ownerReferences, so it needs nothing from the components: every object in one rollout shares it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf.message import Message

from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import controller_ref, meta_of
from pybernetes.api.objects import kind as kind_of

# Causal order inside one object's story, for ties and for placing whole-second timestamps.
CREATED = 0.0
RANK_BY_REASON = {
    # Deployment / ReplicaSet controllers (the event is about the owner, the story is the child's)
    "ScalingReplicaSet": 1.0, "SuccessfulCreate": 1.0, "FailedCreate": 1.0,
    # scheduler
    "FailedScheduling": 2.5, "Scheduled": 3.0,
    # kubelet
    "Pulling": 5.0, "Pulled": 6.0, "BackOff": 6.5, "Failed": 6.5, "ErrImageNeverPull": 6.5,
    "FailedCreatePodSandBox": 4.5, "Created": 7.0, "Started": 8.0, "Unhealthy": 9.5,
    "Killing": 11.0, "SuccessfulDelete": 11.0,
}
OTHER_EVENT = 10.5
RANK_BY_CONDITION = {"PodScheduled": 2.0, "Initialized": 4.0, "PodReadyToStartContainers": 4.2,
                     "ContainersReady": 9.0, "Ready": 10.0}
CONDITION_NOTE = {"PodReadyToStartContainers": " (sandbox ready)"}
CONTAINER_STARTED = 7.5
CONDITION_COMPONENT = {"PodScheduled": "apiserver"}


def trace_id_for(uid: str) -> str:
    """A W3C-sized (16 bytes, hex) trace ID derived from the root object's uid."""
    return hashlib.sha256(uid.encode()).hexdigest()[:32]


def ref(obj: Message) -> str:
    return f"{kind_of(obj).lower()}/{meta_of(obj).name}"


def seconds(t: meta.Time) -> float:
    return t.seconds + t.nanos / 1e9


def _set(t: meta.Time) -> bool:
    return t.seconds != 0 or t.nanos != 0


def _rv(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


@dataclass
class Entry:
    """One thing that happened. `time` is as recorded; `at` is where it sits on the timeline."""

    time: float
    precise: bool
    component: str
    object: str
    what: str
    uid: str  # the object whose story this is part of
    rank: float
    source: str  # object | event | condition | container
    reason: str = ""
    host: str = ""
    resource_version: int = 0
    at: float = 0.0
    offset: float = 0.0
    trace_id: str = ""


@dataclass
class TracedObject:
    kind: str
    name: str
    namespace: str
    uid: str
    parent_uid: str
    depth: int
    trace_id: str


@dataclass
class Timeline:
    trace_id: str
    root: str
    objects: list[TracedObject] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    start: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        def entry(e: Entry) -> dict[str, Any]:
            d = asdict(e)
            d["timestamp"] = codec.time_to_str(meta.Time(seconds=int(e.time), nanos=round((e.time % 1) * 1e9)))
            d["offsetSeconds"] = round(d.pop("offset"), 6)
            d["resourceVersion"] = d.pop("resource_version")
            d["traceId"] = d.pop("trace_id")
            d.pop("at")
            return d

        return {
            "traceId": self.trace_id,
            "root": self.root,
            "start": codec.time_to_str(meta.Time(seconds=int(self.start), nanos=round((self.start % 1) * 1e9))),
            "objects": [{"kind": o.kind, "name": o.name, "namespace": o.namespace, "uid": o.uid,
                         "owner": o.parent_uid, "depth": o.depth, "traceId": o.trace_id} for o in self.objects],
            "entries": [entry(e) for e in self.entries],
        }


def controller_of(obj: Message) -> str:
    """The uid of the object's owner (its controller if it names one)."""
    if (c := controller_ref(obj)) is not None:
        return c.uid
    refs = meta_of(obj).owner_references
    return refs[0].uid if refs else ""


def _creation_order(obj: Message) -> tuple[float, str]:
    return seconds(meta_of(obj).creation_timestamp), meta_of(obj).name


def descendants(root: Message, candidates: Iterable[Message]) -> list[tuple[Message, str, int]]:
    """(object, owner uid, depth) for the root and everything owned by it, transitively, breadth first."""
    by_owner: dict[str, list[Message]] = {}
    for o in candidates:
        for r in meta_of(o).owner_references:
            by_owner.setdefault(r.uid, []).append(o)
    out: list[tuple[Message, str, int]] = [(root, "", 0)]
    seen = {meta_of(root).uid}
    i = 0
    while i < len(out):
        obj, _, depth = out[i]
        i += 1
        uid = meta_of(obj).uid
        for child in sorted(by_owner.get(uid, []), key=_creation_order):
            cuid = meta_of(child).uid
            if cuid and cuid not in seen:
                seen.add(cuid)
                out.append((child, uid, depth + 1))
    return out


def object_entries(obj: Message) -> list[Entry]:
    md = meta_of(obj)
    o, uid = ref(obj), md.uid
    out: list[Entry] = []
    if _set(md.creation_timestamp):
        owner = controller_of(obj)
        what = "created" + (f" (generation {md.generation})" if md.generation > 1 else "")
        if owner:
            kind = next((r.kind for r in md.owner_references if r.uid == owner), "")
            name = next((r.name for r in md.owner_references if r.uid == owner), "")
            what += f", owned by {kind.lower()}/{name}"
        out.append(Entry(seconds(md.creation_timestamp), md.creation_timestamp.nanos != 0, "apiserver", o, what,
                         uid, CREATED, "object", "ObjectCreated"))
    if _set(md.deletion_timestamp):
        out.append(Entry(seconds(md.deletion_timestamp), md.deletion_timestamp.nanos != 0, "apiserver", o,
                         "deletion requested", uid, 12.0, "object", "ObjectDeleting"))
    if isinstance(obj, core.Pod):
        host = obj.spec.node_name
        for c in obj.status.conditions:
            if not _set(c.last_transition_time):
                continue
            what = f"condition {c.type}={c.status}" + (f" ({c.reason})" if c.reason else "")
            what += CONDITION_NOTE.get(c.type, "") if c.status == "True" else ""
            out.append(Entry(seconds(c.last_transition_time), c.last_transition_time.nanos != 0,
                             CONDITION_COMPONENT.get(c.type, "kubelet"), o, what, uid,
                             RANK_BY_CONDITION.get(c.type, OTHER_EVENT), "condition", c.type,
                             host if c.type != "PodScheduled" else ""))
        for cs in [*obj.status.init_container_statuses, *obj.status.container_statuses]:
            st = cs.state
            for label, t in (("running", st.running.started_at if st.HasField("running") else None),
                             ("terminated", st.terminated.started_at if st.HasField("terminated") else None)):
                if t is not None and _set(t):
                    out.append(Entry(seconds(t), t.nanos != 0, "kubelet", o,
                                     f"container {cs.name} started ({label}, restarts {cs.restart_count})", uid,
                                     CONTAINER_STARTED, "container", "ContainerStarted", host))
            if st.HasField("terminated") and _set(st.terminated.finished_at):
                t = st.terminated.finished_at
                out.append(Entry(seconds(t), t.nanos != 0, "kubelet", o,
                                 f"container {cs.name} exited {st.terminated.exit_code} ({st.terminated.reason})",
                                 uid, 11.5, "container", "ContainerFinished", host))
    return out


def event_time(ev: core.Event) -> tuple[float, bool]:
    if _set(ev.event_time):  # a MicroTime: precise even when the microseconds happen to be 0
        return seconds(ev.event_time), True
    for t in (ev.first_timestamp, ev.last_timestamp, ev.metadata.creation_timestamp):
        if _set(t):
            return seconds(t), t.nanos != 0
    return 0.0, False


_NAMED = re.compile(r"(?:replica set|pod:?)\s+([a-z0-9.-]+)", re.IGNORECASE)


NAMING_REASONS = ("ScalingReplicaSet", "SuccessfulCreate", "FailedCreate", "SuccessfulDelete")


def event_entries(events: Iterable[core.Event], objs: Sequence[Message]) -> list[Entry]:
    """Entries for the events about `objs` (matched by uid, or kind/namespace/name when the uid is empty).

    A controller's event that names a child (ScalingReplicaSet -> replica set X, SuccessfulCreate -> pod X)
    belongs to the child's story, and is included even when the controller itself is not traced (a pod's
    trace shows the ReplicaSet creating it)."""
    by_uid = {meta_of(o).uid: o for o in objs}
    by_name = {(kind_of(o), meta_of(o).namespace, meta_of(o).name): o for o in objs}
    children = {(r.uid, meta_of(o).name): o for o in objs for r in meta_of(o).owner_references}
    out: list[Entry] = []
    for ev in events:
        io = ev.involved_object
        obj = by_uid.get(io.uid) if io.uid else by_name.get((io.kind, io.namespace, io.name))
        owner_uid = meta_of(obj).uid if obj is not None else io.uid
        child = None
        if ev.reason in NAMING_REASONS and (m := _NAMED.search(ev.message)) is not None:
            child = children.get((owner_uid, m.group(1).rstrip(".")))
        subject = child if child is not None else obj
        if subject is None:
            continue
        t, precise = event_time(ev)
        if not t:
            continue
        story = meta_of(subject).uid
        about = ref(obj) if obj is not None else f"{io.kind.lower()}/{io.name}"
        what = f"{ev.reason}: {ev.message}" + (f" (x{ev.count})" if ev.count > 1 else "")
        if ev.type == "Warning":
            what = "Warning " + what
        out.append(Entry(t, precise, ev.reporting_component or ev.source.component or "unknown", about, what, story,
                         RANK_BY_REASON.get(ev.reason, OTHER_EVENT), "event", ev.reason,
                         ev.source.host or ev.reporting_instance, _rv(ev.metadata.resource_version)))
    return out


def place(entries: list[Entry], subtree: dict[str, set[str]]) -> None:
    """Set `at` for every entry: sub-second times as they are; whole-second ones within their second by
    causal order (see the module docstring). `subtree[uid]` is the uid and its descendants' uids."""
    precise = [e for e in entries if e.precise]
    for e in entries:
        if e.precise:
            e.at = e.time
            continue
        lo, hi = e.time, e.time + 1.0
        if e.rank == CREATED and e.source == "object":
            family = subtree.get(e.uid, {e.uid})
            ups = [p.time for p in precise if p.uid in family and lo <= p.time < hi]
            e.at = min(ups) if ups else lo
        else:
            lows = [p.time for p in precise if p.uid == e.uid and p.rank < e.rank and lo <= p.time < hi]
            e.at = max(lows) if lows else lo


def assemble(root: Message, objects: Iterable[Message], events: Iterable[core.Event]) -> Timeline:
    """The timeline of `root` and its descendants among `objects`, from `events` and the objects."""
    tree = descendants(root, objects)
    tid = trace_id_for(meta_of(root).uid)
    tl = Timeline(trace_id=tid, root=ref(root))
    objs = [o for o, _, _ in tree]
    parent = {meta_of(o).uid: p for o, p, _ in tree}
    for o, p, depth in tree:
        md = meta_of(o)
        tl.objects.append(TracedObject(kind_of(o), md.name, md.namespace, md.uid, p, depth, tid))
    subtree: dict[str, set[str]] = {}
    for o in objs:
        uid = meta_of(o).uid
        cur: str | None = uid
        while cur:
            subtree.setdefault(cur, set()).add(uid)
            cur = parent.get(cur) or None
    entries = [e for o in objs for e in object_entries(o)] + event_entries(events, objs)
    place(entries, subtree)
    depths = {o.uid: o.depth for o in tl.objects}
    entries.sort(key=lambda e: (e.at, e.rank, depths.get(e.uid, 0), e.resource_version, e.object))
    tl.start = entries[0].at if entries else 0.0
    for e in entries:
        e.offset = e.at - tl.start
        e.trace_id = tid
    tl.entries = entries
    return tl


def offset_text(e: Entry) -> str:
    return f"+{e.offset:.3f}s" + ("" if e.precise else "~")


def rows(tl: Timeline) -> list[list[str]]:
    """Table rows: OFFSET COMPONENT OBJECT WHAT (offsets ending in ~ come from whole-second timestamps)."""
    return [[offset_text(e), e.component + (f"@{e.host}" if e.host and e.component == "kubelet" else ""),
             e.object, e.what] for e in tl.entries]
