"""ServiceAccount tokens (services.apiserver.serviceaccount): the JWT's signature and claims, expiry, audience,
and the authenticator refusing a token once its ServiceAccount or bound pod is gone or was recreated."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from google.protobuf.message import Message

from pybernetes import errors, tls
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from services.apiserver.auth import Credentials
from services.apiserver.serviceaccount import claims as cl
from services.apiserver.serviceaccount import jwt, tokens
from services.apiserver.serviceaccount.tokenrequest import TokenRequests

NOW = 1_800_000_000


class Objects:
    """A fake of the apiserver's lookups: (plural, namespace, name) -> object."""

    def __init__(self) -> None:
        self.objs: dict[tuple[str, str, str], Message] = {}

    def add(self, obj: core.ServiceAccount | core.Pod) -> None:
        plural = "pods" if isinstance(obj, core.Pod) else "serviceaccounts"
        self.objs[(plural, obj.metadata.namespace, obj.metadata.name)] = obj

    async def lookup(self, info: ResourceInfo, namespace: str, name: str) -> Message | None:
        return self.objs.get((info.plural, namespace, name))


def sa(name: str = "robot", uid: str = "sa-uid-1") -> core.ServiceAccount:
    s = core.ServiceAccount()
    s.metadata.name, s.metadata.namespace, s.metadata.uid = name, "team", uid
    return s


def pod(name: str = "web", uid: str = "pod-uid-1", account: str = "robot") -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "team", uid
    p.spec.service_account_name = account
    return p


@pytest.fixture
def keys(tmp_path: Path) -> tokens.Keys:
    return tokens.load_keys(tmp_path)


class Clock:
    def __init__(self) -> None:
        self.t = float(NOW)

    def __call__(self) -> float:
        return self.t


def setup(keys: tokens.Keys) -> tuple[Objects, Clock, tokens.TokenIssuer, tokens.ServiceAccountAuthenticator]:
    objs, clock = Objects(), Clock()
    objs.add(sa())
    objs.add(pod())
    issuer = tokens.TokenIssuer(keys.signing, clock=clock)
    authn_ = tokens.ServiceAccountAuthenticator(keys.verifying, objs.lookup, clock=clock)
    return objs, clock, issuer, authn_


def bearer(token: str) -> Credentials:
    return Credentials(authorization=f"Bearer {token}")


def payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(data, dict)
    return data


def test_key_pair_is_made_once_with_a_private_key_of_mode_0600(tmp_path: Path) -> None:
    first = tokens.load_keys(tmp_path)
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600
    again = tokens.load_keys(tmp_path)
    assert jwt.key_id(first.signing.public_key()) == jwt.key_id(again.verifying[0])


def test_token_carries_kubernetes_claims(keys: tokens.Keys) -> None:
    _, _, issuer, _ = setup(keys)
    token, exp = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), ["api"], 3600, cl.Ref("web", "pod-uid-1"))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": jwt.key_id(keys.signing.public_key())}
    c = payload(token)
    assert c["iss"] == tokens.DEFAULT_ISSUER and c["sub"] == "system:serviceaccount:team:robot"
    assert c["aud"] == ["api"] and c["iat"] == c["nbf"] == NOW and c["exp"] == exp == NOW + 3600
    assert c["kubernetes.io"] == {"namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid-1"},
                                  "pod": {"name": "web", "uid": "pod-uid-1"}}


def test_valid_token_authenticates_as_the_service_account(keys: tokens.Keys) -> None:
    _, _, issuer, auth = setup(keys)
    token, _ = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600,
                            cl.Ref("web", "pod-uid-1"))
    user = asyncio.run(auth.authenticate(bearer(token)))
    assert user is not None
    assert user.name == "system:serviceaccount:team:robot" and user.uid == "sa-uid-1"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")


def test_tokens_that_are_not_ours_are_left_to_other_authenticators(keys: tokens.Keys, tmp_path: Path) -> None:
    _, clock, _, auth = setup(keys)
    assert asyncio.run(auth.authenticate(bearer("0123abcd"))) is None  # a static token
    assert asyncio.run(auth.authenticate(Credentials())) is None
    foreign = tokens.TokenIssuer(keys.signing, "https://elsewhere.example", clock=clock)
    token, _ = foreign.issue("team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600)
    assert asyncio.run(auth.authenticate(bearer(token))) is None


def refused(auth: tokens.ServiceAccountAuthenticator, token: str) -> str:
    with pytest.raises(errors.Unauthorized) as e:
        asyncio.run(auth.authenticate(bearer(token)))
    return e.value.message


def test_expired_token_is_refused_after_the_leeway(keys: tokens.Keys) -> None:
    _, clock, issuer, auth = setup(keys)
    token, exp = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 600)
    clock.t = exp + cl.LEEWAY  # still inside go-jose's leeway
    assert asyncio.run(auth.authenticate(bearer(token))) is not None
    clock.t = exp + cl.LEEWAY + 1
    assert "expired" in refused(auth, token)


def test_foreign_audience_is_refused(keys: tokens.Keys) -> None:
    _, _, issuer, auth = setup(keys)
    token, _ = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), ["vault"], 3600)
    assert "audiences" in refused(auth, token)


