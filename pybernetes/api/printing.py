"""The one table of what `kubectl get` prints per kind: Kubernetes' column definitions (name, description,
priority 1 = only with -o wide) and the row function giving every cell, as kube-apiserver's
pkg/printers/internalversion does. Cell values come from pybernetes/api/cells.py.

Used by the apiserver's server-side Tables (services/apiserver/http/tables.py), which send all columns to
kubectl, and by pbctl's `get` (pbctl/printers.py), which keeps priority-0 columns unless -o wide and upper-cases
the names as kubectl does. Kinds without an entry print Name and Age.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.cells import (
    NONE,
    age,
    cond_true,
    event_last_seen,
    format_endpoints,
    format_labels,
    format_selector,
    human_duration,
    is_set,
    job_status,
    list_with_more,
    node_roles,
    node_status,
    pod_status,
    service_external_ip,
    service_ports,
)
from pybernetes.api.codec import time_to_str
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.objects import meta_of, replicas
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac


@dataclass(frozen=True)
class Column:
    """A meta.k8s.io/v1 TableColumnDefinition (every cell is a string)."""

    name: str
    description: str
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": "string", "format": self.format, "description": self.description,
                "priority": self.priority}


RowFn = Callable[[Message, float], list[str]]

NAME = Column("Name", "Name must be unique within a namespace.", format="name")
AGE = Column("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.")
CONTAINERS = Column("Containers", "Names of each container in the template.", priority=1)
IMAGES = Column("Images", "Images referenced by each container in the template.", priority=1)
SELECTOR = Column("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
                              "be the ones affected by this deployment.", priority=1)
DESIRED = Column("Desired", "Number of desired pods.")
CURRENT = Column("Current", "Number of actually running pods.")
READY = Column("Ready", "Number of ready pods.")


def _age(o: Message, now: float) -> str:
    return age(meta_of(o).creation_timestamp, now)


def _containers_images(spec: core.PodSpec) -> list[str]:
    return [",".join(c.name for c in spec.containers), ",".join(c.image for c in spec.containers)]


# -- pods & workloads ------------------------------------------------------------------------------

POD = [
    NAME,
    Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", "The aggregate status of the containers in this pod."),
    Column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                       "container in this pod has restarted."),
    AGE,
    Column("IP", "IP address allocated to the pod. Routable at least within the cluster.", priority=1),
    Column("Node", "NodeName is a request to schedule this pod onto a specific node.", priority=1),
    Column("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node.", priority=1),
    Column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
]


def _pod_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Pod)
    ready, status, restarts = pod_status(o, now)
    gates = NONE
    if o.spec.readiness_gates:
        true = sum(1 for g in o.spec.readiness_gates if cond_true(o, g.condition_type))
        gates = f"{true}/{len(o.spec.readiness_gates)}"
    return [o.metadata.name, ready, status, restarts, _age(o, now), o.status.pod_ip or NONE,
            o.spec.node_name or NONE, o.status.nominated_node_name or NONE, gates]


DEPLOYMENT = [
    NAME,
    Column("Ready", "Number of the pod with ready state."),
    Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
                         "template spec."),
    Column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
                        "deployment."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
]


def _deploy_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, apps.Deployment)
    st = o.status
    return [o.metadata.name, f"{st.ready_replicas}/{replicas(o)}", str(st.updated_replicas),
            str(st.available_replicas), _age(o, now), *_containers_images(o.spec.template.spec),
            format_selector(o.spec.selector)]


REPLICASET = [NAME, DESIRED, CURRENT, READY, AGE, CONTAINERS, IMAGES, SELECTOR]


def _rs_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, apps.ReplicaSet)
    return [o.metadata.name, str(replicas(o)), str(o.status.replicas), str(o.status.ready_replicas),
            _age(o, now), *_containers_images(o.spec.template.spec), format_selector(o.spec.selector)]


def _rc_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.ReplicationController)
    return [o.metadata.name, str(replicas(o)), str(o.status.replicas), str(o.status.ready_replicas),
            _age(o, now), *_containers_images(o.spec.template.spec), format_labels(o.spec.selector)]


JOB = [
    NAME,
    Column("Status", "Status of the job."),
    Column("Completions", "The desired number of successfully finished pods the job should be run with."),
    Column("Duration", "Time required to complete the job."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
]


def _job_row(o: Message, now: float) -> list[str]:
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
    return [o.metadata.name, job_status(o), completions, duration, _age(o, now),
            *_containers_images(spec.template.spec), format_selector(spec.selector)]


CRONJOB = [
    NAME,
    Column("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column("Timezone", "The time zone name for the given schedule."),
    Column("Suspend", "This flag tells the controller to suspend subsequent executions."),
    Column("Active", "A list of pointers to currently running jobs."),
    Column("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
]


def _cronjob_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, batch.CronJob)
    spec = o.spec
    suspend = ("True" if spec.suspend else "False") if spec.HasField("suspend") else "<unset>"
    last = age(o.status.last_schedule_time, now) if is_set(o.status.last_schedule_time) else NONE
    return [o.metadata.name, spec.schedule, spec.time_zone if spec.HasField("time_zone") else NONE, suspend,
            str(len(o.status.active)), last, _age(o, now),
            *_containers_images(spec.job_template.spec.template.spec),
            format_selector(spec.job_template.spec.selector)]


DAEMONSET = [
    NAME,
    Column("Desired", "The total number of nodes that should be running the daemon pod."),
    Column("Current", "The number of nodes running at least one daemon pod and are supposed to."),
    Column("Ready", "The number of nodes that should be running the daemon pod and have one or more of the "
                    "daemon pod running and ready."),
    Column("Up-to-date", "The total number of nodes that are running updated daemon pod."),
    Column("Available", "The number of nodes that should be running the daemon pod and have one or more of the "
                        "daemon pod running and available."),
    Column("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
]


def _ds_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, apps.DaemonSet)
    st = o.status
    return [o.metadata.name, str(st.desired_number_scheduled), str(st.current_number_scheduled),
            str(st.number_ready), str(st.updated_number_scheduled), str(st.number_available),
            format_labels(o.spec.template.spec.node_selector), _age(o, now),
            *_containers_images(o.spec.template.spec), format_selector(o.spec.selector)]


STATEFULSET = [NAME, Column("Ready", "Number of the pod with ready state."), AGE, CONTAINERS, IMAGES]


def _sts_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, apps.StatefulSet)
    return [o.metadata.name, f"{o.status.ready_replicas}/{replicas(o)}", _age(o, now),
            *_containers_images(o.spec.template.spec)]


# -- services, nodes & co --------------------------------------------------------------------------

SERVICE = [
    NAME,
    Column("Type", "Type of the service."),
    Column("Cluster-IP", "ClusterIP is the IP address of the service."),
    Column("External-IP", "External IPs of the service, or its load balancer's ingress points."),
    Column("Port(s)", "The ports that are exposed by this service."),
    AGE,
    Column("Selector", "Route service traffic to pods with label keys and values matching this selector.",
           priority=1),
]


def _svc_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Service)
    return [o.metadata.name, o.spec.type or "ClusterIP", o.spec.cluster_ip or NONE, service_external_ip(o),
            service_ports(o), _age(o, now), format_labels(o.spec.selector)]


ENDPOINTS = [NAME, Column("Endpoints", "Endpoints of the service (at most three shown)."), AGE]


def _ep_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Endpoints)
    return [o.metadata.name, format_endpoints(o), _age(o, now)]


NODE = [
    NAME,
    Column("Status", "The status of the node."),
    Column("Roles", "The roles of the node."),
    AGE,
    Column("Version", "Kubelet Version reported by the node."),
    Column("Internal-IP", "List of addresses reachable to the node.", priority=1),
    Column("External-IP", "List of addresses reachable to the node.", priority=1),
    Column("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
    Column("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    Column("Container-Runtime", "Container runtime version reported by the node.", priority=1),
]


ENDPOINT_SLICES = [NAME, Column("AddressType", "The type of addresses the slice holds."),
                   Column("Ports", "The ports the endpoints expose (at most three shown)."),
                   Column("Endpoints", "The addresses of the endpoints (at most three shown)."), AGE]


def _eps_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, discovery.EndpointSlice)
    ports = [str(p.port) if p.HasField("port") else (p.name if p.HasField("name") else "*") for p in o.ports]
    addresses = [a for e in o.endpoints for a in e.addresses]
    return [o.metadata.name, o.address_type, list_with_more(ports, len(ports)),
            list_with_more(addresses, len(addresses)), _age(o, now)]


def _node_address(node: core.Node, kind: str) -> str:
    for a in node.status.addresses:
        if a.type == kind:
            return a.address
    return NONE


def _node_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Node)
    info = o.status.node_info
    return [o.metadata.name, node_status(o), node_roles(o), _age(o, now), info.kubelet_version,
            _node_address(o, "InternalIP"), _node_address(o, "ExternalIP"), info.os_image or "<unknown>",
            info.kernel_version or "<unknown>", info.container_runtime_version or "<unknown>"]


NAMESPACE = [NAME, Column("Status", "The status of the namespace."), AGE]


def _ns_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Namespace)
    return [o.metadata.name, o.status.phase or "Active", _age(o, now)]


# Events lead with LAST SEEN; their name is the last, wide-only column.
EVENT = [
    Column("Last Seen", "Time when last event from this source was observed."),
    Column("Type", "Type of this event (Normal, Warning), new types could be added in the future."),
    Column("Reason", "This should be a short, machine understandable string that gives the reason for this "
                     "event being generated."),
    Column("Object", "The object that this event is about."),
    Column("Subobject", "The subobject (field path) that this event is about.", priority=1),
    Column("Source", "The component reporting this event.", priority=1),
    Column("Message", "A human-readable description of the status of this operation."),
    Column("First Seen", "The time at which the event was first recorded.", priority=1),
    Column("Count", "The number of times this event has occurred.", priority=1),
    Column("Name", "Name must be unique within a namespace.", priority=1, format="name"),
]


def _event_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Event)
    src = o.source.component or o.reporting_component
    if o.source.host:
        src += f", {o.source.host}"
    first = o.first_timestamp if is_set(o.first_timestamp) else o.event_time
    io = o.involved_object
    return [event_last_seen(o, now), o.type, o.reason, f"{io.kind.lower()}/{io.name}", io.field_path, src,
            o.message.strip(), age(first, now), str(o.series.count or o.count or 1), o.metadata.name]


CONFIGMAP = [NAME, Column("Data", "The number of entries in the data and binaryData fields."), AGE]


def _cm_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.ConfigMap)
    return [o.metadata.name, str(len(o.data) + len(o.binary_data)), _age(o, now)]


SECRET = [NAME, Column("Type", "The type of secret."), Column("Data", "The number of entries in the data field."),
          AGE]


def _secret_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.Secret)
    return [o.metadata.name, o.type or "Opaque", str(len(o.data)), _age(o, now)]


SERVICEACCOUNT = [NAME, Column("Secrets", "Secrets is a list of the secrets in the same namespace."), AGE]


def _sa_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.ServiceAccount)
    return [o.metadata.name, str(len(o.secrets)), _age(o, now)]


LIMITRANGE = [NAME, Column("Created At", "CreationTimestamp is a timestamp representing the server time when this "
                                         "object was created.", format="date")]


def _limitrange_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, core.LimitRange)
    ts = o.metadata.creation_timestamp
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts.seconds)) if is_set(ts) else NONE
    return [o.metadata.name, created]


RESOURCEQUOTA = [NAME, AGE,
                 Column("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
                 Column("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                                 "independent of contention on the node.")]


def _quota_row(o: Message, now: float) -> list[str]:
    """Every hard resource as `name: used/hard`, limits.* in the Limit column (kubectl's printResourceQuota)."""
    assert isinstance(o, core.ResourceQuota)
    request: list[str] = []
    limit: list[str] = []
    for name in sorted(o.spec.hard):
        used = o.status.used[name].string if name in o.status.used else "0"
        hard = o.status.hard[name].string if name in o.status.hard else "0"
        (limit if name.split(".")[0] == "limits" and "." in name else request).append(f"{name}: {used}/{hard}")
    return [o.metadata.name, _age(o, now), ", ".join(request), ", ".join(limit)]


LEASE = [NAME, Column("Holder", "The holder of the lease."), AGE]


def _lease_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, coordination.Lease)
    return [o.metadata.name, o.spec.holder_identity if o.spec.HasField("holder_identity") else "", _age(o, now)]


