"""Tables as kubectl prints them: per-kind columns, ages, pod status, Go-tabwriter alignment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from google.protobuf.message import Message

from pbctl.common import ref
from pybernetes.api import jobs, kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of

NONE = "<none>"


# -- text/tabwriter --------------------------------------------------------------------------------

def tabwrite(text: str, *, minwidth: int = 6, padding: int = 3) -> str:
    """Go's text/tabwriter (padchar ' ', no flags): tab-terminated cells aligned per column block."""
    trailing_nl = text.endswith("\n")
    lines = [ln.split("\t") for ln in (text[:-1] if trailing_nl else text).split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(a: int, b: int) -> None:
        for i in range(a, b):
            cells = lines[i]
            parts = []
            for j, c in enumerate(cells):
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(c.ljust(widths[j]))
                else:
                    parts.append(c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out) + ("\n" if trailing_nl else "")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, no_headers: bool = False) -> str:
    lines = [] if no_headers else ["\t".join(headers)]
    lines += ["\t".join(r) for r in rows]
    return tabwrite("\n".join(lines) + "\n") if lines else ""


# -- durations -------------------------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def is_set(t: meta.Time) -> bool:
    return bool(t.seconds or t.nanos)


def age(t: meta.Time, now: float) -> str:
    """translateTimestampSince: `<unknown>` for an unset time."""
    if not is_set(t):
        return "<unknown>"
    return human_duration(now - (t.seconds + t.nanos / 1e9))


# -- formatting helpers ----------------------------------------------------------------------------

def format_labels(labels: Mapping[str, str]) -> str:
    items = sorted(labels.items())
    return ",".join(f"{k}={v}" for k, v in items) if items else NONE


def format_selector(sel: meta.LabelSelector) -> str:
    """metav1.FormatLabelSelector."""
    parts = [f"{k}={v}" for k, v in sorted(sel.match_labels.items())]
    for r in sel.match_expressions:
        op = r.operator
        if op == "In":
            parts.append(f"{r.key} in ({','.join(sorted(r.values))})")
        elif op == "NotIn":
            parts.append(f"{r.key} notin ({','.join(sorted(r.values))})")
        elif op == "Exists":
            parts.append(r.key)
        elif op == "DoesNotExist":
            parts.append(f"!{r.key}")
        else:
            parts.append(f"{r.key} {op} ({','.join(r.values)})")
    return ",".join(parts) if parts else NONE


def _containers_images(spec: core.PodSpec) -> list[str]:
    return [",".join(c.name for c in spec.containers), ",".join(c.image for c in spec.containers)]


# -- pods ------------------------------------------------------------------------------------------

def _restartable_init(c: core.Container | None) -> bool:
    return c is not None and c.HasField("restart_policy") and c.restart_policy == "Always"


def _cond_true(pod: core.Pod, ctype: str) -> bool:
    return any(c.type == ctype and c.status == "True" for c in pod.status.conditions)


