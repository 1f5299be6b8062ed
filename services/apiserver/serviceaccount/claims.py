"""What a ServiceAccount token says and what it must say to be accepted, as Kubernetes'
pkg/serviceaccount/claims.go: the registered claims (iss, sub system:serviceaccount:NS:NAME, aud, exp, iat,
nbf, jti) and the private `kubernetes.io` claim naming the namespace, the ServiceAccount and the pod the
token is bound to, each with its uid. `check` validates times (with go-jose's one minute of leeway),
audiences and shape; whether the named objects still exist is the authenticator's question.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

USER_PREFIX = "system:serviceaccount:"
GROUP_PREFIX = "system:serviceaccounts"
PRIVATE = "kubernetes.io"
LEEWAY = 60  # seconds of clock skew allowed on exp, nbf and iat, as go-jose's DefaultLeeway


class InvalidClaims(Exception):
    """A token of ours whose claims refuse it (expired, wrong audience, malformed)."""


def username(namespace: str, name: str) -> str:
    return f"{USER_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    """The groups a ServiceAccount is in (MakeGroupNames), before system:authenticated."""
    return (GROUP_PREFIX, f"{GROUP_PREFIX}:{namespace}")


@dataclass(frozen=True)
class Ref:
    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a verified, unexpired token for one of our audiences."""
    namespace: str
    service_account: Ref
    pod: Ref | None
    audiences: tuple[str, ...]
    expiry: int
    issued_at: int
    jti: str


def make(*, issuer: str, namespace: str, service_account: Ref, audiences: Sequence[str], expiration_seconds: int,
         now: int, pod: Ref | None = None) -> dict[str, Any]:
    """The claims of a new token (Claims in claims.go)."""
    private: dict[str, Any] = {"namespace": namespace,
                               "serviceaccount": {"name": service_account.name, "uid": service_account.uid}}
    if pod is not None:
        private["pod"] = {"name": pod.name, "uid": pod.uid}
    return {"aud": list(audiences), "exp": now + expiration_seconds, "iat": now, "iss": issuer,
            "jti": str(uuid.uuid4()), PRIVATE: private, "nbf": now, "sub": username(namespace, service_account.name)}


def _int(claims: dict[str, Any], name: str) -> int:
    v = claims.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidClaims(f"the token has no numeric {name!r} claim")
    return int(v)


def _ref(private: dict[str, Any], name: str) -> Ref | None:
    v = private.get(name)
    if v is None:
        return None
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not isinstance(v.get("uid", ""), str):
        raise InvalidClaims(f"the {PRIVATE} claim's {name} is malformed")
    return Ref(v["name"], v.get("uid", ""))


def check(claims: dict[str, Any], *, audiences: Sequence[str], now: int) -> TokenClaims:
    """The token's claims if it is valid at `now` for one of `audiences` (the issuer was checked by the caller)."""
    exp, nbf, iat = _int(claims, "exp"), int(claims.get("nbf", 0) or 0), _int(claims, "iat")
    if now > exp + LEEWAY:
        raise InvalidClaims("service account token has expired")
    if nbf and now + LEEWAY < nbf:
        raise InvalidClaims("service account token is not valid yet")
    if now + LEEWAY < iat:
        raise InvalidClaims("service account token was issued in the future")
    aud = claims.get("aud")
    token_aud = (aud,) if isinstance(aud, str) else tuple(a for a in aud if isinstance(a, str)) \
        if isinstance(aud, list) else ()
    if not set(token_aud) & set(audiences):
        raise InvalidClaims(f"token audiences {list(token_aud)} is invalid for the target audiences "
                            f"{list(audiences)}")
    private = claims.get(PRIVATE)
    if not isinstance(private, dict) or not isinstance(private.get("namespace"), str):
        raise InvalidClaims(f"the token has no {PRIVATE} claim naming its namespace")
    sa = _ref(private, "serviceaccount")
    if sa is None:
        raise InvalidClaims(f"the token's {PRIVATE} claim names no serviceaccount")
    ns = private["namespace"]
    if claims.get("sub") != username(ns, sa.name):
        raise InvalidClaims("the token's sub does not match its serviceaccount")
    return TokenClaims(namespace=ns, service_account=sa, pod=_ref(private, "pod"), audiences=token_aud,
                       expiry=exp, issued_at=iat, jti=str(claims.get("jti", "")))
