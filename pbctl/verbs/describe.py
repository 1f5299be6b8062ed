"""describe: kubectl's human-readable reports, each ending with the object's Events."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence

from google.protobuf.message import Message

from pbctl import printers
from pbctl.common import (
    LAST_APPLIED,
    REVISION,
    CliError,
    Ctx,
    err,
    format_api_error,
    meta_of,
    now,
    out,
    parse_targets,
)
from pybernetes import errors
from pybernetes.api import codec, qos, registry
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

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
    if not printers.is_set(t):
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

async def fetch_events(ctx: Ctx, info: registry.ResourceInfo, obj: Message) -> list[core.Event]:
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
            if printers.is_set(t):
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
        last = e.last_timestamp if printers.is_set(e.last_timestamp) else e.event_time
        first = e.first_timestamp if printers.is_set(e.first_timestamp) else e.event_time
        count = e.series.count or e.count
        age = printers.age(last, t)
        if count > 1:
            age = f"{age} (x{count} over {printers.age(first, t)})"
        src = e.source.component or e.reporting_component or "<unknown>"
        w.w(1, f"{e.type}\t{e.reason}\t{age}\t{src}\t{e.message.strip()}\n")


# -- pod -------------------------------------------------------------------------------------------

def _state(w: Writer, title: str, st: core.ContainerState) -> None:
    if st.HasField("running"):
        w.w(2, f"{title}:\tRunning\n")
        w.w(3, f"Started:\t{fmt_time(st.running.started_at)}\n")
    elif st.HasField("waiting"):
        w.w(2, f"{title}:\tWaiting\n")
        if st.waiting.reason:
            w.w(3, f"Reason:\t{st.waiting.reason}\n")
        if st.waiting.message:
            w.w(3, f"Message:\t{st.waiting.message}\n")
    elif st.HasField("terminated"):
        t = st.terminated
        w.w(2, f"{title}:\tTerminated\n")
        if t.reason:
            w.w(3, f"Reason:\t{t.reason}\n")
        if t.message:
            w.w(3, f"Message:\t{t.message}\n")
        w.w(3, f"Exit Code:\t{t.exit_code}\n")
        if t.signal:
            w.w(3, f"Signal:\t{t.signal}\n")
        w.w(3, f"Started:\t{fmt_time(t.started_at)}\n")
        w.w(3, f"Finished:\t{fmt_time(t.finished_at)}\n")
    else:
        w.w(2, f"{title}:\tWaiting\n")


def _ports(c: core.Container) -> tuple[str, str]:
    if not c.ports:
        return "<none>", "<none>"
    ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in c.ports)
    hosts = ", ".join(f"{p.host_port}/{p.protocol or 'TCP'}" for p in c.ports)
    return ports, hosts


def _probe(p: core.Probe) -> str:
    if p.HasField("http_get"):
        port = p.http_get.port.str_val if p.http_get.port.type == 1 else p.http_get.port.int_val
        how = f"http-get {(p.http_get.scheme or 'HTTP').lower()}://{p.http_get.host}:{port}{p.http_get.path}"
    elif p.HasField("tcp_socket"):
        port = p.tcp_socket.port.str_val if p.tcp_socket.port.type == 1 else p.tcp_socket.port.int_val
        how = f"tcp-socket {p.tcp_socket.host}:{port}"
    elif p.HasField("exec"):
        how = f"exec [{' '.join(p.exec.command)}]"
    elif p.HasField("grpc"):
        how = f"grpc <pod>:{p.grpc.port} {p.grpc.service or ''}".rstrip()
    else:
        how = "unknown"
    return (f"{how} delay={p.initial_delay_seconds}s timeout={p.timeout_seconds or 1}s "
            f"period={p.period_seconds or 10}s #success={p.success_threshold or 1} "
            f"#failure={p.failure_threshold or 3}")


def describe_containers(w: Writer, title: str, containers: Sequence[core.Container],
                        statuses: Sequence[core.ContainerStatus] | None, level: int = 0) -> None:
    by_name = {s.name: s for s in statuses or []}
    w.w(level, f"{title}:\n")
    for c in containers:
        st = by_name.get(c.name)
        w.w(level + 1, f"{c.name}:\n")
        if st is not None:
            w.w(level + 2, f"Container ID:\t{st.container_id}\n")
        w.w(level + 2, f"Image:\t{c.image}\n")
        if st is not None:
            w.w(level + 2, f"Image ID:\t{st.image_id}\n")
        port, host = _ports(c)
        w.w(level + 2, f"Port:\t{port}\n")
        w.w(level + 2, f"Host Port:\t{host}\n")
        for name, vals in (("Command", c.command), ("Args", c.args)):
            if vals:
                w.w(level + 2, f"{name}:\n")
                for v in vals:
                    w.w(level + 3, f"{v}\n")
        if st is not None:
            _state(w, "State", st.state)
            if st.HasField("last_state") and st.last_state.ListFields():
                _state(w, "Last State", st.last_state)
            w.w(level + 2, f"Ready:\t{'True' if st.ready else 'False'}\n")
            w.w(level + 2, f"Restart Count:\t{st.restart_count}\n")
        for name, res in (("Limits", c.resources.limits), ("Requests", c.resources.requests)):
            if res:
                w.w(level + 2, f"{name}:\n")
                for k in sorted(res):
                    w.w(level + 3, f"{k}:\t{res[k].string}\n")
        for name, pr in (("Liveness", c.liveness_probe), ("Readiness", c.readiness_probe),
                         ("Startup", c.startup_probe)):
            if pr.ListFields():
                w.w(level + 2, f"{name}:\t{_probe(pr)}\n")
        if not c.env and not c.env_from:
            w.w(level + 2, "Environment:\t<none>\n")
        else:
            if c.env_from:
                w.w(level + 2, "Environment Variables from:\n")
                for ef in c.env_from:
                    if ef.HasField("config_map_ref"):
                        w.w(level + 3, f"{ef.config_map_ref.name}\tConfigMap\tOptional: "
                                       f"{str(ef.config_map_ref.optional).lower()}\n")
                    elif ef.HasField("secret_ref"):
                        w.w(level + 3, f"{ef.secret_ref.name}\tSecret\tOptional: "
                                       f"{str(ef.secret_ref.optional).lower()}\n")
            w.w(level + 2, "Environment:\t<none>\n" if not c.env else "Environment:\n")
            for e in c.env:
                if e.HasField("value_from"):
                    vf = e.value_from
                    if vf.HasField("config_map_key_ref"):
                        v = f"<set to the key '{vf.config_map_key_ref.key}' of config map " \
                            f"'{vf.config_map_key_ref.name}'>"
                    elif vf.HasField("secret_key_ref"):
                        v = f"<set to the key '{vf.secret_key_ref.key}' in secret '{vf.secret_key_ref.name}'>"
                    elif vf.HasField("field_ref"):
                        v = f" ({vf.field_ref.api_version or 'v1'}:{vf.field_ref.field_path})"
                    else:
                        v = "<set from a resource field>"
                else:
                    v = e.value
                w.w(level + 3, f"{e.name}:\t{v}\n")
        if not c.volume_mounts:
            w.w(level + 2, "Mounts:\t<none>\n")
        else:
            w.w(level + 2, "Mounts:\n")
            for m in sorted(c.volume_mounts, key=lambda m: m.mount_path):
                flags = "ro" if m.read_only else "rw"
                sub = f",path=\"{m.sub_path}\"" if m.sub_path else ""
                w.w(level + 3, f"{m.mount_path} from {m.name} ({flags}{sub})\n")


def describe_volumes(w: Writer, volumes: Sequence[core.Volume], level: int = 0) -> None:
    if not volumes:
        w.w(level, "Volumes:\t<none>\n")
        return
    w.w(level, "Volumes:\n")
    for v in volumes:
        w.w(level + 1, f"{v.name}:\n")
        src = v.ListFields()
        kinds = [fd.name for fd, _ in src if fd.name != "name"]
        kind = kinds[0] if kinds else ""
        if kind == "empty_dir":
            w.w(level + 2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            w.w(level + 2, f"Medium:\t{v.empty_dir.medium}\n")
            w.w(level + 2, f"SizeLimit:\t{v.empty_dir.size_limit.string or '<unset>'}\n")
        elif kind == "config_map":
            w.w(level + 2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            w.w(level + 2, f"Name:\t{v.config_map.name}\n")
            w.w(level + 2, f"Optional:\t{str(v.config_map.optional).lower()}\n")
        elif kind == "secret":
            w.w(level + 2, "Type:\tSecret (a volume populated by a Secret)\n")
            w.w(level + 2, f"SecretName:\t{v.secret.secret_name}\n")
            w.w(level + 2, f"Optional:\t{str(v.secret.optional).lower()}\n")
        elif kind == "host_path":
            w.w(level + 2, "Type:\tHostPath (bare host directory volume)\n")
            w.w(level + 2, f"Path:\t{v.host_path.path}\n")
            w.w(level + 2, f"HostPathType:\t{v.host_path.type}\n")
        elif kind == "projected":
            w.w(level + 2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
        else:
            w.w(level + 2, f"Type:\t{kind or '<unknown>'}\n")


def qos_class(pod: core.Pod) -> str:
    return pod.status.qos_class or qos.qos_class(pod)


def describe_pod(w: Writer, pod: core.Pod, t: float) -> None:
    md, spec, st = pod.metadata, pod.spec, pod.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    if spec.HasField("priority"):
        w.w(0, f"Priority:\t{spec.priority}\n")
    if spec.priority_class_name:
        w.w(0, f"Priority Class Name:\t{spec.priority_class_name}\n")
    w.w(0, f"Service Account:\t{spec.service_account_name or 'default'}\n")
    w.w(0, f"Node:\t{spec.node_name + '/' + st.host_ip if spec.node_name else '<none>'}\n")
    if printers.is_set(st.start_time):
        w.w(0, f"Start Time:\t{fmt_time(st.start_time)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    if printers.is_set(md.deletion_timestamp):
        w.w(0, f"Status:\tTerminating (lasts {printers.age(md.deletion_timestamp, t)})\n")
        w.w(0, f"Termination Grace Period:\t{md.deletion_grace_period_seconds}s\n")
    else:
        w.w(0, f"Status:\t{st.phase}\n")
    if st.reason:
        w.w(0, f"Reason:\t{st.reason}\n")
    if st.message:
        w.w(0, f"Message:\t{st.message.strip()}\n")
    w.w(0, f"IP:\t{st.pod_ip}\n")
    if st.pod_ips:
        w.w(0, "IPs:\n")
        for ip in st.pod_ips:
            w.w(1, f"IP:\t{ip.ip}\n")
    else:
        w.w(0, "IPs:\t<none>\n")
    ctl = controller_of(md)
    if ctl:
        w.w(0, f"Controlled By:\t{ctl}\n")
    if st.nominated_node_name:
        w.w(0, f"NominatedNodeName:\t{st.nominated_node_name}\n")
    if spec.init_containers:
        describe_containers(w, "Init Containers", spec.init_containers, st.init_container_statuses)
    describe_containers(w, "Containers", spec.containers, st.container_statuses)
    if spec.readiness_gates:
        w.w(0, "Readiness Gates:\n  Type\tStatus\n")
        conds = {c.type: c.status for c in st.conditions}
        for g in spec.readiness_gates:
            w.w(1, f"{g.condition_type} \t{conds.get(g.condition_type, '<none>')} \n")
    if st.conditions:
        w.w(0, "Conditions:\n  Type\tStatus\n")
        for c in st.conditions:
            w.w(1, f"{c.type} \t{c.status} \n")
    describe_volumes(w, spec.volumes)
    w.w(0, f"QoS Class:\t{qos_class(pod)}\n")
    labels(w, "Node-Selectors", spec.node_selector)
    if not spec.tolerations:
        w.w(0, "Tolerations:\t<none>\n")
    else:
        for i, tol in enumerate(spec.tolerations):
            s = tol.key
            if tol.value:
                s += f"={tol.value}"
            if tol.operator == "Exists" and not tol.key:
                s = "op=Exists"
            elif tol.operator == "Exists":
                s += " op=Exists"
            if tol.effect:
                s += f":{tol.effect}"
            if tol.HasField("toleration_seconds"):
                s += f" for {tol.toleration_seconds}s"
            w.w(0, f"Tolerations:\t{s}\n" if i == 0 else f"\t{s}\n")


# -- workloads -------------------------------------------------------------------------------------

def describe_template(w: Writer, tmpl: core.PodTemplateSpec) -> None:
    w.w(0, "Pod Template:\n")
    labels(w, "Labels", tmpl.metadata.labels, level=1)
    if tmpl.metadata.annotations:
        multiline(w, 1, "Annotations", tmpl.metadata.annotations, SKIP_ANNOTATIONS, ": ")
    if tmpl.spec.service_account_name:
        w.w(1, f"Service Account:\t{tmpl.spec.service_account_name}\n")
    if tmpl.spec.init_containers:
        describe_containers(w, "Init Containers", tmpl.spec.init_containers, None, level=1)
    describe_containers(w, "Containers", tmpl.spec.containers, None, level=1)
    describe_volumes(w, tmpl.spec.volumes, level=1)
    labels(w, "Node-Selectors", tmpl.spec.node_selector, level=1)
    w.w(1, f"Tolerations:\t{'<none>' if not tmpl.spec.tolerations else len(tmpl.spec.tolerations)}\n")


def _ios(v: meta.IntOrString, default: str) -> str:
    if not v.ListFields():
        return default
    return v.str_val if v.type == 1 else str(v.int_val)


async def describe_deployment(ctx: Ctx, w: Writer, d: apps.Deployment, t: float) -> None:
    md, spec, st = d.metadata, d.spec, d.status
    replicas = spec.replicas if spec.HasField("replicas") else 1
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.creation_timestamp)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"Selector:\t{printers.format_selector(spec.selector)}\n")
    w.w(0, f"Replicas:\t{replicas} desired | {st.updated_replicas} updated | {st.replicas} total | "
           f"{st.available_replicas} available | {st.unavailable_replicas} unavailable\n")
    stype = spec.strategy.type or "RollingUpdate"
    w.w(0, f"StrategyType:\t{stype}\n")
    w.w(0, f"MinReadySeconds:\t{spec.min_ready_seconds}\n")
    if stype == "RollingUpdate":
        ru = spec.strategy.rolling_update
        w.w(0, f"RollingUpdateStrategy:\t{_ios(ru.max_unavailable, '25%')} max unavailable, "
               f"{_ios(ru.max_surge, '25%')} max surge\n")
    describe_template(w, spec.template)
    if st.conditions:
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.w(1, "----\t------\t------\n")
        for c in st.conditions:
            w.w(1, f"{c.type} \t{c.status}\t{c.reason}\n")
    rs_all = await ctx.client.list_all(apps.ReplicaSet, namespace=md.namespace)
    owned = [rs for rs in rs_all.items if any(o.uid == md.uid for o in rs.metadata.owner_references)]
    owned.sort(key=lambda rs: int(rs.metadata.annotations.get(REVISION, "0") or 0))
    revision = md.annotations.get(REVISION)
    new = [rs for rs in owned if rs.metadata.annotations.get(REVISION) == revision] if revision else []
    old = [rs for rs in owned if rs not in new and (rs.spec.replicas if rs.spec.HasField("replicas") else 1) > 0]

    def rs_text(rs: apps.ReplicaSet) -> str:
        want = rs.spec.replicas if rs.spec.HasField("replicas") else 1
        return f"{rs.metadata.name} ({rs.status.replicas}/{want} replicas created)"

    w.w(0, f"OldReplicaSets:\t{', '.join(rs_text(r) for r in old) or '<none>'}\n")
    w.w(0, f"NewReplicaSet:\t{rs_text(new[0]) if new else '<none>'}\n")


def describe_replicaset(w: Writer, rs: apps.ReplicaSet | core.ReplicationController, pods: Sequence[core.Pod]
                        ) -> None:
    md, spec, st = rs.metadata, rs.spec, rs.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    if isinstance(rs, apps.ReplicaSet):
        w.w(0, f"Selector:\t{printers.format_selector(rs.spec.selector)}\n")
    else:
        w.w(0, f"Selector:\t{printers.format_labels(rs.spec.selector)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    ctl = controller_of(md)
    if ctl:
        w.w(0, f"Controlled By:\t{ctl}\n")
    want = spec.replicas if spec.HasField("replicas") else 1
    w.w(0, f"Replicas:\t{st.replicas} current / {want} desired\n")
    phases = {p: sum(1 for x in pods if x.status.phase == p) for p in ("Running", "Pending", "Succeeded", "Failed")}
    w.w(0, f"Pods Status:\t{phases['Running']} Running / {phases['Pending']} Waiting / {phases['Succeeded']} "
           f"Succeeded / {phases['Failed']} Failed\n")
    describe_template(w, spec.template)
    if st.conditions:
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.w(1, "----\t------\t------\n")
        for c in st.conditions:
            w.w(1, f"{c.type} \t{c.status}\t{c.reason}\n")


def describe_service(w: Writer, svc: core.Service, ep: core.Endpoints | None) -> None:
    md, spec = svc.metadata, svc.spec
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    labels(w, "Selector", spec.selector)
    w.w(0, f"Type:\t{spec.type or 'ClusterIP'}\n")
    if spec.HasField("ip_family_policy"):
        w.w(0, f"IP Family Policy:\t{spec.ip_family_policy}\n")
    if spec.ip_families:
        w.w(0, f"IP Families:\t{','.join(spec.ip_families)}\n")
    w.w(0, f"IP:\t{spec.cluster_ip or '<none>'}\n")
    w.w(0, f"IPs:\t{','.join(spec.cluster_ips) or spec.cluster_ip or '<none>'}\n")
    if spec.external_ips:
        w.w(0, f"External IPs:\t{','.join(spec.external_ips)}\n")
    if spec.external_name:
        w.w(0, f"External Name:\t{spec.external_name}\n")
    for p in spec.ports:
        name = p.name or "<unset>"
        proto = p.protocol or "TCP"
        w.w(0, f"Port:\t{name}\t{p.port}/{proto}\n")
        tp = _ios(p.target_port, str(p.port))
        w.w(0, f"TargetPort:\t{tp}/{proto}\n")
        if p.node_port:
            w.w(0, f"NodePort:\t{name}\t{p.node_port}/{proto}\n")
        eps = []
        if ep is not None:
            for ss in ep.subsets:
                for port in ss.ports:
                    if port.name == p.name:
                        eps += [f"{a.ip}:{port.port}" for a in ss.addresses]
        w.w(0, f"Endpoints:\t{','.join(eps)}\n")
    w.w(0, f"Session Affinity:\t{spec.session_affinity or 'None'}\n")
    if spec.external_traffic_policy:
        w.w(0, f"External Traffic Policy:\t{spec.external_traffic_policy}\n")
    if spec.HasField("internal_traffic_policy"):
        w.w(0, f"Internal Traffic Policy:\t{spec.internal_traffic_policy}\n")


def describe_node(w: Writer, node: core.Node, pods: Sequence[core.Pod], t: float) -> None:
    md, spec, st = node.metadata, node.spec, node.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Roles:\t{printers.node_roles(node)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.creation_timestamp)}\n")
    if spec.taints:
        for i, tn in enumerate(spec.taints):
            s = f"{tn.key}={tn.value}:{tn.effect}" if tn.value else f"{tn.key}:{tn.effect}"
            w.w(0, f"Taints:\t{s}\n" if i == 0 else f"\t{s}\n")
    else:
        w.w(0, "Taints:\t<none>\n")
    w.w(0, f"Unschedulable:\t{str(spec.unschedulable).lower()}\n")
    if st.conditions:
        w.w(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in st.conditions:
            w.w(1, f"{c.type} \t{c.status} \t{fmt_time(c.last_heartbeat_time)} \t"
                   f"{fmt_time(c.last_transition_time)} \t{c.reason} \t{c.message}\n")
    w.w(0, "Addresses:\n")
    for a in st.addresses:
        w.w(1, f"{a.type}:\t{a.address}\n")
    for title, res in (("Capacity", st.capacity), ("Allocatable", st.allocatable)):
        if res:
            w.w(0, f"{title}:\n")
            for k in sorted(res):
                w.w(1, f"{k}:\t{res[k].string}\n")
    ni = st.node_info
    w.w(0, "System Info:\n")
    for label, v in (("Machine ID", ni.machine_id), ("System UUID", ni.system_uuid), ("Boot ID", ni.boot_id),
                     ("Kernel Version", ni.kernel_version), ("OS Image", ni.os_image),
                     ("Operating System", ni.operating_system), ("Architecture", ni.architecture),
                     ("Container Runtime Version", ni.container_runtime_version),
                     ("Kubelet Version", ni.kubelet_version), ("Kube-Proxy Version", ni.kube_proxy_version)):
        w.w(1, f"{label}:\t{v}\n")
    if spec.pod_cidr:
        w.w(0, f"PodCIDR:\t{spec.pod_cidr}\n")
        w.w(0, f"PodCIDRs:\t{','.join(spec.pod_cidrs) or spec.pod_cidr}\n")
    active = [p for p in pods if p.status.phase not in ("Succeeded", "Failed")]
    w.w(0, f"Non-terminated Pods:\t({len(active)} in total)\n")
    if active:
        w.w(1, "Namespace\tName\tAge\n")
        w.w(1, "---------\t----\t---\n")
        for p in active:
            w.w(1, f"{p.metadata.namespace}\t{p.metadata.name}\t{printers.age(p.metadata.creation_timestamp, t)}\n")


def describe_namespace(w: Writer, ns: core.Namespace) -> None:
    w.w(0, f"Name:\t{ns.metadata.name}\n")
    labels(w, "Labels", ns.metadata.labels)
    print_annotations(w, ns.metadata.annotations)
    w.w(0, f"Status:\t{ns.status.phase or 'Active'}\n")
    w.w(0, "\nNo resource quota.\n\nNo LimitRange resource.\n")


def describe_generic(w: Writer, info: registry.ResourceInfo, obj: Message) -> None:
    md = meta_of(obj)
    w.w(0, f"Name:\t{md.name}\n")
    if info.namespaced:
        w.w(0, f"Namespace:\t{md.namespace}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    data = codec.to_dict(obj)
    w.w(0, f"API Version:\t{data.pop('apiVersion', '')}\n")
    w.w(0, f"Kind:\t{data.pop('kind', '')}\n")
    data.pop("metadata", None)
    if isinstance(obj, core.ConfigMap):
        w.w(0, "\nData\n====\n")
        for k in sorted(obj.data):
            w.w(0, f"{k}:\n----\n{obj.data[k]}\n\n")
        w.w(0, "\nBinaryData\n====\n")
        for k in sorted(obj.binary_data):
            w.w(0, f"{k}: {len(obj.binary_data[k])} bytes\n")
        return
    if isinstance(obj, core.Secret):
        w.w(0, f"\nType:\t{obj.type or 'Opaque'}\n\nData\n====\n")
        for k in sorted(obj.data):
            w.w(0, f"{k}:\t{len(obj.data[k])} bytes\n")
        return
    for line in codec.yaml_dump(data).splitlines() if data else []:
        w.w(0, line.replace("\t", " ") + "\n")


# -- verb ------------------------------------------------------------------------------------------

async def describe_object(ctx: Ctx, info: registry.ResourceInfo, obj: Message, *, show_events: bool = True
                          ) -> str:
    w = Writer()
    t = now()
    md = meta_of(obj)
    if isinstance(obj, core.Pod):
        describe_pod(w, obj, t)
    elif isinstance(obj, apps.Deployment):
        await describe_deployment(ctx, w, obj, t)
    elif isinstance(obj, apps.ReplicaSet | core.ReplicationController):
        pods = await ctx.client.list_all(core.Pod, namespace=md.namespace)
        owned = [p for p in pods.items if any(o.uid == md.uid for o in p.metadata.owner_references)]
        describe_replicaset(w, obj, owned)
    elif isinstance(obj, core.Service):
        try:
            ep: core.Endpoints | None = await ctx.client.get(core.Endpoints, md.name, namespace=md.namespace)
        except errors.NotFound:
            ep = None
        describe_service(w, obj, ep)
    elif isinstance(obj, core.Node):
        pods = await ctx.client.list_all(core.Pod, field_selector=f"spec.nodeName={md.name}")
        describe_node(w, obj, pods.items, t)
    elif isinstance(obj, core.Namespace):
        describe_namespace(w, obj)
    else:
        describe_generic(w, info, obj)
    if show_events and info.plural != "events":
        describe_events(w, await fetch_events(ctx, info, obj), t)
    return w.text()


async def run_describe(ctx: Ctx, args: argparse.Namespace) -> int:
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("You must specify the type of resource to describe. Use \"pbctl api-resources\" for a "
                       "complete list of supported resources.")
    blocks: list[str] = []
    failed = False
    for info, names in parsed:
        objs: list[Message] = []
        if names:
            for n in names:
                try:
                    objs.append(await ctx.client.get(info.cls, n, namespace=ctx.ns(info)))
                except errors.NotFound as e:
                    err(format_api_error(e))
                    failed = True
        else:
            ns = "" if args.all_namespaces else ctx.ns(info)
            res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "")
            objs = list(res.items)
            if not objs and not blocks:
                err("No resources found" if args.all_namespaces or not info.namespaced
                    else f"No resources found in {ctx.namespace} namespace.")
        for o in objs:
            blocks.append(await describe_object(ctx, info, o, show_events=args.show_events))
    if blocks:
        out("\n\n".join(b.rstrip("\n") for b in blocks))
    return 1 if failed else 0
