"""What kubectl prints in one table cell, computed the way kubectl and kube-apiserver's printers do: durations
(HumanDuration), ages, label selectors, and each kind's derived status (a pod's READY/STATUS/RESTARTS, a Job's
STATUS, a node's STATUS and ROLES, a service's EXTERNAL-IP and PORT(S), an event's LAST SEEN).

The per-kind rows in pybernetes/api/printing.py are built from these; pbctl's describers use them too.
"""

from __future__ import annotations

from collections.abc import Mapping

from pybernetes.api import jobs
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of

NONE = "<none>"


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


# -- pods ------------------------------------------------------------------------------------------

def _restartable_init(c: core.Container | None) -> bool:
    return c is not None and c.HasField("restart_policy") and c.restart_policy == "Always"


def cond_true(pod: core.Pod, ctype: str) -> bool:
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

    if not initializing or cond_true(pod, "Initialized"):
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


# -- workloads -------------------------------------------------------------------------------------

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


def list_with_more(items: list[str], count: int, max_shown: int = 3) -> str:
    """kubectl's listWithMoreString: the first three, `+ N more...`, `<unset>` when empty."""
    s = ",".join(items[:max_shown])
    if count > max_shown:
        return f"{s} + {count - max_shown} more..."
    return s or "<unset>"


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
