"""What kubectl prints for an object, computed the way kubectl and kube-apiserver's printers do: durations
(HumanDuration), ages, and a pod's READY/STATUS/RESTARTS.

Shared by the apiserver's server-side tables (services/apiserver/http/tables.py) and meant for pbctl's printers,
whose copies of these functions (pybernetes/cli/printers.py: human_duration, age, pod_status) should import
them from here when pbctl moves (issue 13).
"""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta


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
