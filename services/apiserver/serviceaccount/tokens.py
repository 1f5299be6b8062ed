"""The ServiceAccount token issuer and authenticator (kube-apiserver's serviceaccount.JWTTokenGenerator and
JWTTokenAuthenticator with its validator), in one place.

`TokenIssuer.issue` signs a token for a ServiceAccount, optionally bound to a pod. `ServiceAccountAuthenticator`
claims bearer tokens whose `iss` is ours (others are not its kind: None, the next authenticator decides),
then refuses (Unauthorized) a bad signature, expired token, foreign audience, or a token whose ServiceAccount
or bound pod is gone, recreated (another uid) or deleted more than a minute ago (as Kubernetes, a terminating
pod keeps its identity through its grace period). Objects are looked up in the apiserver's watch cache, then
etcd when the cache has not seen them yet.

Keys: --service-account-signing-key-file signs, --service-account-key-file (each a PEM file of public or
private keys) verifies; without them the apiserver uses <pki>/sa.key and sa.pub (pybernetes.tls).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message

from pybernetes import errors, pkiutil
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.objects import meta_of

from ..auth import Credentials, User
from ..options import DEFAULT_SERVICE_ACCOUNT_ISSUER
from ..storage.objects import object_key
from ..storage.store import Store
from . import claims as cl
from . import jwt

log = logging.getLogger("pybernetes.apiserver.serviceaccount")

DEFAULT_ISSUER = DEFAULT_SERVICE_ACCOUNT_ISSUER  # --service-account-issuer's default
AUTHENTICATED = "system:authenticated"
DELETED_LEEWAY = 60  # seconds an object's deletionTimestamp may lie in the past before its tokens stop working

# (resource, namespace, name) -> the object, or None when it does not exist.
Lookup = Callable[[ResourceInfo, str, str], Awaitable[Message | None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Keys:
    signing: jwt.PrivateKey
    verifying: tuple[jwt.PublicKey, ...]


def load_keys(pki_dir: Path, signing_key_file: Path | None = None,
              key_files: Sequence[Path] = ()) -> Keys:
    """The signing key and the verification keys, from the flags or <pki_dir>/sa.{key,pub} (created if absent)."""
    if signing_key_file is None:
        signing_key_file, pub = pkiutil.ensure_service_account_key(pki_dir)
        key_files = tuple(key_files) or (pub,)
    try:
        signing = jwt.load_private_key(signing_key_file)
        verifying = [k for f in (key_files or (signing_key_file,)) for k in jwt.load_public_keys(f)]
    except (OSError, ValueError) as e:
        raise errors.ConfigError(f"service account keys: {e}") from None
    return Keys(signing, tuple(verifying))


def store_lookup(store: Store) -> Lookup:
    """Objects from the watch cache, or from etcd when the cache has not caught up with them yet."""
    async def lookup(info: ResourceInfo, namespace: str, name: str) -> Message | None:
        cache = store.cache(info)
        c = cache.get(object_key(info, namespace, name)) if cache.ready.is_set() else None
        if c is not None:
            return c.obj
        try:
            return (await store.get(info, namespace, name)).obj
        except errors.NotFound:
            return None
    return lookup


class TokenIssuer:
    def __init__(self, key: jwt.PrivateKey, issuer: str = DEFAULT_ISSUER, *, clock: Clock = time.time) -> None:
        self.key = key
        self.issuer = issuer
        self.clock = clock

    def issue(self, namespace: str, service_account: cl.Ref, audiences: Sequence[str], expiration_seconds: int,
              pod: cl.Ref | None = None) -> tuple[str, int]:
        """(token, expiry as Unix seconds)."""
        c = cl.make(issuer=self.issuer, namespace=namespace, service_account=service_account, audiences=audiences,
                    expiration_seconds=expiration_seconds, now=int(self.clock()), pod=pod)
        return jwt.sign(c, self.key), int(c["exp"])


def _gone(obj: Message | None, uid: str, now: float) -> str:
    """Why `obj` no longer backs a token ('' when it does)."""
    if obj is None:
        return "not found"
    md = meta_of(obj)
    if uid and md.uid != uid:
        return f"uid {md.uid} does not match the token's {uid}"
    if md.HasField("deletion_timestamp") and md.deletion_timestamp.seconds < now - DELETED_LEEWAY:
        return "has been deleted"
    return ""


class ServiceAccountAuthenticator:
    def __init__(self, keys: Sequence[jwt.PublicKey], lookup: Lookup, *, issuers: Sequence[str] = (DEFAULT_ISSUER,),
                 audiences: Sequence[str] = (), clock: Clock = time.time) -> None:
        self.keys = tuple(keys)
        self.lookup = lookup
        self.issuers = tuple(issuers)
        self.audiences = tuple(audiences) or self.issuers[:1]
        self.clock = clock

    async def authenticate(self, creds: Credentials) -> User | None:
        token = creds.bearer
        if not token or not jwt.looks_like_jwt(token):
            return None
        try:
            if jwt.unverified_claims(token).get("iss") not in self.issuers:
                return None  # another issuer's token (or not a JWT at all): not ours to judge
        except jwt.TokenError:
            return None
        try:
            tc = cl.check(jwt.verify(token, self.keys), audiences=self.audiences, now=int(self.clock()))
        except (jwt.TokenError, cl.InvalidClaims) as e:
            log.info("service account token refused reason=%s", e)
            raise errors.Unauthorized(f"Unauthorized: invalid bearer token, {e}") from None
        await self._still_bound(tc)
        return User(cl.username(tc.namespace, tc.service_account.name), tc.service_account.uid,
                    (*cl.groups(tc.namespace), AUTHENTICATED))

    async def _still_bound(self, tc: cl.TokenClaims) -> None:
        now = self.clock()
        ns, sa = tc.namespace, tc.service_account
        why = _gone(await self.lookup(kinds.for_class(core.ServiceAccount), ns, sa.name), sa.uid, now)
        if why:
            log.info("service account token refused serviceaccount=%s/%s reason=%s", ns, sa.name, why)
            raise errors.Unauthorized(f'Unauthorized: invalid bearer token, service account {ns}/{sa.name} {why}')
        if tc.pod is not None:
            pod = await self.lookup(kinds.for_class(core.Pod), ns, tc.pod.name)
            why = _gone(pod, tc.pod.uid, now)
            if why:
                log.info("service account token refused pod=%s/%s reason=%s", ns, tc.pod.name, why)
                raise errors.Unauthorized(f"Unauthorized: invalid bearer token, pod {ns}/{tc.pod.name} {why}")