def test_signature_by_another_key_or_tampered_payload_is_refused(keys: tokens.Keys, tmp_path: Path) -> None:
    _, clock, _, auth = setup(keys)
    other = tokens.load_keys(tmp_path / "other")
    token, _ = tokens.TokenIssuer(other.signing, clock=clock).issue(
        "team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600)
    assert "signature" in refused(auth, token)
    good, _ = tokens.TokenIssuer(keys.signing, clock=clock).issue(
        "team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600)
    c = payload(good)
    c["sub"] = "system:serviceaccount:kube-system:admin"
    h, _, s = good.split(".")
    forged = f"{h}.{jwt.b64(json.dumps(c).encode())}.{s}"
    assert "signature" in refused(auth, forged)


def test_rsa_keys_sign_rs256(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.key"
    tls.write_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)
    k = tokens.load_keys(tmp_path, path)
    token, _ = tokens.TokenIssuer(k.signing).issue("team", cl.Ref("robot", ""), ["a"], 600)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "RS256"
    assert jwt.verify(token, k.verifying)["sub"] == "system:serviceaccount:team:robot"


def test_deleted_or_recreated_pod_refuses_its_tokens(keys: tokens.Keys) -> None:
    objs, clock, issuer, auth = setup(keys)
    token, _ = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600,
                            cl.Ref("web", "pod-uid-1"))
    objs.add(pod(uid="pod-uid-2"))  # same name, another pod
    assert "pod team/web uid pod-uid-2 does not match" in refused(auth, token)
    del objs.objs[("pods", "team", "web")]
    assert "pod team/web not found" in refused(auth, token)
    terminating = pod()
    terminating.metadata.deletion_timestamp.seconds = NOW + 30  # graceful deletion: still running
    objs.add(terminating)
    assert asyncio.run(auth.authenticate(bearer(token))) is not None
    clock.t = NOW + 30 + tokens.DELETED_LEEWAY + 1
    assert "has been deleted" in refused(auth, token)


def test_deleted_or_recreated_service_account_refuses_its_tokens(keys: tokens.Keys) -> None:
    objs, _, issuer, auth = setup(keys)
    token, _ = issuer.issue("team", cl.Ref("robot", "sa-uid-1"), [tokens.DEFAULT_ISSUER], 3600)
    objs.add(sa(uid="sa-uid-2"))
    assert "service account team/robot uid" in refused(auth, token)
    del objs.objs[("serviceaccounts", "team", "robot")]
    assert "service account team/robot not found" in refused(auth, token)


# -- TokenRequest -----------------------------------------------------------------------------------

def requests(keys: tokens.Keys) -> tuple[TokenRequests, tokens.ServiceAccountAuthenticator]:
    objs, _, issuer, auth = setup(keys)
    objs.add(pod("other", "pod-uid-9", account="default"))
    return TokenRequests(issuer, objs.lookup, (tokens.DEFAULT_ISSUER,)), auth


def test_token_request_defaults_and_binds_to_the_pod(keys: tokens.Keys) -> None:
    trs, auth = requests(keys)
    req = authn.TokenRequest()
    req.spec.bound_object_ref.kind, req.spec.bound_object_ref.name = "Pod", "web"
    out = asyncio.run(trs.create("team", "robot", req))
    assert out.spec.expiration_seconds == 3600 and list(out.spec.audiences) == [tokens.DEFAULT_ISSUER]
    assert out.status.expiration_timestamp.seconds == NOW + 3600
    c = payload(out.status.token)
    assert c["kubernetes.io"]["pod"] == {"name": "web", "uid": "pod-uid-1"}  # type: ignore[index]
    assert asyncio.run(auth.authenticate(bearer(out.status.token))) is not None


@pytest.mark.parametrize("edit, error, text", [
    (lambda r: setattr(r.spec, "expiration_seconds", 599), errors.Invalid, "less than 10 minutes"),
    (lambda r: setattr(r.spec, "expiration_seconds", (1 << 32) + 1), errors.Invalid, "larger than 2^32"),
    (lambda r: (setattr(r.spec.bound_object_ref, "kind", "Pod"), setattr(r.spec.bound_object_ref, "name", "gone")),
     errors.NotFound, 'pods "gone" not found'),
    (lambda r: (setattr(r.spec.bound_object_ref, "kind", "Pod"), setattr(r.spec.bound_object_ref, "name", "web"),
                setattr(r.spec.bound_object_ref, "uid", "stale")), errors.Conflict, "does not match the UID"),
    (lambda r: (setattr(r.spec.bound_object_ref, "kind", "Pod"), setattr(r.spec.bound_object_ref, "name", "other")),
     errors.BadRequest, "different serviceaccount"),
    (lambda r: (setattr(r.spec.bound_object_ref, "kind", "Node"), setattr(r.spec.bound_object_ref, "name", "n")),
     errors.BadRequest, "cannot bind token to object"),
])
def test_token_request_refusals(keys: tokens.Keys, edit: object, error: type[errors.ApiError], text: str) -> None:
    trs, _ = requests(keys)
    req = authn.TokenRequest()
    edit(req)  # type: ignore[operator]
    with pytest.raises(error) as e:
        asyncio.run(trs.create("team", "robot", req))
    assert text in e.value.message


def test_token_request_for_a_missing_service_account_is_not_found(keys: tokens.Keys) -> None:
    trs, _ = requests(keys)
    with pytest.raises(errors.NotFound, match='serviceaccounts "nobody" not found'):
        asyncio.run(trs.create("team", "nobody", authn.TokenRequest()))


def test_bearer_scheme_is_case_insensitive() -> None:
    # The official Python client's in-cluster config sends `authorization: bearer <token>`.
    assert Credentials(authorization="bearer abc").bearer == "abc"
    assert Credentials(authorization="Bearer abc").bearer == "abc"
    assert Credentials(authorization="Basic abc").bearer is None
    assert Credentials(authorization="Bearer ").bearer is None
