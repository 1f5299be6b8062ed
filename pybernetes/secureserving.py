"""Who may read a component's /metrics: secure serving with delegated authentication and authorization, as
kube-scheduler, kube-controller-manager and the kubelet do it (k8s.io/apiserver's DelegatingAuthenticator and
DelegatingAuthorizer), composed by every component's HealthServer (pybernetes.metrics).

- TLS with the component's serving certificate (--tls-cert-file/--tls-private-key-file, from the cluster CA
  where the lab or deploy/ have a PKI), else a self-signed one made in memory at start, as kube-scheduler
  makes one when given no --cert-dir.
- Authentication by client certificate verified against --client-ca-file (CN the user, each O a group). A
  certificate from another CA fails the handshake; no certificate at all is 401 "Unauthorized" for every path
  but the always-allowed ones. Bearer tokens are not accepted: the apiserver serves no TokenReview.
- Authorization with a SubjectAccessReview (nonResourceAttributes path and verb) through the component's own
  API client, answers cached for ALLOW_TTL / DENY_TTL seconds (kube's delegated defaults: 10 s each; the
  kubelet's own are 5 min and 30 s);
  refused is 403 `forbidden: User "X" cannot get path "/metrics"`, as k8s.io/apiserver words it. The
  apiserver authorizes in process instead (`Authorize` is any coroutine). ALWAYS_ALLOW_PATHS
  (/healthz, /readyz, /livez: kube's --authorization-always-allow-paths) need neither.

Without a client CA (standalone dev runs, test fixtures) there is nothing to check a caller against:
`secure_serving` returns None and the HealthServer serves plain HTTP to anyone who reaches it, as before;
it logs a warning when that address is not loopback.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybernetes import errors, tls

log = logging.getLogger("pybernetes.secureserving")

ALWAYS_ALLOW_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
ALLOW_TTL = 10.0  # kube's --authorization-webhook-cache-authorized-ttl for delegated authorization
DENY_TTL = 10.0  # --authorization-webhook-cache-unauthorized-ttl
CACHE_SIZE = 1024


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request (from its client certificate)."""
    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


# (caller, verb, path) -> decision; raising is an authorization error (500, as kube answers it).
Authorize = Callable[[Caller, str, str], Awaitable[Decision]]


class SubjectAccessReviewer:
    """Delegated authorization: asks the apiserver with a SubjectAccessReview through `client` (a
    pybernetes.client.Client; its identity needs `create subjectaccessreviews`), caching each answer."""

    def __init__(self, client: Any, *, allow_ttl: float = ALLOW_TTL, deny_ttl: float = DENY_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.allow_ttl, self.deny_ttl, self.clock = allow_ttl, deny_ttl, clock
        self._cache: OrderedDict[tuple[str, tuple[str, ...], str, str], tuple[float, Decision]] = OrderedDict()
        self.reviews = 0  # SubjectAccessReviews sent (the cache's misses)

    async def __call__(self, caller: Caller, verb: str, path: str) -> Decision:
        key = (caller.user, caller.groups, verb, path)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        from pybernetes.api.authorization.v1 import authorization_pb2 as authz_api

        sar = authz_api.SubjectAccessReview()
        sar.spec.user = caller.user
        sar.spec.groups.extend(caller.groups)
        sar.spec.non_resource_attributes.path, sar.spec.non_resource_attributes.verb = path, verb
        self.reviews += 1
        out = await self.client.create(sar)
        decision = Decision(bool(out.status.allowed), out.status.reason)
        self._cache[key] = (now + (self.allow_ttl if decision.allowed else self.deny_ttl), decision)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return decision


@dataclass
class SecureServing:
    """A HealthServer's TLS context and how it authorizes the callers it authenticates."""
    context: ssl.SSLContext
    authorize: Authorize
    always_allow_paths: frozenset[str] = field(default=ALWAYS_ALLOW_PATHS)

    @staticmethod
    def authenticate(peer_der: bytes | None) -> Caller | None:
        """The caller a client certificate (DER, already verified by the handshake) names, or None: without
        one the request is anonymous, which is off (kube's --anonymous-auth=false)."""
        if not peer_der:
            return None
        user, groups = tls.identity(peer_der)
        return Caller(user, groups)

    async def check(self, peer_der: bytes | None, method: str, path: str) -> tuple[int, bytes] | None:
        """None when the request may go on; else (status, body) of the refusal, as k8s.io/apiserver writes it."""
        if path in self.always_allow_paths:
            return None
        try:
            caller = self.authenticate(peer_der)
        except errors.ApiError as e:  # a certificate naming no one we can read
            return e.code, status_body(e.code, e.reason, e.message)
        if caller is None:
            return 401, status_body(401, "Unauthorized", "Unauthorized")
        verb = method.lower()
        try:
            d = await self.authorize(caller, verb, path)
        except Exception as e:  # the apiserver unreachable: an error, not a denial
            log.warning("authorization failed user=%s path=%s error=%s", caller.user, path, e)
            return 500, status_body(500, "InternalError", f'Internal error occurred: "{path}": {e}')
        if d.allowed:
            return None
        msg = f'forbidden: User "{caller.user}" cannot {verb} path "{path}"' + (f": {d.reason}" if d.reason else "")
        return 403, status_body(403, "Forbidden", msg)


def status_body(code: int, reason: str, message: str) -> bytes:
    """A meta/v1 Status, the body kube's components answer 401/403/500 with."""
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "details": {}, "code": code}).encode()


