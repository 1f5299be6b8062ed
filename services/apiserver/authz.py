"""Authorization: what a request asks to do (`Attributes`, kube-apiserver's authorizer.Attributes), the
`Authorizer` protocol each mode implements, the union of modes (`--authorization-mode`, in order: the first
Allow or Deny decides; all NoOpinion is a denial), and the 403 a denial becomes.

Both front ends build Attributes the same way (`resource_attributes`, `request_attributes`) and call `check`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.selectors import parse_field_selector

from .auth import User


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class Attributes:
    user: User
    verb: str  # get list watch create update patch delete deletecollection (or impersonate, bind, escalate...)
    resource: str = ""  # plural; empty for a non-resource request
    subresource: str = ""
    api_group: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # the URL path of a non-resource request (/healthz, /api, /metrics...)
    field_selector: str = ""  # of a list/watch (the Node mode allows pods with spec.nodeName=<node>)

    @property
    def is_resource_request(self) -> bool:
        return bool(self.resource)

    def describe(self) -> str:
        """Kubernetes' wording of what was denied (`cannot get resource "pods" in API group "" in the namespace
        "default"`)."""
        if not self.is_resource_request:
            return f'cannot {self.verb} path "{self.path}"'
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        return f'cannot {self.verb} resource "{res}" in API group "{self.api_group}"{where}'


@dataclass(frozen=True)
class Result:
    decision: Decision
    reason: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Result: ...


class AlwaysAllowAuthorizer:
    """kube-apiserver's AlwaysAllow mode: every authenticated request is allowed."""

    def authorize(self, attrs: Attributes) -> Result:
        return Result(Decision.ALLOW)


class UnionAuthorizer:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = list(authorizers)

    def authorize(self, attrs: Attributes) -> Result:
        reasons = []
        for a in self.authorizers:
            r = a.authorize(attrs)
            if r.decision is not Decision.NO_OPINION:
                return r
            if r.reason:
                reasons.append(r.reason)
        return Result(Decision.NO_OPINION, "; ".join(reasons))


def check(authz: Authorizer, attrs: Attributes) -> None:
    """Raise 403 Forbidden unless `authz` allows `attrs`, with Kubernetes' message."""
    r = authz.authorize(attrs)
    if r.decision is Decision.ALLOW:
        return
    target = attrs.resource if not attrs.name else f'{attrs.resource} "{attrs.name}"'
    prefix = f"{target} is forbidden: " if attrs.is_resource_request else "forbidden: "
    msg = f'{prefix}User "{attrs.user.name}" {attrs.describe()}'
    raise errors.Forbidden(f"{msg}: {r.reason}" if r.reason else msg)


def selector_name(verb: str, name: str, field_selector: str) -> str:
    """A list or watch with `metadata.name=X` is about X, as RequestInfo sets its Name (so a kubelet may
    watch the one Secret it may read)."""
    if name or verb not in ("list", "watch") or not field_selector:
        return name
    try:
        return parse_field_selector(field_selector).value_of("metadata.name") or ""
    except errors.BadRequest:
        return ""  # the list itself refuses the selector


def resource_attributes(user: User, verb: str, resource: str, namespace: str = "", name: str = "", *,
                        field_selector: str = "") -> Attributes:
    """Attributes of a request on `resource`, which may carry a subresource ("pods/log"); the API group comes
    from the kind table. Names that are no kind (the gRPC API's "discovery", "etcd/status") become the
    non-resource path /<resource>, as kube-apiserver treats URLs outside /api and /apis."""
    plural, _, sub = resource.partition("/")
    info = kinds.for_plural(plural)
    if info is None:
        return Attributes(user=user, verb=verb, path=f"/{resource}")
    return Attributes(user=user, verb=verb, resource=plural, subresource=sub, api_group=info.group,
                      namespace=namespace, name=selector_name(verb, name, field_selector),
                      field_selector=field_selector)


# Subresources whose GET opens a stream that acts on the pod: authorized as `create`, as Kubernetes does
# since 1.31 (a WebSocket upgrade is a GET, but exec/attach/portforward are not reads).
CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
HTTP_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(user: User, method: str, path: str, *, resource: str = "", api_group: str = "",
                       namespace: str = "", name: str = "", subresource: str = "",
                       watch: bool = False, field_selector: str = "") -> Attributes:
    """Attributes of a REST request, as kube-apiserver's RequestInfo derives the verb: GET of a collection
    is list (watch with ?watch), DELETE of a collection deletecollection, exec/attach/portforward create."""
    verb = HTTP_VERBS.get(method.upper(), method.lower())
    if not resource:
        return Attributes(user=user, verb=verb, path=path)
    if subresource in CONNECT_SUBRESOURCES:
        verb = "create"
    elif verb == "get" and not name:
        verb = "watch" if watch else "list"
    elif verb == "get" and watch:
        verb = "watch"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    return Attributes(user=user, verb=verb, resource=resource, subresource=subresource, api_group=api_group,
                      namespace=namespace, name=selector_name(verb, name, field_selector),
                      field_selector=field_selector)