def pod_status(pod: core.Pod, now: float) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) exactly as kubectl's printPod computes them."""
    restarts = 0
    restartable_restarts = 0
    total = len(pod.spec.containers)
    ready = 0
    last_restart = 0.0
    last_restartable_restart = 0.0
    phase = pod.status.phase
    reason = pod.status.reason or phase
    for c in pod.status.conditions:
        if c.type == "PodScheduled" and c.reason == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = {c.name: c for c in pod.spec.init_containers}
    total += sum(1 for c in pod.spec.init_containers if _restartable_init(c))

    initializing = False
    for i, cs in enumerate(pod.status.init_container_statuses):
        restarts += cs.restart_count
        lt = cs.last_state.terminated
        if cs.last_state.HasField("terminated") and is_set(lt.finished_at):
            last_restart = max(last_restart, float(lt.finished_at.seconds))
        spec = init_specs.get(cs.name)
        if _restartable_init(spec):
            restartable_restarts += cs.restart_count
            if cs.last_state.HasField("terminated") and is_set(lt.finished_at):
                last_restartable_restart = max(last_restartable_restart, float(lt.finished_at.seconds))
        st = cs.state
        if st.HasField("terminated") and st.terminated.exit_code == 0:
            continue
        if _restartable_init(spec) and cs.HasField("started") and cs.started:
            if cs.ready:
                ready += 1
            continue
        if st.HasField("terminated"):
            t = st.terminated
            if not t.reason:
                reason = f"Init:Signal:{t.signal}" if t.signal else f"Init:ExitCode:{t.exit_code}"
            else:
                reason = "Init:" + t.reason
            initializing = True
        elif st.HasField("waiting") and st.waiting.reason and st.waiting.reason != "PodInitializing":
            reason = "Init:" + st.waiting.reason
            initializing = True
        else:
            reason = f"Init:{i}/{len(pod.spec.init_containers)}"
            initializing = True
        break

    if not initializing or _cond_true(pod, "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(pod.status.container_statuses):
            restarts += cs.restart_count
            if cs.last_state.HasField("terminated") and is_set(cs.last_state.terminated.finished_at):
                last_restart = max(last_restart, float(cs.last_state.terminated.finished_at.seconds))
            st = cs.state
            if st.HasField("waiting") and st.waiting.reason:
                reason = st.waiting.reason
            elif st.HasField("terminated") and st.terminated.reason:
                reason = st.terminated.reason
            elif st.HasField("terminated"):
                t = st.terminated
                reason = f"Signal:{t.signal}" if t.signal else f"ExitCode:{t.exit_code}"
            elif cs.ready and st.HasField("running"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if any(c.type == "Ready" for c in pod.status.conditions) else "NotReady"

    deleting = is_set(pod.metadata.deletion_timestamp)
    if deleting and pod.status.reason == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"
    return f"{ready}/{total}", reason, restarts_str


def _pod_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Pod)
    ready, status, restarts = pod_status(o, now)
    row = [ready, status, restarts, age(o.metadata.creation_timestamp, now)]
    if wide:
        gates = NONE
        if o.spec.readiness_gates:
            true = sum(1 for g in o.spec.readiness_gates if _cond_true(o, g.condition_type))
            gates = f"{true}/{len(o.spec.readiness_gates)}"
        row += [o.status.pod_ip or NONE, o.spec.node_name or NONE, o.status.nominated_node_name or NONE, gates]
    return row


# -- workloads -------------------------------------------------------------------------------------

def _replicas(spec: apps.DeploymentSpec | apps.ReplicaSetSpec | core.ReplicationControllerSpec) -> int:
    return spec.replicas if spec.HasField("replicas") else 1


def _deploy_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, apps.Deployment)
    st = o.status
    row = [f"{st.ready_replicas}/{_replicas(o.spec)}", str(st.updated_replicas), str(st.available_replicas),
           age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(o.spec.template.spec), format_selector(o.spec.selector)]
    return row


def _rs_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, apps.ReplicaSet)
    row = [str(_replicas(o.spec)), str(o.status.replicas), str(o.status.ready_replicas),
           age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(o.spec.template.spec), format_selector(o.spec.selector)]
    return row


def _rc_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.ReplicationController)
    row = [str(_replicas(o.spec)), str(o.status.replicas), str(o.status.ready_replicas),
           age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(o.spec.template.spec), format_labels(o.spec.selector)]
    return row


def job_status(job: batch.Job) -> str:
    """printJob's STATUS: the terminal condition, else Terminating, Suspended, the interim conditions, Running."""
    if jobs.condition_true(job, jobs.COMPLETE):
        return "Complete"
    if jobs.condition_true(job, jobs.FAILED):
        return "Failed"
    if meta_of(job).HasField("deletion_timestamp"):
        return "Terminating"
    for typ in (jobs.SUSPENDED, "FailureTarget", "SuccessCriteriaMet"):
        if jobs.condition_true(job, typ):
            return typ
    return "Running"


def _job_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, batch.Job)
    spec, st = o.spec, o.status
    if spec.HasField("completions"):
        completions = f"{st.succeeded}/{spec.completions}"
    elif spec.HasField("parallelism") and spec.parallelism > 1:
        completions = f"{st.succeeded}/1 of {spec.parallelism}"
    else:
        completions = f"{st.succeeded}/1"
    duration = ""
    if is_set(st.start_time):
        end = st.completion_time.seconds + st.completion_time.nanos / 1e9 if is_set(st.completion_time) else now
        duration = human_duration(end - (st.start_time.seconds + st.start_time.nanos / 1e9))
    row = [job_status(o), completions, duration, age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(spec.template.spec), format_selector(spec.selector)]
    return row


def _cronjob_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, batch.CronJob)
    spec = o.spec
    suspend = ("True" if spec.suspend else "False") if spec.HasField("suspend") else "<unset>"
    last = age(o.status.last_schedule_time, now) if is_set(o.status.last_schedule_time) else NONE
    row = [spec.schedule, spec.time_zone if spec.HasField("time_zone") else NONE, suspend,
           str(len(o.status.active)), last, age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(spec.job_template.spec.template.spec),
                format_selector(spec.job_template.spec.selector)]
    return row


def _ds_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, apps.DaemonSet)
    st = o.status
    row = [str(st.desired_number_scheduled), str(st.current_number_scheduled), str(st.number_ready),
           str(st.updated_number_scheduled), str(st.number_available),
           format_labels(o.spec.template.spec.node_selector), age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(o.spec.template.spec), format_selector(o.spec.selector)]
    return row


