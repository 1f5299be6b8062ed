"""PodSpec and PodTemplateSpec: validation (ValidatePodSpec: restart/DNS policy, names, scheduling:
tolerations, affinity, topology spread) and defaults (SetDefaults_PodSpec), shared by pods and the
workloads' templates. Volumes and containers have their own modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.containers import default_container, validate_containers
from services.apiserver.registry.field import Errs, GoValue, child, go_quote, index
from services.apiserver.registry.formats import (
    MAX_INT32,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_valid_ip,
)
from services.apiserver.registry.metadata import validate_annotations, validate_label_selector, validate_labels
from services.apiserver.registry.protofields import has_field
from services.apiserver.registry.volumes import default_volume, validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _validate_tolerations(tolerations: Sequence[core.Toleration], path: str, errs: Errs) -> None:
    for i, t in enumerate(tolerations):
        p = index(path, i)
        if t.key:
            errs.invalid_each(child(p, "key"), t.key, is_qualified_name(t.key))
        if not t.key and t.operator != "Exists":
            errs.invalid(child(p, "operator"), t.operator,
                         "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
        if t.HasField("toleration_seconds") and t.effect != "NoExecute":
            errs.invalid(child(p, "effect"), t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if t.operator in ("Equal", ""):
            msgs = is_label_value(t.value)
            if msgs:
                errs.invalid(child(p, "operator"), t.value, ";".join(msgs))
        elif t.operator == "Exists":
            if t.value:
                secs = str(t.toleration_seconds) if t.HasField("toleration_seconds") else "(*int64)(nil)"
                errs.invalid(child(p, "operator"), GoValue(
                    f"core.Toleration{{Key:{go_quote(t.key)}, Operator:{go_quote(t.operator)}, "
                    f"Value:{go_quote(t.value)}, Effect:{go_quote(t.effect)}, TolerationSeconds:{secs}}}"),
                    "value must be empty when `operator` is 'Exists'")
        else:
            errs.not_supported(child(p, "operator"), t.operator, ("Equal", "Exists"))
        if t.effect and t.effect not in TAINT_EFFECTS:
            errs.not_supported(child(p, "effect"), t.effect, TAINT_EFFECTS)


def _validate_node_selector_requirement(r: core.NodeSelectorRequirement, path: str, errs: Errs,
                                        field_selector: bool = False) -> None:
    if r.operator in ("In", "NotIn"):
        if not r.values:
            errs.required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
    elif r.operator in ("Exists", "DoesNotExist"):
        if r.values:
            errs.forbidden(child(path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    elif r.operator in ("Gt", "Lt"):
        if len(r.values) != 1:
            errs.required(child(path, "values"), "must be specified single value when `operator` is 'Lt' or 'Gt'")
    else:
        errs.invalid(child(path, "operator"), r.operator, "not a valid selector operator")
    if not field_selector:
        errs.invalid_each(child(path, "key"), r.key, is_qualified_name(r.key))


def _validate_node_selector_term(term: core.NodeSelectorTerm, path: str, errs: Errs) -> None:
    for j, r in enumerate(term.match_expressions):
        _validate_node_selector_requirement(r, index(child(path, "matchExpressions"), j), errs)
    for j, r in enumerate(term.match_fields):
        p = index(child(path, "matchFields"), j)
        _validate_node_selector_requirement(r, p, errs, field_selector=True)
        if r.key != "metadata.name":
            errs.invalid(child(p, "key"), r.key, "not a valid field selector key")


def _validate_pod_affinity_terms(terms: Sequence[core.PodAffinityTerm], path: str, errs: Errs) -> None:
    for i, t in enumerate(terms):
        p = index(path, i)
        if not t.topology_key:
            errs.required(child(p, "topologyKey"), "can not be empty")
        else:
            errs.invalid_each(child(p, "topologyKey"), t.topology_key, is_qualified_name(t.topology_key))
        if t.HasField("label_selector"):
            validate_label_selector(t.label_selector, child(p, "labelSelector"), errs)
        if t.HasField("namespace_selector"):
            validate_label_selector(t.namespace_selector, child(p, "namespaceSelector"), errs)
        for j, ns in enumerate(t.namespaces):
            errs.invalid_each(index(child(p, "namespaces"), j), ns, is_dns1123_label(ns))


def _validate_weighted(terms: Sequence[core.WeightedPodAffinityTerm | core.PreferredSchedulingTerm],
                       path: str, errs: Errs) -> None:
    for i, t in enumerate(terms):
        if t.weight <= 0 or t.weight > 100:
            errs.invalid(child(index(path, i), "weight"), t.weight, "must be in the range 1-100")


def _validate_affinity(a: core.Affinity, path: str, errs: Errs) -> None:
    req_name, pref_name = "requiredDuringSchedulingIgnoredDuringExecution", \
        "preferredDuringSchedulingIgnoredDuringExecution"
    if a.HasField("node_affinity"):
        na, p = a.node_affinity, child(path, "nodeAffinity")
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            rp = child(p, req_name)
            terms = na.required_during_scheduling_ignored_during_execution.node_selector_terms
            if not terms:
                errs.required(child(rp, "nodeSelectorTerms"), "must have at least one node selector term")
            for i, term in enumerate(terms):
                _validate_node_selector_term(term, index(child(rp, "nodeSelectorTerms"), i), errs)
        prefs = na.preferred_during_scheduling_ignored_during_execution
        _validate_weighted(prefs, child(p, pref_name), errs)
        for i, pref in enumerate(prefs):
            _validate_node_selector_term(pref.preference, child(index(child(p, pref_name), i), "preference"), errs)
    for field_name, json_name in (("pod_affinity", "podAffinity"), ("pod_anti_affinity", "podAntiAffinity")):
        if has_field(a, field_name):
            pa, p = getattr(a, field_name), child(path, json_name)
            _validate_pod_affinity_terms(pa.required_during_scheduling_ignored_during_execution,
                                         child(p, req_name), errs)
            weighted = pa.preferred_during_scheduling_ignored_during_execution
            _validate_weighted(weighted, child(p, pref_name), errs)
            _validate_pod_affinity_terms([w.pod_affinity_term for w in weighted], child(p, pref_name), errs)


def _validate_topology_spread(cs: Sequence[core.TopologySpreadConstraint], path: str, errs: Errs) -> None:
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(cs):
        p = index(path, i)
        if c.max_skew <= 0:
            errs.invalid(child(p, "maxSkew"), c.max_skew, "must be greater than zero")
        if not c.topology_key:
            errs.required(child(p, "topologyKey"), "can not be empty")
        else:
            errs.invalid_each(child(p, "topologyKey"), c.topology_key, is_qualified_name(c.topology_key))
        if c.when_unsatisfiable not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.not_supported(child(p, "whenUnsatisfiable"), c.when_unsatisfiable,
                               ("DoNotSchedule", "ScheduleAnyway"))
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            errs.duplicate(child(p, "{topologyKey, whenUnsatisfiable}"),
                           f"{{{c.topology_key}, {c.when_unsatisfiable}}}")
        seen.add(pair)
        if c.HasField("label_selector"):
            validate_label_selector(c.label_selector, child(p, "labelSelector"), errs)


def validate_pod_spec(spec: core.PodSpec, path: str, errs: Errs, *, allow_ephemeral: bool = False) -> None:
    """ValidatePodSpec (pods and pod templates)."""
    volumes = validate_volumes(spec.volumes, child(path, "volumes"), errs)
    validate_containers(spec, volumes, path, errs)
    if spec.ephemeral_containers and not allow_ephemeral:
        errs.forbidden(child(path, "ephemeralContainers"), "cannot be set on create")
    if not spec.restart_policy:
        errs.required(child(path, "restartPolicy"))
    elif spec.restart_policy not in RESTART_POLICIES:
        errs.not_supported(child(path, "restartPolicy"), spec.restart_policy, RESTART_POLICIES)
    if not spec.dns_policy:
        errs.required(child(path, "dnsPolicy"))
    elif spec.dns_policy not in DNS_POLICIES:
        errs.not_supported(child(path, "dnsPolicy"), spec.dns_policy, DNS_POLICIES)
    elif spec.dns_policy == "None" and not spec.HasField("dns_config"):
        errs.required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None")
    if spec.HasField("dns_config"):
        for i, ns in enumerate(spec.dns_config.nameservers):
            errs.invalid_each(index(child(path, "dnsConfig", "nameservers"), i), ns, is_valid_ip(ns))
    validate_labels(spec.node_selector, child(path, "nodeSelector"), errs)
    for field_name, json_name, fn in (("service_account_name", "serviceAccountName", is_dns1123_subdomain),
                                      ("node_name", "nodeName", is_dns1123_subdomain),
                                      ("hostname", "hostname", is_dns1123_label),
                                      ("subdomain", "subdomain", is_dns1123_label),
                                      ("scheduler_name", "schedulerName", is_dns1123_subdomain),
                                      ("priority_class_name", "priorityClassName", is_dns1123_subdomain)):
        value = getattr(spec, field_name)
        if value:
            errs.invalid_each(child(path, json_name), value, fn(value))
    if spec.HasField("active_deadline_seconds") and not 1 <= spec.active_deadline_seconds <= MAX_INT32:
        errs.invalid(child(path, "activeDeadlineSeconds"), spec.active_deadline_seconds,
                     f"must be between 1 and {MAX_INT32}, inclusive")
    if spec.HasField("affinity"):
        _validate_affinity(spec.affinity, child(path, "affinity"), errs)
    _validate_tolerations(spec.tolerations, child(path, "tolerations"), errs)
    _validate_topology_spread(spec.topology_spread_constraints, child(path, "topologySpreadConstraints"), errs)
    for i, ha in enumerate(spec.host_aliases):
        errs.invalid_each(child(index(child(path, "hostAliases"), i), "ip"), ha.ip, is_valid_ip(ha.ip))
    if spec.HasField("preemption_policy") and spec.preemption_policy not in ("PreemptLowerPriority", "Never"):
        errs.not_supported(child(path, "preemptionPolicy"), spec.preemption_policy, ("Never", "PreemptLowerPriority"))


def validate_pod_template(t: core.PodTemplateSpec, path: str, errs: Errs) -> None:
    """ValidatePodTemplateSpec: template labels/annotations and the pod spec."""
    validate_labels(t.metadata.labels, child(path, "metadata", "labels"), errs)
    validate_annotations(t.metadata.annotations, child(path, "metadata", "annotations"), errs)
    validate_pod_spec(t.spec, child(path, "spec"), errs)


def default_pod_spec(spec: core.PodSpec) -> None:
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
        default_volume(v)
    for c in spec.init_containers:
        default_container(c)
    for c in spec.containers:
        default_container(c)
    for e in spec.ephemeral_containers:
        default_container(e)


def default_template(t: core.PodTemplateSpec) -> None:
    default_pod_spec(t.spec)
