"""The verb and target both front ends derive for authorization, as kube-apiserver's RequestInfo does."""

from __future__ import annotations

import pytest

from pybernetes import errors
from services.apiserver.auth import User
from services.apiserver.authz import (
    Attributes,
    Decision,
    Result,
    UnionAuthorizer,
    check,
    request_attributes,
    resource_attributes,
)

U = User("alice", groups=("dev",))


@pytest.mark.parametrize(("method", "name", "sub", "watch", "verb"), [
    ("GET", "", "", False, "list"),
    ("GET", "", "", True, "watch"),
    ("GET", "web", "", False, "get"),
    ("GET", "web", "", True, "watch"),
    ("GET", "web", "exec", False, "create"),
    ("POST", "", "", False, "create"),
    ("PUT", "web", "status", False, "update"),
    ("PATCH", "web", "", False, "patch"),
    ("DELETE", "web", "", False, "delete"),
    ("DELETE", "", "", False, "deletecollection"),
])
def test_rest_verbs(method: str, name: str, sub: str, watch: bool, verb: str) -> None:
    a = request_attributes(U, method, "/api/v1/namespaces/default/pods", resource="pods", namespace="default",
                           name=name, subresource=sub, watch=watch)
    assert (a.verb, a.resource, a.subresource) == (verb, "pods", sub)


def test_grpc_names_split_subresource_and_group() -> None:
    a = resource_attributes(U, "get", "pods/log", "default", "web")
    assert (a.resource, a.subresource, a.api_group, a.name) == ("pods", "log", "", "web")
    assert resource_attributes(U, "list", "deployments").api_group == "apps"
    other = resource_attributes(U, "get", "etcd/status")
    assert not other.is_resource_request and other.path == "/etcd/status"


class _Fixed:
    def __init__(self, d: Decision) -> None:
        self.d = d

    def authorize(self, attrs: Attributes) -> Result:
        return Result(self.d, f"said {self.d.value}")


def test_union_first_opinion_wins_and_denial_reads_as_kubernetes() -> None:
    a = resource_attributes(U, "get", "pods", "default", "web")
    union = UnionAuthorizer([_Fixed(Decision.NO_OPINION), _Fixed(Decision.ALLOW)])
    assert union.authorize(a).decision is Decision.ALLOW
    with pytest.raises(errors.Forbidden) as e:
        check(UnionAuthorizer([_Fixed(Decision.NO_OPINION)]), a)
    assert str(e.value).startswith('pods "web" is forbidden: User "alice" cannot get resource "pods" in API group ""'
                                   ' in the namespace "default"')
