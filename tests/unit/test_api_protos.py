"""The object-model protos: they import, and JSON names / merge keys / presence match Kubernetes."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import options_pb2

# Typed as Any: the stubs type Extensions[] keys narrowly.
MERGE_KEY: Any = options_pb2.merge_key
REQUIRED_OPT: Any = options_pb2.required
DOC: Any = options_pb2.doc


def _field(msg: Any, path: str) -> FieldDescriptor:
    """`path` is dotted proto field names from the message class or descriptor `msg`."""
    desc: Descriptor = getattr(msg, "DESCRIPTOR", msg)
    fd: FieldDescriptor | None = None
    for name in path.split("."):
        if fd is not None:
            desc = _type(fd)
        fd = desc.fields_by_name[name]
    assert fd is not None
    return fd


def _type(fd: FieldDescriptor) -> Descriptor:
    assert fd.message_type is not None, fd.full_name
    return fd.message_type


KINDS = [
    core.Namespace,
    core.Pod,
    core.Node,
    core.Service,
    core.Endpoints,
    core.ServiceAccount,
    core.ConfigMap,
    core.Secret,
    core.Event,
    core.ReplicationController,
    core.Binding,
    apps.Deployment,
    apps.ReplicaSet,
    coordination.Lease,
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.DESCRIPTOR.full_name)
def test_kinds_have_metadata_first_and_no_type_meta(kind: Any) -> None:
    desc: Descriptor = kind.DESCRIPTOR
    md = desc.fields_by_number[1]
    assert md.name == "metadata"
    assert _type(md).full_name == "pybernetes.api.meta.v1.ObjectMeta"
    assert "api_version" not in desc.fields_by_name
    assert "kind" not in desc.fields_by_name


JSON_NAMES = [
    (core.Pod, "status.host_ip", "hostIP"),
    (core.Pod, "status.host_ips", "hostIPs"),
    (core.Pod, "status.pod_ip", "podIP"),
    (core.Pod, "status.pod_ips", "podIPs"),
    (core.Pod, "status.qos_class", "qosClass"),
    (core.Pod, "status.container_statuses", "containerStatuses"),
    (core.ContainerStatus, "container_id", "containerID"),
    (core.ContainerStatus, "image_id", "imageID"),
    (core.ContainerStateTerminated, "container_id", "containerID"),
    (core.PodSpec, "host_pid", "hostPID"),
    (core.PodSpec, "host_ipc", "hostIPC"),
    (core.PodSpec, "set_hostname_as_fqdn", "setHostnameAsFQDN"),
    (core.PodSpec, "security_context.se_linux_options", "seLinuxOptions"),
    (core.PodSpec, "termination_grace_period_seconds", "terminationGracePeriodSeconds"),
    (
        core.PodSpec,
        "affinity.node_affinity.required_during_scheduling_ignored_during_execution",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    (core.Container, "security_context.se_linux_options", "seLinuxOptions"),
    (core.ContainerPort, "host_ip", "hostIP"),
    (core.Volume, "downward_api", "downwardAPI"),
    (core.VolumeProjection, "downward_api", "downwardAPI"),
    (core.ServiceSpec, "cluster_ip", "clusterIP"),
    (core.ServiceSpec, "cluster_ips", "clusterIPs"),
    (core.ServiceSpec, "external_ips", "externalIPs"),
    (core.ServiceSpec, "load_balancer_ip", "loadBalancerIP"),
    (core.ServiceSpec, "session_affinity_config.client_ip", "clientIP"),
    (core.ServiceSpec, "ip_families", "ipFamilies"),
    (core.NodeSpec, "pod_cidr", "podCIDR"),
    (core.NodeSpec, "pod_cidrs", "podCIDRs"),
    (core.NodeSpec, "provider_id", "providerID"),
    (core.NodeSystemInfo, "machine_id", "machineID"),
    (core.NodeSystemInfo, "system_uuid", "systemUUID"),
    (core.NodeSystemInfo, "boot_id", "bootID"),
    (core.NodeStatus, "daemon_endpoints.kubelet_endpoint.port", "Port"),
    (core.Event, "reporting_component", "reportingComponent"),
    (core.Event, "involved_object", "involvedObject"),
    (core.ConfigMap, "binary_data", "binaryData"),
    (core.Secret, "string_data", "stringData"),
    (core.ServiceAccount, "automount_service_account_token", "automountServiceAccountToken"),
    (apps.DeploymentSpec, "strategy.rolling_update.max_surge", "maxSurge"),
    (apps.DeploymentSpec, "progress_deadline_seconds", "progressDeadlineSeconds"),
    (apps.ReplicaSetStatus, "fully_labeled_replicas", "fullyLabeledReplicas"),
    (coordination.LeaseSpec, "holder_identity", "holderIdentity"),
    (coordination.LeaseSpec, "lease_duration_seconds", "leaseDurationSeconds"),
]


@pytest.mark.parametrize(("msg", "path", "json_name"), JSON_NAMES, ids=lambda x: str(x)[:40])
def test_json_names(msg: Any, path: str, json_name: str) -> None:
    assert _field(msg, path).json_name == json_name


MERGE_KEYS = [
    (core.PodSpec, "containers", "name"),
    (core.PodSpec, "init_containers", "name"),
    (core.PodSpec, "ephemeral_containers", "name"),
    (core.PodSpec, "volumes", "name"),
    (core.PodSpec, "image_pull_secrets", "name"),
    (core.PodSpec, "host_aliases", "ip"),
    (core.PodSpec, "topology_spread_constraints", "topologyKey"),
    (core.PodSpec, "tolerations", ""),
    (core.Container, "ports", "containerPort"),
    (core.Container, "env", "name"),
    (core.Container, "volume_mounts", "mountPath"),
    (core.Container, "volume_devices", "devicePath"),
    (core.Container, "env_from", ""),
    (core.PodStatus, "conditions", "type"),
    (core.PodStatus, "pod_ips", "ip"),
    (core.ServiceSpec, "ports", "port"),
    (core.ServiceStatus, "conditions", "type"),
    (core.NodeStatus, "conditions", "type"),
    (core.NodeStatus, "addresses", "type"),
    (core.NodeSpec, "taints", ""),
    (core.NamespaceStatus, "conditions", "type"),
    (core.ServiceAccount, "secrets", "name"),
    (core.ReplicationControllerStatus, "conditions", "type"),
    (apps.DeploymentStatus, "conditions", "type"),
    (apps.ReplicaSetStatus, "conditions", "type"),
]


@pytest.mark.parametrize(("msg", "path", "key"), MERGE_KEYS, ids=lambda x: str(x)[:40])
def test_merge_keys(msg: Any, path: str, key: str) -> None:
    fd = _field(msg, path)
    assert fd.GetOptions().Extensions[MERGE_KEY] == key
    if key:
        # The key names a field (by its JSON name) of the list's items.
        assert key in {f.json_name for f in _type(fd).fields}


REQUIRED = [
    (core.Container, "name"),
    (core.Container, "image"),
    (core.Volume, "name"),
    (core.ContainerPort, "container_port"),
    (core.ServicePort, "port"),
    (core.EnvVar, "name"),
    (core.VolumeMount, "name"),
    (core.VolumeMount, "mount_path"),
    (apps.DeploymentSpec, "selector"),
    (core.Binding, "target"),
]


@pytest.mark.parametrize(("msg", "path"), REQUIRED, ids=lambda x: str(x)[:40])
def test_required(msg: Any, path: str) -> None:
    assert _field(msg, path).GetOptions().Extensions[REQUIRED_OPT]


def test_not_required() -> None:
    for msg, path in [
        (core.Toleration, "key"),
        (coordination.LeaseSpec, "holder_identity"),
        (core.Container, "ports"),
    ]:
        assert not _field(msg, path).GetOptions().Extensions[REQUIRED_OPT]


PRESENCE = [
    (apps.DeploymentSpec, "replicas"),
    (apps.DeploymentSpec, "revision_history_limit"),
    (apps.DeploymentSpec, "progress_deadline_seconds"),
    (apps.DeploymentStatus, "collision_count"),
    (apps.ReplicaSetSpec, "replicas"),
    (core.ReplicationControllerSpec, "replicas"),
    (core.PodSpec, "termination_grace_period_seconds"),
    (core.PodSpec, "automount_service_account_token"),
    (core.PodSpec, "enable_service_links"),
    (core.Toleration, "toleration_seconds"),
    (core.SecurityContext, "run_as_user"),
    (core.SecurityContext, "run_as_non_root"),
    (core.SecurityContext, "privileged"),
    (core.ConfigMapVolumeSource, "optional"),
    (core.ConfigMapVolumeSource, "default_mode"),
    (core.SecretVolumeSource, "default_mode"),
    (core.ContainerStatus, "started"),
    (core.ServiceSpec, "allocate_load_balancer_node_ports"),
    (core.ConfigMap, "immutable"),
    (core.Secret, "immutable"),
    (core.Probe, "termination_grace_period_seconds"),
    (core.GRPCAction, "service"),
    (coordination.LeaseSpec, "lease_transitions"),
]


@pytest.mark.parametrize(("msg", "path"), PRESENCE, ids=lambda x: str(x)[:40])
def test_pointer_scalars_have_presence(msg: Any, path: str) -> None:
    assert _field(msg, path).has_presence


def test_plain_scalars_have_no_presence() -> None:
    for msg, path in [
        (core.PodSpec, "host_network"),
        (apps.DeploymentSpec, "paused"),
        (apps.DeploymentSpec, "min_ready_seconds"),
        (core.Container, "tty"),
    ]:
        assert not _field(msg, path).has_presence


def test_typed_fields() -> None:
    assert _type(_field(core.ServicePort, "target_port")).name == "IntOrString"
    assert _type(_field(core.HTTPGetAction, "port")).name == "IntOrString"
    assert _field(core.GRPCAction, "port").type == FieldDescriptor.TYPE_INT32
    assert _type(_field(apps.DeploymentSpec, "template")).full_name == (
        "pybernetes.api.core.v1.PodTemplateSpec"
    )
    limits = _type(_field(core.ResourceRequirements, "limits"))
    assert _type(limits.fields_by_name["value"]).full_name == "pybernetes.api.meta.v1.Quantity"
    assert _type(_field(core.Secret, "data")).fields_by_name["value"].type == (FieldDescriptor.TYPE_BYTES)
    assert _type(_field(coordination.LeaseSpec, "renew_time")).name == "Time"


def test_docs_for_explain() -> None:
    for msg, path in [
        (core.Pod, "spec"),
        (core.Container, "image"),
        (apps.Deployment, "spec"),
        (apps.DeploymentSpec, "replicas"),
        (core.ServiceSpec, "type"),
    ]:
        assert _field(msg, path).GetOptions().Extensions[DOC]
