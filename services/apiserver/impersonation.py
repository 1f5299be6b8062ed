"""Impersonation (kube-apiserver's WithImpersonation filter): `Impersonate-User` and `Impersonate-Group`
(HTTP headers, or the same keys lower-cased as gRPC metadata) make the request act as that user, once the real
user is authorized to `impersonate` each: `users` by name, `groups` by name, or `serviceaccounts` in their
namespace for `system:serviceaccount:NS:NAME`. pbctl's and kubectl's `--as` / `--as-group` send them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pybernetes import errors

from .auth import User
from .authz import Attributes, Authorizer, check

log = logging.getLogger("pybernetes.apiserver")

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
SA_PREFIX = "system:serviceaccount:"


def impersonate(authz: Authorizer, user: User, as_user: str | None, as_groups: Sequence[str]) -> User:
    """The user the request acts as: `user` itself without impersonation headers, else the impersonated
    user after each impersonation is authorized (403 otherwise)."""
    if as_user is None and not as_groups:
        return user
    if not as_user:
        raise errors.BadRequest(f"requested groups {list(as_groups)} without impersonating a user")
    groups = list(as_groups)
    if as_user.startswith(SA_PREFIX) and as_user.count(":") == 3:
        ns, name = as_user[len(SA_PREFIX):].split(":")
        check(authz, Attributes(user=user, verb="impersonate", resource="serviceaccounts", namespace=ns, name=name))
        if not groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    else:
        check(authz, Attributes(user=user, verb="impersonate", resource="users", name=as_user))
    for g in as_groups:
        check(authz, Attributes(user=user, verb="impersonate", resource="groups", name=g))
    log.info("impersonating user=%s as=%s groups=%s", user.name, as_user, ",".join(groups))
    return User(as_user, "", tuple(groups))
