"""Server-side defaulting: Kubernetes' SetDefaults_* (core/v1, apps/v1) and DefaultTolerationSeconds.

`apply_defaults(obj)` mutates a decoded object in place before validation, on create and on update,
exactly as the Kubernetes apiserver defaults every object it decodes. Pod templates (Deployment,
ReplicaSet, ReplicationController) get the PodSpec/container defaults but not the Pod-only ones
(requests from limits, enableServiceLinks, admission tolerations), as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import Message

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

DEFAULT_FILE_MODE = 0o644  # 420: configMap/secret/downwardAPI/projected defaultMode
DEFAULT_TOLERATION_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800


def apply_defaults(obj: Message, *, not_ready_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS,
                   unreachable_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
    """Fill Kubernetes' defaults into `obj` (any registered kind); unknown kinds are left alone.

    The toleration seconds are kube-apiserver's --default-not-ready-toleration-seconds and
    --default-unreachable-toleration-seconds (the DefaultTolerationSeconds admission plugin)."""
    if isinstance(obj, core.Pod):
        _default_pod(obj, not_ready_toleration_seconds, unreachable_toleration_seconds)
        return
    fn = _BY_TYPE.get(type(obj))
    if fn is not None:
        fn(obj)


# -- containers --------------------------------------------------------------------------------------

def image_tag(image: str) -> str:
    """The tag docker's reference parser would find: "" for digests, "latest" when none is given."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]  # a registry host:port before the last '/' is not a tag
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _default_http_get(h: core.HTTPGetAction) -> None:
    if not h.path:
        h.path = "/"
    if not h.scheme:
        h.scheme = "HTTP"


def _default_probe(p: core.Probe) -> None:
    if p.timeout_seconds == 0:
        p.timeout_seconds = 1
    if p.period_seconds == 0:
        p.period_seconds = 10
    if p.success_threshold == 0:
        p.success_threshold = 1
    if p.failure_threshold == 0:
        p.failure_threshold = 3
    if p.HasField("http_get"):
        _default_http_get(p.http_get)
    if p.HasField("grpc") and not p.grpc.HasField("service"):
        p.grpc.service = ""


def _default_container(c: core.Container | core.EphemeralContainer) -> None:
    if not c.image_pull_policy:
        c.image_pull_policy = "Always" if image_tag(c.image) == "latest" else "IfNotPresent"
    if not c.termination_message_path:
        c.termination_message_path = "/dev/termination-log"
    if not c.termination_message_policy:
        c.termination_message_policy = "File"
    for port in c.ports:
        if not port.protocol:
            port.protocol = "TCP"
    for name in ("liveness_probe", "readiness_probe", "startup_probe"):
        if c.HasField(name):  # type: ignore[arg-type]
            _default_probe(getattr(c, name))
    if c.HasField("lifecycle"):
        for handler in (c.lifecycle.post_start, c.lifecycle.pre_stop):
            if handler.HasField("http_get"):
                _default_http_get(handler.http_get)


_VOLUME_SOURCES = ("host_path", "empty_dir", "secret", "nfs", "persistent_volume_claim", "downward_api",
                   "config_map", "projected", "csi", "ephemeral", "image")


def _default_volume(v: core.Volume) -> None:
    if not any(v.HasField(s) for s in _VOLUME_SOURCES):  # type: ignore[arg-type]
        v.empty_dir.SetInParent()  # a volume with no source is an emptyDir
    if v.HasField("secret") and not v.secret.HasField("default_mode"):
        v.secret.default_mode = DEFAULT_FILE_MODE
    if v.HasField("config_map") and not v.config_map.HasField("default_mode"):
        v.config_map.default_mode = DEFAULT_FILE_MODE
    if v.HasField("downward_api") and not v.downward_api.HasField("default_mode"):
        v.downward_api.default_mode = DEFAULT_FILE_MODE
    if v.HasField("projected"):
        if not v.projected.HasField("default_mode"):
            v.projected.default_mode = DEFAULT_FILE_MODE
        for src in v.projected.sources:
            sat = src.service_account_token
            if src.HasField("service_account_token") and not sat.HasField("expiration_seconds"):
                sat.expiration_seconds = 3600
    if v.HasField("host_path") and not v.host_path.HasField("type"):
        v.host_path.type = ""
    if v.HasField("ephemeral") and v.ephemeral.HasField("volume_claim_template"):
        spec = v.ephemeral.volume_claim_template.spec
        if not spec.HasField("volume_mode"):
            spec.volume_mode = "Filesystem"


