"""describe pod: status, containers (state, probes, environment, mounts), volumes, QoS, tolerations;
and the pod template of the workload kinds."""

from __future__ import annotations

from collections.abc import Sequence

from pbctl.describers.writer import (
    SKIP_ANNOTATIONS,
    Writer,
    controller_of,
    fmt_time,
    labels,
    multiline,
    print_annotations,
)
from pybernetes.api import cells, qos
from pybernetes.api.core.v1 import core_pb2 as core


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


def describe_projected(w: Writer, projected: core.ProjectedVolumeSource, level: int) -> None:
    """A projected volume as kubectl's printProjectedVolumeSource shows it: a line or two per source (the
    ServiceAccount token volume: TokenExpirationSeconds, ConfigMapName kube-root-ca.crt, DownwardAPI)."""
    w.w(level, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
    for src in projected.sources:
        if src.HasField("secret"):
            w.w(level, f"SecretName:\t{src.secret.name}\n")
            w.w(level, f"Optional:\t{str(src.secret.optional).lower()}\n")
        elif src.HasField("downward_api"):
            w.w(level, "DownwardAPI:\ttrue\n")
        elif src.HasField("config_map"):
            w.w(level, f"ConfigMapName:\t{src.config_map.name}\n")
            w.w(level, f"Optional:\t{str(src.config_map.optional).lower()}\n")
        elif src.HasField("service_account_token"):
            w.w(level, f"TokenExpirationSeconds:\t{src.service_account_token.expiration_seconds}\n")


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
            describe_projected(w, v.projected, level + 2)
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
    if cells.is_set(st.start_time):
        w.w(0, f"Start Time:\t{fmt_time(st.start_time)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    if cells.is_set(md.deletion_timestamp):
        w.w(0, f"Status:\tTerminating (lasts {cells.age(md.deletion_timestamp, t)})\n")
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
