"""The kubelet's ServiceAccount token manager (pkg/kubelet/token): tokens for serviceAccountToken volume
projections, requested through the API (TokenRequest bound to the pod, so they die with it), cached per
(pod, account, audience, lifetime) and due for refresh once 80 % of their lifetime has passed or they are a
day old, as Kubernetes' requiresRefresh. The pod's worker asks `due(uid)` on each sync and rewrites the pod's
projected volumes when a token is due; the files are replaced in place, so the bind mounts see the new token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client

log = logging.getLogger("pybernetes.kubelet.tokens")

DEFAULT_EXPIRATION = 3600  # a projection without expirationSeconds (Kubernetes' default)
REFRESH_FRACTION = 0.8
MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class _Token:
    token: bytes
    issued: float
    expires: float

    def due(self, now: float) -> bool:
        ttl = self.expires - self.issued
        return now >= self.issued + REFRESH_FRACTION * ttl or now >= self.issued + MAX_AGE


class TokenManager:
    def __init__(self, client: Client, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self._tokens: dict[tuple[str, str, str, int], _Token] = {}

    async def token(self, pod: core.Pod, audience: str, expiration_seconds: int) -> bytes:
        """A token for the pod's ServiceAccount, bound to the pod: the cached one until it is due."""
        md = pod.metadata
        account = pod.spec.service_account_name or "default"
        key = (md.uid, account, audience, expiration_seconds)
        now = self.clock()
        cached = self._tokens.get(key)
        if cached is not None and not cached.due(now):
            return cached.token
        tr = await self.client.create_token(md.namespace, account, audiences=[audience] if audience else [],
                                            expiration_seconds=expiration_seconds, bound_pod=(md.name, md.uid))
        expires = float(tr.status.expiration_timestamp.seconds) or now + expiration_seconds
        self._tokens[key] = _Token(tr.status.token.encode(), now, expires)
        log.info("service account token %s pod=%s/%s serviceaccount=%s expires_in=%ds",
                 "refreshed" if cached is not None else "requested", md.namespace, md.name, account,
                 int(expires - now))
        return self._tokens[key].token

    def due(self, uid: str) -> bool:
        """Whether a token of the pod needs refreshing, or none is held (a restarted kubelet holds none for
        the pods it adopts, whose mounted tokens must still be renewed)."""
        now = self.clock()
        held = [t for k, t in self._tokens.items() if k[0] == uid]
        return not held or any(t.due(now) for t in held)

    def forget(self, uid: str) -> None:
        for k in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[k]