def _sts_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, apps.StatefulSet)
    replicas = o.spec.replicas if o.spec.HasField("replicas") else 1
    row = [f"{o.status.ready_replicas}/{replicas}", age(o.metadata.creation_timestamp, now)]
    if wide:
        row += [*_containers_images(o.spec.template.spec)]
    return row


# -- services & co ---------------------------------------------------------------------------------

def service_external_ip(svc: core.Service) -> str:
    t = svc.spec.type or "ClusterIP"
    ext = list(svc.spec.external_ips)
    if t in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else NONE
    if t == "LoadBalancer":
        ips = [i.ip or i.hostname for i in svc.status.load_balancer.ingress] + ext
        return ",".join(ips) if ips else "<pending>"
    if t == "ExternalName":
        return svc.spec.external_name
    return "<unknown>"


def service_ports(svc: core.Service) -> str:
    parts = []
    for p in svc.spec.ports:
        proto = p.protocol or "TCP"
        parts.append(f"{p.port}:{p.node_port}/{proto}" if p.node_port else f"{p.port}/{proto}")
    return ",".join(parts) if parts else NONE


def _svc_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Service)
    row = [o.spec.type or "ClusterIP", o.spec.cluster_ip or NONE, service_external_ip(o), service_ports(o),
           age(o.metadata.creation_timestamp, now)]
    if wide:
        row.append(format_labels(o.spec.selector))
    return row


def format_endpoints(ep: core.Endpoints, max_shown: int = 3) -> str:
    items: list[str] = []
    count = 0
    more = False
    for ss in ep.subsets:
        ports: list[core.EndpointPort | None] = [*ss.ports] or [None]
        for port in ports:
            for a in ss.addresses:
                count += 1
                if len(items) < max_shown:
                    items.append(f"{a.ip}:{port.port}" if port is not None else a.ip)
                else:
                    more = True
    if not items:
        return NONE
    s = ",".join(items)
    return f"{s} + {count - len(items)} more..." if more else s


def _ep_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Endpoints)
    return [format_endpoints(o), age(o.metadata.creation_timestamp, now)]


def _list_with_more(items: list[str], count: int, max_shown: int = 3) -> str:
    """kubectl's listWithMoreString: the first three, `+ N more...`, `<unset>` when empty."""
    s = ",".join(items[:max_shown])
    if count > max_shown:
        return f"{s} + {count - max_shown} more..."
    return s or "<unset>"


def _eps_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, discovery.EndpointSlice)
    ports = [str(p.port) if p.HasField("port") else (p.name if p.HasField("name") else "*") for p in o.ports]
    addresses = [a for e in o.endpoints for a in e.addresses]
    return [o.address_type, _list_with_more(ports, len(ports)), _list_with_more(addresses, len(addresses)),
            age(o.metadata.creation_timestamp, now)]


def node_status(node: core.Node) -> str:
    status = "Unknown"
    for c in node.status.conditions:
        if c.type == "Ready":
            status = "Ready" if c.status == "True" else "NotReady"
    if node.spec.unschedulable:
        status += ",SchedulingDisabled"
    return status


def node_roles(node: core.Node) -> str:
    roles = set()
    for k, v in node.metadata.labels.items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) if roles else NONE


def _node_address(node: core.Node, kind: str) -> str:
    for a in node.status.addresses:
        if a.type == kind:
            return a.address
    return NONE


def _node_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Node)
    info = o.status.node_info
    row = [node_status(o), node_roles(o), age(o.metadata.creation_timestamp, now), info.kubelet_version]
    if wide:
        row += [_node_address(o, "InternalIP"), _node_address(o, "ExternalIP"), info.os_image or "<unknown>",
                info.kernel_version or "<unknown>", info.container_runtime_version or "<unknown>"]
    return row


def _ns_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Namespace)
    return [o.status.phase or "Active", age(o.metadata.creation_timestamp, now)]


def event_last_seen(ev: core.Event, now: float) -> str:
    if is_set(ev.last_timestamp):
        last = ev.last_timestamp
    elif is_set(ev.event_time):
        last = ev.event_time
    else:
        last = ev.metadata.creation_timestamp
    if ev.series.count > 1 and is_set(ev.series.last_observed_time):
        return f"{age(ev.series.last_observed_time, now)} (x{ev.series.count} over {age(ev.event_time, now)})"
    if ev.count > 1 and is_set(ev.first_timestamp):
        return f"{age(last, now)} (x{ev.count} over {age(ev.first_timestamp, now)})"
    return age(last, now)


def _event_object(ev: core.Event) -> str:
    io = ev.involved_object
    return f"{io.kind.lower()}/{io.name}"


