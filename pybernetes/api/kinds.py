"""Which kinds exist: kind <-> message class <-> resource (plural), scope, short names, verbs.

The apiserver routes requests with it, the client finds the resource for a message class, pbctl resolves
`po`, `deploy`, `deployments.apps`... The one table below is the only place a kind is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.authentication.v1 import authentication_pb2 as authentication
from pybernetes.api.authorization.v1 import authorization_pb2 as authorization
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    cls: type[Message]
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Spec-bearing kinds bump metadata.generation on spec changes; for the rest every change counts.
    has_status: bool = field(default=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def descriptor(self) -> Descriptor:
        """The kind's message descriptor, typed: protobuf's stub declares `Message.DESCRIPTOR` as a union
        with upb's descriptor class, whose instances are `Descriptor`s at runtime."""
        d = self.cls.DESCRIPTOR
        assert isinstance(d, Descriptor)
        return d

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(group: str, kind: str, plural: str, cls: type[Message], namespaced: bool = True, *,
       short: tuple[str, ...] = (), status: bool = False, categories: tuple[str, ...] = (),
       extra: tuple[str, ...] = (), verbs: tuple[str, ...] = ALL_VERBS) -> ResourceInfo:
    subs = frozenset((("status",) if status else ()) + extra)
    return ResourceInfo(group=group, version="v1", kind=kind, plural=plural, namespaced=namespaced, cls=cls,
                        short_names=short, subresources=subs, categories=categories, verbs=verbs,
                        has_status=status)


RESOURCES: tuple[ResourceInfo, ...] = (
    _r("", "Namespace", "namespaces", core.Namespace, False, short=("ns",), status=True),
    _r("", "Node", "nodes", core.Node, False, short=("no",), status=True),
    _r("", "Pod", "pods", core.Pod, short=("po",), status=True, categories=("all",),
       extra=("binding", "eviction", "log", "exec", "attach", "portforward")),
    _r("", "Service", "services", core.Service, short=("svc",), status=True, categories=("all",)),
    _r("", "Endpoints", "endpoints", core.Endpoints, short=("ep",)),
    _r("", "ServiceAccount", "serviceaccounts", core.ServiceAccount, short=("sa",), extra=("token",)),
    _r("", "ConfigMap", "configmaps", core.ConfigMap, short=("cm",)),
    _r("", "Secret", "secrets", core.Secret),
    _r("", "LimitRange", "limitranges", core.LimitRange, short=("limits",)),
    _r("", "ResourceQuota", "resourcequotas", core.ResourceQuota, short=("quota",), status=True),
    _r("", "Event", "events", core.Event, short=("ev",)),
    _r("", "ReplicationController", "replicationcontrollers", core.ReplicationController, short=("rc",),
       status=True, categories=("all",), extra=("scale",)),
    _r("", "Binding", "bindings", core.Binding, verbs=("create",)),
    _r("apps", "Deployment", "deployments", apps.Deployment, short=("deploy",), status=True,
       categories=("all",), extra=("scale",)),
    _r("apps", "ReplicaSet", "replicasets", apps.ReplicaSet, short=("rs",), status=True,
       categories=("all",), extra=("scale",)),
    _r("apps", "DaemonSet", "daemonsets", apps.DaemonSet, short=("ds",), status=True, categories=("all",)),
    _r("apps", "StatefulSet", "statefulsets", apps.StatefulSet, short=("sts",), status=True,
       categories=("all",), extra=("scale",)),
    # CronJobs before Jobs: `get all` lists them in kubectl's order.
    _r("batch", "CronJob", "cronjobs", batch.CronJob, short=("cj",), status=True, categories=("all",)),
    _r("batch", "Job", "jobs", batch.Job, status=True, categories=("all",)),
    _r("coordination.k8s.io", "Lease", "leases", coordination.Lease),
    _r("discovery.k8s.io", "EndpointSlice", "endpointslices", discovery.EndpointSlice),
    _r(RBAC_GROUP, "ClusterRole", "clusterroles", rbac.ClusterRole, False),
    _r(RBAC_GROUP, "ClusterRoleBinding", "clusterrolebindings", rbac.ClusterRoleBinding, False),
    _r(RBAC_GROUP, "Role", "roles", rbac.Role),
    _r(RBAC_GROUP, "RoleBinding", "rolebindings", rbac.RoleBinding),
    # Questions answered on create and never stored (REVIEWS).
    _r("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", authentication.SelfSubjectReview,
       False, verbs=("create",)),
    _r("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
       authorization.SelfSubjectAccessReview, False, verbs=("create",)),
    _r("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
       authorization.SelfSubjectRulesReview, False, verbs=("create",)),
    _r("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews", authorization.SubjectAccessReview,
       False, verbs=("create",)),
)
# The kinds the apiserver answers without storing them (they ask the authenticator or the authorizer).
REVIEWS = frozenset({"selfsubjectreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews",
                     "subjectaccessreviews"})

_BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_CLS: dict[type[Message], ResourceInfo] = {r.cls: r for r in RESOURCES}
_BY_PLURAL: dict[str, ResourceInfo] = {r.plural: r for r in RESOURCES}
_BY_FULL_NAME: dict[str, ResourceInfo] = {r.cls.DESCRIPTOR.full_name: r for r in RESOURCES}


def for_kind(api_version: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((api_version, kind))


def kinds_named(kind: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.kind == kind]


def for_class(cls: type[Message]) -> ResourceInfo:
    try:
        return _BY_CLS[cls]
    except KeyError:
        raise KeyError(f"{cls.__name__} is not a registered kind") from None


def for_message(msg: Message) -> ResourceInfo:
    return for_class(type(msg))


def for_plural(plural: str) -> ResourceInfo | None:
    return _BY_PLURAL.get(plural)


def for_descriptor_name(full_name: str) -> ResourceInfo | None:
    return _BY_FULL_NAME.get(full_name)


def lookup(name: str) -> ResourceInfo | None:
    """Resolve what a user types: plural, singular, short name or kind, optionally `.group` qualified."""
    name = name.strip()
    base, _, group = name.partition(".")
    lowered = base.lower()
    for r in RESOURCES:
        if group and r.group != group and not r.group.startswith(group):
            continue
        if lowered in (r.plural, r.singular, r.kind.lower()) or lowered in r.short_names:
            return r
    return None


def for_class_or_none(cls: type[Message]) -> ResourceInfo | None:
    return _BY_CLS.get(cls)
