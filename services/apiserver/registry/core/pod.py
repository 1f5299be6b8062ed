"""Pods (and their binding subresource): validation, defaults, what the server sets on create, field selectors.

Kubernetes' pkg/registry/core/pod (strategy, BindingREST's validation) with the pod rules of
pkg/apis/core/validation and SetDefaults_Pod; the pod spec itself is podspec's. The tolerations every pod gets
are the DefaultTolerationSeconds admission plugin's (services/apiserver/admission).
"""

from __future__ import annotations

from collections.abc import Sequence

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.qos import qos_class
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.formats import MAX_INT32, is_dns1123_subdomain, is_valid_ip
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.metadata import validate_conditions
from services.apiserver.registry.podspec import default_pod_spec, validate_pod_spec

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, "
    "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), "
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def validate(pod: core.Pod, errs: Errs) -> None:
    validate_pod_spec(pod.spec, "spec", errs)


def _validate_only_added_tolerations(new: Sequence[core.Toleration], old: Sequence[core.Toleration],
                                     path: str, errs: Errs) -> None:
    for o in old:
        found = False
        for n in new:
            clone = core.Toleration()
            clone.CopyFrom(o)
            # tolerationSeconds may change (the node lifecycle controller's evictions rely on it)
            if n.HasField("toleration_seconds"):
                clone.toleration_seconds = n.toleration_seconds
            else:
                clone.ClearField("toleration_seconds")
            if clone == n:
                found = True
                break
        if not found:
            errs.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")
            return


def validate_update(new: core.Pod, old: core.Pod, errs: Errs) -> None:
    ns, os_ = new.spec, old.spec
    if len(ns.containers) != len(os_.containers):
        errs.forbidden("spec.containers", "pod updates may not add or remove containers")
        return
    if len(ns.init_containers) != len(os_.init_containers):
        errs.forbidden("spec.initContainers", "pod updates may not add or remove containers")
        return
    if ns.HasField("active_deadline_seconds"):
        v = ns.active_deadline_seconds
        if v < 0 or v > MAX_INT32:
            errs.invalid("spec.activeDeadlineSeconds", v, f"must be between 0 and {MAX_INT32}, inclusive")
            return
        if os_.HasField("active_deadline_seconds") and os_.active_deadline_seconds < v:
            errs.invalid("spec.activeDeadlineSeconds", v, "must be less than or equal to previous value")
            return
    elif os_.HasField("active_deadline_seconds"):
        errs.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
    # Copy what may change from the new spec onto the old; anything else that differs is forbidden.
    munged = core.PodSpec()
    munged.CopyFrom(ns)
    for i, c in enumerate(munged.containers):
        c.image = os_.containers[i].image
    for i, c in enumerate(munged.init_containers):
        c.image = os_.init_containers[i].image
    # serviceAccount is derived from serviceAccountName (defaulting): Kubernetes' internal spec has no such field.
    munged.service_account = os_.service_account
    if os_.HasField("active_deadline_seconds"):
        munged.active_deadline_seconds = os_.active_deadline_seconds
    else:
        munged.ClearField("active_deadline_seconds")
    _validate_only_added_tolerations(ns.tolerations, os_.tolerations, "spec.tolerations", errs)
    del munged.tolerations[:]
    munged.tolerations.extend(os_.tolerations)
    if (os_.HasField("termination_grace_period_seconds") and os_.termination_grace_period_seconds < 0
            and ns.termination_grace_period_seconds == 1):
        munged.termination_grace_period_seconds = os_.termination_grace_period_seconds
    if munged != os_:
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


def validate_status(new: core.Pod, old: core.Pod, errs: Errs) -> None:
    st = new.status
    if st.phase and st.phase not in POD_PHASES:
        errs.not_supported("status.phase", st.phase, POD_PHASES)
    validate_conditions(st.conditions, "status.conditions", errs)
    if st.nominated_node_name:
        errs.invalid_each("status.nominatedNodeName", st.nominated_node_name,
                          is_dns1123_subdomain(st.nominated_node_name))
    if st.pod_ip:
        errs.invalid_each("status.podIP", st.pod_ip, is_valid_ip(st.pod_ip))
    for i, ip in enumerate(st.pod_ips):
        errs.invalid_each(child(index("status.podIPs", i), "ip"), ip.ip, is_valid_ip(ip.ip))
    if st.host_ip:
        errs.invalid_each("status.hostIP", st.host_ip, is_valid_ip(st.host_ip))
    if st.qos_class and st.qos_class not in ("Guaranteed", "Burstable", "BestEffort"):
        errs.not_supported("status.qosClass", st.qos_class, ("BestEffort", "Burstable", "Guaranteed"))
    # The scheduler binds through pods/binding; the status subresource may not move a pod.
    if new.spec.node_name != old.spec.node_name and old.spec.node_name:
        errs.forbidden("spec.nodeName", "pod updates may not change nodeName")


def validate_binding(b: core.Binding, errs: Errs) -> None:
    if b.target.kind and b.target.kind != "Node":
        errs.not_supported("target.kind", b.target.kind, ("Node", "<empty>"))
    if not b.target.name:
        errs.required("target.name")
    else:
        errs.invalid_each("target.name", b.target.name, is_dns1123_subdomain(b.target.name))


def default(pod: core.Pod) -> None:
    """SetDefaults_Pod: the pod spec's defaults, enableServiceLinks, requests from limits, host ports."""
    spec = pod.spec
    default_pod_spec(spec)
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


def fields(p: core.Pod) -> dict[str, str]:
    return {"metadata.name": p.metadata.name, "metadata.namespace": p.metadata.namespace,
            "spec.nodeName": p.spec.node_name, "spec.restartPolicy": p.spec.restart_policy,
            "spec.schedulerName": p.spec.scheduler_name, "spec.serviceAccountName": p.spec.service_account_name,
            "status.phase": p.status.phase, "status.podIP": p.status.pod_ip,
            "status.nominatedNodeName": p.status.nominated_node_name}


def prepare_for_create(pod: core.Pod) -> None:
    """A new pod starts Pending with no other status but its QoS class."""
    pod.ClearField("status")
    pod.status.phase = "Pending"
    pod.status.qos_class = qos_class(pod)


STRATEGY = KindStrategy(core.Pod, default=default, validate=validate, validate_update=validate_update,
                        validate_status=validate_status, prepare_for_create=prepare_for_create, fields=fields)
BINDING_STRATEGY = KindStrategy(core.Binding, validate=validate_binding)