# -- rbac ------------------------------------------------------------------------------------------

ROLE = [NAME, Column("Created At", "CreationTimestamp is a timestamp representing the server time when this object "
                                   "was created.", format="date")]
ROLE_BINDING = [NAME, Column("Role", "RoleRef is the reference to the role."), AGE,
                Column("Users", "Users in the binding.", priority=1),
                Column("Groups", "Groups in the binding.", priority=1),
                Column("ServiceAccounts", "ServiceAccounts in the binding.", priority=1)]


def _role_row(o: Message, now: float) -> list[str]:
    md = meta_of(o)
    return [md.name, time_to_str(md.creation_timestamp) if is_set(md.creation_timestamp) else NONE]


def _binding_row(o: Message, now: float) -> list[str]:
    assert isinstance(o, rbac.RoleBinding | rbac.ClusterRoleBinding)
    subjects = {k: [s.name if k != "ServiceAccount" else f"{s.namespace}/{s.name}"
                    for s in o.subjects if s.kind == k] for k in ("User", "Group", "ServiceAccount")}
    return [o.metadata.name, f"{o.role_ref.kind}/{o.role_ref.name}", _age(o, now),
            *(", ".join(subjects[k]) for k in ("User", "Group", "ServiceAccount"))]


def _default_row(o: Message, now: float) -> list[str]:
    return [meta_of(o).name, _age(o, now)]