def server_context(client_ca: Path, cert: tls.CertPair | None, common_name: str,
                   addresses: Sequence[str]) -> ssl.SSLContext:
    """TLS asking for (not requiring: health paths stay open) a client certificate signed by `client_ca`;
    without `cert`, a self-signed one for `addresses` kept only in the context (ssl loads chains from files, so
    it passes through a private temporary directory that is gone on return)."""
    if cert is not None:
        return tls.server_context(cert, client_ca)
    dns, ips = tls.serving_names(addresses, cluster_names=False)
    with tempfile.TemporaryDirectory(prefix="pb-serving-") as d:
        from pybernetes import pkiutil  # makes certificates: imported only by a component given none

        return tls.server_context(pkiutil.ensure_self_signed(Path(d), "serving", common_name, dns, ips), client_ca)


def secure_serving(*, client_ca: Path | None, authorize: Authorize | None, cert_file: Path | None = None,
                   key_file: Path | None = None, common_name: str, addresses: Sequence[str] = ()
                   ) -> SecureServing | None:
    """A component's secure serving from its flags, or None without a client CA (plain HTTP, documented above).
    `authorize` None with a client CA: the component has no API client to ask, which is a configuration error."""
    if client_ca is None:
        return None
    if authorize is None:
        raise ValueError("--client-ca-file: /metrics needs an API client to authorize callers (a kubeconfig)")
    if (cert_file is None) != (key_file is None):
        raise ValueError("--tls-cert-file and --tls-private-key-file go together")
    pair = tls.CertPair(cert_file, key_file) if cert_file is not None and key_file is not None else None
    return SecureServing(server_context(client_ca, pair, common_name, addresses), authorize)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The help of the flags each component declares (kube's names).
CLIENT_CA_HELP = ("serve /metrics over HTTPS only to client certificates from this CA that a SubjectAccessReview "
                  "allows (get on the path: system:monitoring, system:masters); health paths stay open. Unset: "
                  "plain HTTP to anyone who reaches the address")
TLS_CERT_HELP = "the serving certificate of that HTTPS (default: a self-signed one made at start)"


def delegated(client: Any, *, client_ca: Path | None, cert_file: Path | None, key_file: Path | None,
              common_name: str, address: str, allow_ttl: float = ALLOW_TTL,
              deny_ttl: float = DENY_TTL) -> SecureServing | None:
    """`secure_serving` authorizing through `client` with SubjectAccessReviews (the components' way)."""
    return secure_serving(client_ca=client_ca, authorize=SubjectAccessReviewer(client, allow_ttl=allow_ttl,
                                                                               deny_ttl=deny_ttl),
                          cert_file=cert_file, key_file=key_file, common_name=common_name, addresses=[address])
