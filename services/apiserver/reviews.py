"""The kinds answered on create and never stored (kinds.REVIEWS), the same on both front ends:

- authentication.k8s.io SelfSubjectReview (`kubectl auth whoami`): the requester's user info;
- authorization.k8s.io SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview (the same for a
  named user, `--as` or webhooks) and SelfSubjectRulesReview (`can-i --list`): asked of the authorizer.

Answers carry the request's spec and the status, as kube-apiserver returns them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.authentication.v1 import authentication_pb2 as authn_api
from pybernetes.api.authorization.v1 import authorization_pb2 as authz_api
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

from .auth import User
from .authz import Attributes, Authorizer, Decision, UnionAuthorizer
from .rbac.authorizer import effective_groups


@runtime_checkable
class RuleResolver(Protocol):
    def rules_for(self, user: User, namespace: str) -> list[rbac.PolicyRule]: ...


def _resolvers(authz: Authorizer) -> Iterator[RuleResolver]:
    """The authorizers in `authz` that can list a user's rules, through unions and wrappers (which keep the
    wrapped authorizer as `inner`, as the audit's does)."""
    inner = getattr(authz, "inner", None)
    if isinstance(authz, UnionAuthorizer):
        for a in authz.authorizers:
            yield from _resolvers(a)
    elif isinstance(authz, RuleResolver):
        yield authz
    elif inner is not None and hasattr(inner, "authorize"):
        yield from _resolvers(inner)


def _attributes(user: User, res: authz_api.ResourceAttributes, has_res: bool,
                nonres: authz_api.NonResourceAttributes) -> Attributes:
    if has_res:
        return Attributes(user=user, verb=res.verb, resource=res.resource, subresource=res.subresource,
                          api_group=res.group, namespace=res.namespace, name=res.name)
    return Attributes(user=user, verb=nonres.verb, path=nonres.path)


def _status(authz: Authorizer, attrs: Attributes, out: authz_api.SubjectAccessReviewStatus) -> None:
    r = authz.authorize(attrs)
    out.allowed = r.decision is Decision.ALLOW
    out.denied = r.decision is Decision.DENY
    out.reason = r.reason


def answer(authz: Authorizer, user: User, plural: str, raw: bytes) -> Message:
    """The review `raw` (protobuf bytes of the kind `plural` names) with its status filled in."""
    info = kinds.for_plural(plural)
    assert info is not None and plural in kinds.REVIEWS
    try:
        obj = info.cls.FromString(raw)
    except Exception as e:  # protobuf's DecodeError
        raise errors.BadRequest(f"cannot decode {info.kind}: {e}") from None
    if isinstance(obj, authn_api.SelfSubjectReview):
        ui = obj.status.user_info
        ui.username, ui.uid = user.name, user.uid
        ui.groups.extend(effective_groups(user))
    elif isinstance(obj, authz_api.SelfSubjectAccessReview):
        spec = obj.spec
        _require_one(spec.HasField("resource_attributes"), spec.HasField("non_resource_attributes"))
        _status(authz, _attributes(user, spec.resource_attributes, spec.HasField("resource_attributes"),
                                   spec.non_resource_attributes), obj.status)
    elif isinstance(obj, authz_api.SubjectAccessReview):
        sar = obj.spec
        _require_one(sar.HasField("resource_attributes"), sar.HasField("non_resource_attributes"))
        if not sar.user and not sar.groups:
            raise errors.Invalid('SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: '
                                 '"": at least one of user or group must be specified',
                                 causes=[errors.FieldError("spec.user", 'Invalid value: "": at least one of user or '
                                                           "group must be specified", "FieldValueInvalid")])
        subject = User(sar.user, sar.uid, tuple(sar.groups))
        _status(authz, _attributes(subject, sar.resource_attributes, sar.HasField("resource_attributes"),
                                   sar.non_resource_attributes), obj.status)
    elif isinstance(obj, authz_api.SelfSubjectRulesReview):
        _rules(authz, user, obj)
    return obj


def _require_one(res: bool, nonres: bool) -> None:
    if res == nonres:
        path = "spec.nonResourceAttributes" if res else "spec.resourceAttributes"
        detail = ("cannot be specified in combination with resourceAttributes" if res
                  else "exactly one of nonResourceAttributes or resourceAttributes must be specified")
        raise errors.Invalid(f"{path}: Invalid value: {detail}",
                             causes=[errors.FieldError(path, detail, "FieldValueInvalid")])


def _count(authz: Authorizer) -> int:
    """How many authorizers `authz` is made of (through unions and wrappers)."""
    inner = getattr(authz, "inner", None)
    if isinstance(authz, UnionAuthorizer):
        return sum(_count(a) for a in authz.authorizers)
    return _count(inner) if inner is not None and hasattr(inner, "authorize") else 1


def _rules(authz: Authorizer, user: User, obj: authz_api.SelfSubjectRulesReview) -> None:
    ns = obj.spec.namespace
    if not ns:
        raise errors.BadRequest("no namespace on request")
    st = obj.status
    resolvers = list(_resolvers(authz))
    for resolver in resolvers:
        for r in resolver.rules_for(user, ns):
            if r.non_resource_urls:
                st.non_resource_rules.add(verbs=r.verbs, non_resource_urls=r.non_resource_urls)
            else:
                st.resource_rules.add(verbs=r.verbs, api_groups=r.api_groups, resources=r.resources,
                                      resource_names=r.resource_names)
    # Authorizers that cannot list rules (AlwaysAllow, Node) make the answer incomplete, as in Kubernetes.
    if len(resolvers) < _count(authz):
        st.incomplete = True