DEFAULT: tuple[list[Column], RowFn] = ([NAME, AGE], _default_row)

# resource plural -> (columns, row function giving one cell per column)
PRINTERS: dict[str, tuple[list[Column], RowFn]] = {
    "pods": (POD, _pod_row),
    "deployments": (DEPLOYMENT, _deploy_row),
    "replicasets": (REPLICASET, _rs_row),
    "replicationcontrollers": (REPLICASET, _rc_row),
    "jobs": (JOB, _job_row),
    "cronjobs": (CRONJOB, _cronjob_row),
    "daemonsets": (DAEMONSET, _ds_row),
    "statefulsets": (STATEFULSET, _sts_row),
    "services": (SERVICE, _svc_row),
    "endpoints": (ENDPOINTS, _ep_row),
    "endpointslices": (ENDPOINT_SLICES, _eps_row),
    "nodes": (NODE, _node_row),
    "namespaces": (NAMESPACE, _ns_row),
    "events": (EVENT, _event_row),
    "configmaps": (CONFIGMAP, _cm_row),
    "secrets": (SECRET, _secret_row),
    "serviceaccounts": (SERVICEACCOUNT, _sa_row),
    "leases": (LEASE, _lease_row),
    "limitranges": (LIMITRANGE, _limitrange_row),
    "resourcequotas": (RESOURCEQUOTA, _quota_row),
    "roles": (ROLE, _role_row),
    "clusterroles": (ROLE, _role_row),
    "rolebindings": (ROLE_BINDING, _binding_row),
    "clusterrolebindings": (ROLE_BINDING, _binding_row),
}


def columns(plural: str) -> list[Column]:
    """Every column of a resource's table, wide ones (priority 1) included."""
    return PRINTERS.get(plural, DEFAULT)[0]


def cells(plural: str, obj: Message, now: float) -> list[str]:
    """One cell per column of `columns(plural)` for obj, ages measured at `now` (epoch seconds)."""
    return PRINTERS.get(plural, DEFAULT)[1](obj, now)
