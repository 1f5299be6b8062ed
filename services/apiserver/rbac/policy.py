"""Kubernetes' bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): the ClusterRoles,
Roles and bindings every cluster starts with, by their Kubernetes names.

The user-facing roles (cluster-admin, admin/edit/view aggregated from the system:aggregate-to-* roles by
label) follow Kubernetes over the resources pybernetes serves. Each component role lists what that component
really calls (see the client calls of services/scheduler, services/controllers, netproxy, clusterdns and
node_agent), no more.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from pybernetes.api.kinds import RBAC_GROUP
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
EVENTS = ("create", "patch", "update")


def rule(verbs: Sequence[str], group: str | Sequence[str], *resources: str,
         names: Sequence[str] = ()) -> rbac.PolicyRule:
    groups = [group] if isinstance(group, str) else list(group)
    return rbac.PolicyRule(verbs=list(verbs), api_groups=groups, resources=list(resources),
                           resource_names=list(names))


def urls(verbs: Sequence[str], *paths: str) -> rbac.PolicyRule:
    return rbac.PolicyRule(verbs=list(verbs), non_resource_urls=list(paths))


def cluster_role(name: str, rules: Sequence[rbac.PolicyRule], *, labels: dict[str, str] | None = None,
                 aggregate_from: str = "") -> rbac.ClusterRole:
    r = rbac.ClusterRole(rules=list(rules))
    r.metadata.name = name
    r.metadata.labels.update({**BOOTSTRAPPING, **(labels or {})})
    r.metadata.annotations[AUTOUPDATE] = "true"
    if aggregate_from:
        r.aggregation_rule.cluster_role_selectors.add().match_labels[AGGREGATE_TO + aggregate_from] = "true"
    return r


def subject(kind: str, name: str, namespace: str = "") -> rbac.Subject:
    return rbac.Subject(kind=kind, api_group="" if kind == "ServiceAccount" else RBAC_GROUP, name=name,
                        namespace=namespace)


def cluster_binding(name: str, role: str, *subjects: rbac.Subject) -> rbac.ClusterRoleBinding:
    b = rbac.ClusterRoleBinding(subjects=list(subjects))
    b.metadata.name = name
    b.metadata.labels.update(BOOTSTRAPPING)
    b.metadata.annotations[AUTOUPDATE] = "true"
    b.role_ref.api_group, b.role_ref.kind, b.role_ref.name = RBAC_GROUP, "ClusterRole", role
    return b


def _agg(to: str) -> dict[str, str]:
    return {AGGREGATE_TO + to: "true"}


VIEW_RULES = [
    rule(READ, "", "configmaps", "endpoints", "pods", "replicationcontrollers", "replicationcontrollers/scale",
         "serviceaccounts", "services", "services/status"),
    rule(READ, "", "bindings", "events", "namespaces/status", "pods/log", "pods/status",
         "replicationcontrollers/status"),
    rule(READ, "", "namespaces"),
    rule(READ, "discovery.k8s.io", "endpointslices"),
    rule(READ, "apps", "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
         "replicasets", "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale",
         "statefulsets/status"),
    rule(READ, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
]
EDIT_RULES = [
    rule(READ, "", "pods/attach", "pods/exec", "pods/portforward", "secrets"),
    rule(["impersonate"], "", "serviceaccounts"),
    rule(WRITE, "", "pods", "pods/attach", "pods/exec", "pods/portforward"),
    rule(["create"], "", "pods/eviction"),
    rule(WRITE, "", "configmaps", "events", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
         "serviceaccounts", "services"),
    rule(WRITE, "apps", "daemonsets", "deployments", "deployments/scale", "replicasets", "replicasets/scale",
         "statefulsets", "statefulsets/scale"),
    rule(WRITE, "batch", "cronjobs", "jobs"),
    rule((*READ, *WRITE), "coordination.k8s.io", "leases"),
]
ADMIN_RULES = [
    rule(["create"], "authorization.k8s.io", "localsubjectaccessreviews"),
    rule((*READ, *WRITE), RBAC_GROUP, "rolebindings", "roles"),
]

# Delegated authentication and authorization of a component's /metrics (pybernetes.secureserving), as
# Kubernetes' system:auth-delegator ClusterRole grants them.
AUTH_DELEGATOR_RULES = [rule(["create"], "authentication.k8s.io", "tokenreviews"),
                        rule(["create"], "authorization.k8s.io", "subjectaccessreviews")]
# What `pb-scheduler` calls: Node and Pod informers, binding, the status patch of unschedulable pods, events,
# its leader-election Lease, and the reviews authorizing scrapes of its /metrics (as kube's role has them).
SCHEDULER_RULES = [
    *AUTH_DELEGATOR_RULES,
    rule(READ, "", "nodes", "pods"),
    rule(["create"], "", "pods/binding", "bindings"),
    rule(["patch", "update"], "", "pods/status"),
    rule(EVENTS, "", "events"),
    rule(["create"], "coordination.k8s.io", "leases"),
    rule(["get", "update"], "coordination.k8s.io", "leases", names=["kube-scheduler"]),
]
# What `pb-controller-manager` calls: the garbage collector and the namespace controller read and delete
# every kind (kube's generic-garbage-collector and namespace-controller roles), each controller writes its
# objects and their status; the ClusterRole aggregation controller updates aggregated roles (escalate); the
# reviews authorizing scrapes of its /metrics.
CONTROLLER_MANAGER_RULES = [
    *AUTH_DELEGATOR_RULES,
    rule((*READ, "delete", "deletecollection", "patch", "update"), "*", "*"),
    rule(["create"], "", "pods", "endpoints", "serviceaccounts", "configmaps"),  # configmaps: kube-root-ca.crt
    rule(EVENTS, "", "events"),
    rule(["create"], "apps", "replicasets"),
    rule(["create"], "batch", "jobs"),
    rule(["create"], "discovery.k8s.io", "endpointslices"),
    rule(["create"], "coordination.k8s.io", "leases"),
    rule(["escalate"], RBAC_GROUP, "clusterroles"),
]
# What `pb-proxy` calls: Service, Endpoints, EndpointSlice and Node informers, its own Node, events, and the
# proxier's heartbeat Lease.
NODE_PROXIER_RULES = [
    rule(["list", "watch"], "", "services", "endpoints"),
    rule(READ, "", "nodes"),
    rule(["list", "watch"], "discovery.k8s.io", "endpointslices"),
    rule(EVENTS, "", "events"),
    rule(["create", "get", "update"], "coordination.k8s.io", "leases"),
]
# What pb-dns reads (kube's system:kube-dns). Its Service and Endpoints are published by whoever installs it
# (the lab, with the admin's credentials), not by pb-dns.
KUBE_DNS_RULES = [rule(["list", "watch"], "", "services", "endpoints"),
                  rule(["list", "watch"], "discovery.k8s.io", "endpointslices")]
# What a kubelet (`pb-node`, system:node:<name> in system:nodes) may do: the one list, as Kubernetes'
# bootstrappolicy.NodeRules() is both the system:node ClusterRole's rules and the Node authorizer's static rules.
# The Node authorizer (authz_node.py) consults it only for what it does not narrow itself; what it narrows
# (nodes, pods and their subresources, secrets, configmaps, serviceaccounts/token, leases) it decides by the
# kubelet's own node and its pods' references. For those the list keeps to what a kubelet may do on any object:
# the role is bound to no one (as since Kubernetes 1.8), but it is what group system:nodes gets when the Node
# mode has no authorizer (rbac/modes.py), and there it must not let a kubelet list every Secret (Kubernetes'
# NodeRules() has get/list/watch on secrets and configmaps, create on pods and on serviceaccounts/token).
# Kubernetes' rules on kinds pybernetes does not serve are left out (TokenReviews, LocalSubjectAccessReviews,
# PersistentVolume(Claim)s, CSRs, and the storage.k8s.io and node.k8s.io kinds).
NODE_RULES = [
    # not narrowed by the Node authorizer: these rules decide
    rule(["create"], "authorization.k8s.io", "subjectaccessreviews"),  # as Kubernetes' (non-mutating)
    rule(READ, "", "services"),  # the kubernetes Service, service environment variables
    rule(["get"], "", "endpoints"),
    rule(EVENTS, "", "events"),
    # narrowed by the Node authorizer (and NodeRestriction) to the kubelet's own node and pods
    rule(["create", "get", "list", "watch", "update", "patch"], "", "nodes"),
    rule(["patch", "update"], "", "nodes/status"),
    rule((*READ, "delete"), "", "pods"),
    rule(["patch", "update"], "", "pods/status"),
    rule(["get"], "", "configmaps", "secrets"),
    rule(["create", "get", "update"], "coordination.k8s.io", "leases"),
]
# What `pbctl dashboard` draws (pbctl/dashboard/model.py's informers, the health probe's namespace get): read
# only. The lab runs it as user pybernetes:dashboard (config/dashboard.conf) rather than as the admin.
DASHBOARD_USER = "pybernetes:dashboard"
DASHBOARD_RULES = [
    rule(READ, "", "nodes", "pods", "services", "endpoints", "events", "namespaces"),
    rule(READ, "coordination.k8s.io", "leases"),
    rule(READ, "apps", "deployments", "replicasets"),
]
DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                  "/version", "/version/", "/discovery", "/etcd/status")
PUBLIC_URLS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
MONITORING_URLS = ("/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*",
                   "/healthz/*")

CLUSTER_ROLES: tuple[rbac.ClusterRole, ...] = (
    cluster_role("cluster-admin", [rule(["*"], "*", "*"), urls(["*"], "*")]),
    cluster_role("admin", [], aggregate_from="admin"),
    cluster_role("edit", [], aggregate_from="edit", labels=_agg("admin")),
    cluster_role("view", [], aggregate_from="view", labels=_agg("edit")),
    cluster_role("system:aggregate-to-admin", ADMIN_RULES, labels=_agg("admin")),
    cluster_role("system:aggregate-to-edit", EDIT_RULES, labels=_agg("edit")),
    cluster_role("system:aggregate-to-view", VIEW_RULES, labels=_agg("view")),
    cluster_role("system:discovery", [urls(["get"], *DISCOVERY_URLS)]),
    cluster_role("system:basic-user", [
        rule(["create"], "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
        rule(["create"], "authentication.k8s.io", "selfsubjectreviews")]),
    cluster_role("system:public-info-viewer", [urls(["get"], *PUBLIC_URLS)]),
    cluster_role("system:monitoring", [urls(["get"], *MONITORING_URLS)]),
    cluster_role("system:auth-delegator", AUTH_DELEGATOR_RULES),
    cluster_role("system:kube-scheduler", SCHEDULER_RULES),
    cluster_role("system:kube-controller-manager", CONTROLLER_MANAGER_RULES),
    cluster_role("system:node-proxier", NODE_PROXIER_RULES),
    cluster_role("system:kube-dns", KUBE_DNS_RULES),
    cluster_role("system:node", NODE_RULES),
    cluster_role(DASHBOARD_USER, DASHBOARD_RULES),
)

# pb-dns runs as kube's kube-system/kube-dns or, as kubeadm names CoreDNS's account (the lab and deploy/ do),
# kube-system/coredns.
KUBE_DNS_SAS = (subject("ServiceAccount", "kube-dns", "kube-system"),
                subject("ServiceAccount", "coredns", "kube-system"))
CLUSTER_ROLE_BINDINGS: tuple[rbac.ClusterRoleBinding, ...] = (
    cluster_binding("cluster-admin", "cluster-admin", subject("Group", "system:masters")),
    cluster_binding("system:discovery", "system:discovery", subject("Group", "system:authenticated")),
    cluster_binding("system:basic-user", "system:basic-user", subject("Group", "system:authenticated")),
    cluster_binding("system:public-info-viewer", "system:public-info-viewer",
                    subject("Group", "system:authenticated"), subject("Group", "system:unauthenticated")),
    cluster_binding("system:monitoring", "system:monitoring", subject("Group", "system:monitoring")),
    cluster_binding("system:kube-scheduler", "system:kube-scheduler", subject("User", "system:kube-scheduler")),
    cluster_binding("system:kube-controller-manager", "system:kube-controller-manager",
                    subject("User", "system:kube-controller-manager")),
    cluster_binding("system:node-proxier", "system:node-proxier", subject("User", "system:kube-proxy")),
    cluster_binding("system:kube-dns", "system:kube-dns", *KUBE_DNS_SAS),
    # kube-proxy and CoreDNS serve /metrics unauthenticated (kube-proxy on 127.0.0.1); pb-proxy and pb-dns
    # authorize their scrapes as the scheduler does when given --client-ca-file (the lab's Prometheus scrapes
    # every node's proxy), so they may ask the reviews. Not a Kubernetes bootstrap binding.
    cluster_binding("pybernetes:metrics-auth-delegator", "system:auth-delegator",
                    subject("User", "system:kube-proxy"), *KUBE_DNS_SAS),
    # No subjects, as in Kubernetes since 1.8: kubelets are authorized by the Node authorizer.
    cluster_binding("system:node", "system:node"),
    cluster_binding(DASHBOARD_USER, DASHBOARD_USER, subject("User", DASHBOARD_USER)),
)


# Namespaced bootstrap Roles and RoleBindings: no component needs one today (each ClusterRole above lists what
# its component calls).
ROLES: tuple[rbac.Role, ...] = ()
ROLE_BINDINGS: tuple[rbac.RoleBinding, ...] = ()


def everything() -> tuple[Message, ...]:
    """Every bootstrap object, roles before the bindings that name them."""
    return (*CLUSTER_ROLES, *ROLES, *CLUSTER_ROLE_BINDINGS, *ROLE_BINDINGS)