def _default_pod_spec(spec: core.PodSpec) -> None:
    """SetDefaults_PodSpec and what the generated defaulters apply below it (templates included)."""
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if not spec.HasField("security_context"):
        spec.security_context.SetInParent()
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = 30
    if not spec.scheduler_name:
        spec.scheduler_name = "default-scheduler"
    # serviceAccount is the deprecated alias; Kubernetes keeps both in sync.
    if spec.service_account and not spec.service_account_name:
        spec.service_account_name = spec.service_account
    if spec.service_account_name:
        spec.service_account = spec.service_account_name
    for v in spec.volumes:
        _default_volume(v)
    for c in spec.init_containers:
        _default_container(c)
    for c in spec.containers:
        _default_container(c)
    for e in spec.ephemeral_containers:
        _default_container(e)


def _default_template(t: core.PodTemplateSpec) -> None:
    _default_pod_spec(t.spec)


def _tolerates(tolerations: Iterable[core.Toleration], key: str) -> bool:
    """DefaultTolerationSeconds' test: an existing NoExecute (or any-effect) toleration of `key`."""
    return any((t.key == key or not t.key) and t.effect in ("NoExecute", "") for t in tolerations)


def _default_pod(pod: core.Pod, not_ready_seconds: int = DEFAULT_TOLERATION_SECONDS,
                 unreachable_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
    spec = pod.spec
    _default_pod_spec(spec)
    if not spec.HasField("enable_service_links"):
        spec.enable_service_links = True
    for c in [*spec.init_containers, *spec.containers]:
        # Requests default to limits, resource by resource (SetDefaults_Pod).
        for name, q in c.resources.limits.items():
            if name not in c.resources.requests:
                c.resources.requests[name].CopyFrom(q)
        if spec.host_network:
            for port in c.ports:
                if port.host_port == 0:
                    port.host_port = port.container_port
    # DefaultTolerationSeconds admission: pods ride out a short node outage before eviction.
    for key, seconds in ((NOT_READY_TAINT, not_ready_seconds), (UNREACHABLE_TAINT, unreachable_seconds)):
        if not _tolerates(spec.tolerations, key):
            spec.tolerations.add(key=key, operator="Exists", effect="NoExecute", toleration_seconds=seconds)


# -- services, endpoints -------------------------------------------------------------------------------

def _int_or_string_unset(v: meta.IntOrString) -> bool:
    return v.str_val == "" if v.type == 1 else v.int_val == 0


def _default_service(svc: core.Service) -> None:
    spec = svc.spec
    if not spec.session_affinity:
        spec.session_affinity = "None"
    if spec.session_affinity == "None":
        spec.ClearField("session_affinity_config")
    elif spec.session_affinity == "ClientIP" and not spec.session_affinity_config.client_ip.HasField(
            "timeout_seconds"):
        spec.session_affinity_config.client_ip.timeout_seconds = DEFAULT_CLIENT_IP_AFFINITY_SECONDS
    if not spec.type:
        spec.type = "ClusterIP"
    for p in spec.ports:
        if not p.protocol:
            p.protocol = "TCP"
        if _int_or_string_unset(p.target_port):
            p.target_port.CopyFrom(meta.IntOrString(type=0, int_val=p.port))
    externally_accessible = spec.type in ("NodePort", "LoadBalancer") or (
        spec.type == "ClusterIP" and len(spec.external_ips) > 0)
    if externally_accessible and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if not spec.HasField("internal_traffic_policy") and spec.type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.internal_traffic_policy = "Cluster"
    if spec.type == "LoadBalancer" and not spec.HasField("allocate_load_balancer_node_ports"):
        spec.allocate_load_balancer_node_ports = True
    if spec.type != "ExternalName":
        # clusterIP and clusterIPs mirror each other (the apiserver's normalizeClusterIPs).
        if spec.cluster_ip and not spec.cluster_ips:
            spec.cluster_ips.append(spec.cluster_ip)
        elif spec.cluster_ips and not spec.cluster_ip:
            spec.cluster_ip = spec.cluster_ips[0]
        # Single-stack IPv4 cluster: every ClusterIP-bearing service (headless with a selector too).
        if not spec.HasField("ip_family_policy"):
            spec.ip_family_policy = "SingleStack"
        if not spec.ip_families:
            spec.ip_families.append("IPv4")


def _default_endpoints(ep: core.Endpoints) -> None:
    for subset in ep.subsets:
        for p in subset.ports:
            if not p.protocol:
                p.protocol = "TCP"


# -- workloads -----------------------------------------------------------------------------------------

def _default_deployment(d: apps.Deployment) -> None:
    spec = d.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    strategy = spec.strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
    if strategy.type == "RollingUpdate":
        ru = strategy.rolling_update
        ru.SetInParent()
        if not ru.HasField("max_unavailable"):
            ru.max_unavailable.CopyFrom(meta.IntOrString(type=1, str_val="25%"))
        if not ru.HasField("max_surge"):
            ru.max_surge.CopyFrom(meta.IntOrString(type=1, str_val="25%"))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = 600
    _default_template(spec.template)


def _default_replica_set(rs: apps.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    _default_template(rs.spec.template)


def _default_replication_controller(rc: core.ReplicationController) -> None:
    spec = rc.spec
    if spec.HasField("template"):
        labels = spec.template.metadata.labels
        if labels:
            if not spec.selector:
                spec.selector.update(labels)
            if not rc.metadata.labels:
                rc.metadata.labels.update(labels)
        _default_template(spec.template)
    if not spec.HasField("replicas"):
        spec.replicas = 1


# -- the rest ------------------------------------------------------------------------------------------

def _default_namespace(ns: core.Namespace) -> None:
    if ns.metadata.name:
        ns.metadata.labels["kubernetes.io/metadata.name"] = ns.metadata.name
    # The "kubernetes" finalizer is a create-time default only (the namespace controller removes it
    # while finalizing): a namespace without a phase and not being deleted is a fresh one.
    fresh = not ns.status.phase and not ns.metadata.HasField("deletion_timestamp")
    if fresh and "kubernetes" not in ns.spec.finalizers:
        ns.spec.finalizers.append("kubernetes")
    if not ns.status.phase:
        ns.status.phase = "Active"


def _default_secret(s: core.Secret) -> None:
    if not s.type:
        s.type = "Opaque"
    # stringData is write-only: merged into data (winning over it), then dropped.
    for k, v in s.string_data.items():
        s.data[k] = v.encode()
    s.ClearField("string_data")


def _default_node(n: core.Node) -> None:
    st = n.status
    if not st.allocatable and st.capacity:
        for k, q in st.capacity.items():
            st.allocatable[k].CopyFrom(q)
    spec = n.spec
    if spec.pod_cidr and not spec.pod_cidrs:
        spec.pod_cidrs.append(spec.pod_cidr)
    elif spec.pod_cidrs and not spec.pod_cidr:
        spec.pod_cidr = spec.pod_cidrs[0]


_BY_TYPE: dict[type[Message], Callable[[Any], None]] = {
    core.Pod: _default_pod,
    core.Service: _default_service,
    core.Endpoints: _default_endpoints,
    core.ReplicationController: _default_replication_controller,
    core.Namespace: _default_namespace,
    core.Secret: _default_secret,
    core.Node: _default_node,
    apps.Deployment: _default_deployment,
    apps.ReplicaSet: _default_replica_set,
}