def _event_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Event)
    row = [event_last_seen(o, now), o.type, o.reason, _event_object(o)]
    if not wide:
        return [*row, o.message.strip()]
    src = o.source.component or o.reporting_component
    if o.source.host:
        src += f", {o.source.host}"
    first = o.first_timestamp if is_set(o.first_timestamp) else o.event_time
    count = o.series.count or o.count or 1
    return [*row, o.involved_object.field_path, src, o.message.strip(), age(first, now), str(count),
            o.metadata.name]


def _cm_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.ConfigMap)
    return [str(len(o.data) + len(o.binary_data)), age(o.metadata.creation_timestamp, now)]


def _secret_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.Secret)
    return [o.type or "Opaque", str(len(o.data)), age(o.metadata.creation_timestamp, now)]


def _sa_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, core.ServiceAccount)
    return [str(len(o.secrets)), age(o.metadata.creation_timestamp, now)]


def _lease_row(o: Message, wide: bool, now: float) -> list[str]:
    assert isinstance(o, coordination.Lease)
    return [o.spec.holder_identity if o.spec.HasField("holder_identity") else "",
            age(o.metadata.creation_timestamp, now)]


def _generic_row(o: Message, wide: bool, now: float) -> list[str]:
    return [age(meta_of(o).creation_timestamp, now)]


RowFn = Callable[[Message, bool, float], list[str]]

# plural -> (columns after NAME, extra -o wide columns, row function). Events have no NAME column.
COLUMNS: dict[str, tuple[list[str], list[str], RowFn]] = {
    "pods": (["READY", "STATUS", "RESTARTS", "AGE"], ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
             _pod_row),
    "deployments": (["READY", "UP-TO-DATE", "AVAILABLE", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"],
                    _deploy_row),
    "replicasets": (["DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"], _rs_row),
    "replicationcontrollers": (["DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"],
                               _rc_row),
    "jobs": (["STATUS", "COMPLETIONS", "DURATION", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"], _job_row),
    "cronjobs": (["SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
                 ["CONTAINERS", "IMAGES", "SELECTOR"], _cronjob_row),
    "daemonsets": (["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
                   ["CONTAINERS", "IMAGES", "SELECTOR"], _ds_row),
    "statefulsets": (["READY", "AGE"], ["CONTAINERS", "IMAGES"], _sts_row),
    "services": (["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"], _svc_row),
    "endpoints": (["ENDPOINTS", "AGE"], [], _ep_row),
    "endpointslices": (["ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], [], _eps_row),
    "nodes": (["STATUS", "ROLES", "AGE", "VERSION"],
              ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"], _node_row),
    "namespaces": (["STATUS", "AGE"], [], _ns_row),
    "events": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
               ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT",
                "NAME"], _event_row),
    "configmaps": (["DATA", "AGE"], [], _cm_row),
    "secrets": (["TYPE", "DATA", "AGE"], [], _secret_row),
    "serviceaccounts": (["SECRETS", "AGE"], [], _sa_row),
    "leases": (["HOLDER", "AGE"], [], _lease_row),
}


def headers_for(info: kinds.ResourceInfo, *, wide: bool = False, show_labels: bool = False,
                all_namespaces: bool = False) -> list[str]:
    cols, wide_cols, _ = COLUMNS.get(info.plural, (["AGE"], [], _generic_row))
    if info.plural == "events":
        h = list(wide_cols if wide else cols)
    else:
        h = ["NAME", *cols, *(wide_cols if wide else [])]
    if show_labels:
        h.append("LABELS")
    if all_namespaces and info.namespaced:
        h.insert(0, "NAMESPACE")
    return h


def row_for(info: kinds.ResourceInfo, obj: Message, now: float, *, wide: bool = False,
            show_labels: bool = False, all_namespaces: bool = False, with_kind: bool = False) -> list[str]:
    _, _, fn = COLUMNS.get(info.plural, ([], [], _generic_row))
    md = meta_of(obj)
    cells = fn(obj, wide, now)
    if info.plural != "events":
        cells.insert(0, ref(info, md.name) if with_kind else md.name)
    if show_labels:
        cells.append(format_labels(md.labels))
    if all_namespaces and info.namespaced:
        cells.insert(0, md.namespace)
    return cells


def table(info: kinds.ResourceInfo, objs: Sequence[Message], now: float, *, wide: bool = False,
          show_labels: bool = False, all_namespaces: bool = False, with_kind: bool = False,
          no_headers: bool = False) -> str:
    headers = headers_for(info, wide=wide, show_labels=show_labels, all_namespaces=all_namespaces)
    rows = [row_for(info, o, now, wide=wide, show_labels=show_labels, all_namespaces=all_namespaces,
                    with_kind=with_kind) for o in objs]
    return render_table(headers, rows, no_headers=no_headers)
