"""Overload protection: a cap on concurrent requests, kube-apiserver's --max-requests-inflight (read-only verbs,
default 400) and --max-mutating-requests-inflight (every other verb, default 200); 0 lifts a cap.

Both front ends (gRPC in server.py, REST in http/app.py) share one `InflightLimiter` and take a slot after
authentication (the user decides the exemptions) and before authorization, as kube-apiserver's filter chain
orders WithMaxInFlightLimit. A request over its budget is refused at once, before any work: TooManyRequests
(HTTP 429 with `Retry-After: 1`, gRPC RESOURCE_EXHAUSTED with the Status' reason TooManyRequests and
retryAfterSeconds 1); clients retry it after that delay (pybernetes.client does, for every verb: nothing was
done). There is no queue: waiting requests would hold memory and time out anyway.

Not counted, as in Kubernetes:
- long-running requests: the watch and proxy verbs, the attach, exec, log, portforward and proxy subresources
  (BasicLongRunningRequestCheck; every log, followed or not); the gRPC streams never reach the limiter;
- /healthz, /livez, /readyz, /version (unauthenticated; APF's `probes` schema exempts the probes).

Exempt when the budget is full (served anyway, uncounted). Kubernetes' max-inflight filter exempts only
system:masters; API Priority and Fairness then gave the node heartbeat and leader election priority levels of
their own. With one shared budget the only way to keep them from starving is to keep them out of it, so this is
a simple stand-in for APF's bootstrap configuration (flowcontrol/bootstrap/default.go), not APF itself:
- group system:masters: every request (APF's `exempt` FlowSchema; max-inflight's own rule);
- group system:nodes: any verb on nodes, nodes/status and leases (APF's `system-node-high`: node status and
  Lease renewals; a node missing them is marked NotReady and its pods evicted);
- leader election: get, create, update of leases by system:kube-scheduler, system:kube-controller-manager and
  kube-system ServiceAccounts (APF's `system-leader-election` and `workload-leader-election`; pybernetes elects
  with Leases only, so the endpoints/configmaps locks are left out).
These are small and bounded (a Lease renewal per node every 10 s, one per elected component every 2 s).

Metrics with Kubernetes' names: apiserver_current_inflight_requests{request_kind=readOnly|mutating} (the count
now, not Kubernetes' per-second high-water mark) and apiserver_dropped_requests_total{request_kind}.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from pybernetes import errors

from .auth import ADMIN_GROUP, User
from .metrics import DROPPED_REQUESTS, INFLIGHT_REQUESTS
from .options import DEFAULT_MAX_MUTATING, DEFAULT_MAX_READ_ONLY

log = logging.getLogger("pybernetes.apiserver.inflight")

RETRY_AFTER_SECONDS = 1  # kube-apiserver's fixed Retry-After
READ_ONLY, MUTATING = "readOnly", "mutating"  # request_kind, as Kubernetes labels it

READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "log", "portforward", "proxy"})
NODES_GROUP = "system:nodes"
NODE_HIGH_RESOURCES = frozenset({("nodes", ""), ("nodes", "status"), ("leases", "")})
LEADER_ELECTION_USERS = frozenset({"system:kube-scheduler", "system:kube-controller-manager"})
LEADER_ELECTION_VERBS = frozenset({"get", "create", "update"})
KUBE_SYSTEM_SERVICE_ACCOUNTS = "system:serviceaccount:kube-system:"


def long_running(verb: str, subresource: str) -> bool:
    """Kubernetes' BasicLongRunningRequestCheck: streams that stay open are not in-flight requests."""
    return verb in LONG_RUNNING_VERBS or subresource in LONG_RUNNING_SUBRESOURCES


def request_kind(verb: str) -> str:
    return READ_ONLY if verb in READ_ONLY_VERBS else MUTATING


def exempt(user: User | None, verb: str, resource: str, subresource: str = "") -> bool:
    """Whether a request is served over budget (see the module docstring for the rule and its source)."""
    if user is None:
        return False
    if ADMIN_GROUP in user.groups:
        return True
    if NODES_GROUP in user.groups and (resource, subresource) in NODE_HIGH_RESOURCES:
        return True
    return (resource == "leases" and not subresource and verb in LEADER_ELECTION_VERBS
            and (user.name in LEADER_ELECTION_USERS or user.name.startswith(KUBE_SYSTEM_SERVICE_ACCOUNTS)))


def too_many_requests() -> errors.TooManyRequests:
    return errors.TooManyRequests("Too many requests, please try again later.",
                                  retry_after_seconds=RETRY_AFTER_SECONDS)


class InflightLimiter:
    """The two budgets of one apiserver; one event loop, so plain counters (no await between check and take)."""

    def __init__(self, max_read_only: int = DEFAULT_MAX_READ_ONLY,
                 max_mutating: int = DEFAULT_MAX_MUTATING) -> None:
        if max_read_only < 0 or max_mutating < 0:
            raise ValueError("in-flight limits must be >= 0 (0: no limit)")
        self.limits = {READ_ONLY: max_read_only, MUTATING: max_mutating}
        self.current = {READ_ONLY: 0, MUTATING: 0}
        self._gauges = {k: INFLIGHT_REQUESTS.labels(k) for k in self.limits}
        self._dropped = {k: DROPPED_REQUESTS.labels(k) for k in self.limits}

    @contextlib.contextmanager
    def hold(self, user: User | None, verb: str, resource: str = "",
             subresource: str = "") -> Iterator[None]:
        """A slot for the request's duration, freed however it ends (an error, a cancelled call); raises
        errors.TooManyRequests when its budget is full and it is not exempt. `resource` may carry the
        subresource as "pods/log" (the gRPC front end's spelling)."""
        if not subresource and "/" in resource:
            resource, _, subresource = resource.partition("/")
        if long_running(verb, subresource):
            yield
            return
        kind = request_kind(verb)
        limit = self.limits[kind]
        if limit == 0:
            yield
            return
        if self.current[kind] >= limit:
            if exempt(user, verb, resource, subresource):
                yield
                return
            self._dropped[kind].inc()
            log.debug("request refused: too many in flight kind=%s limit=%d user=%s verb=%s resource=%s",
                      kind, limit, user.name if user else "", verb, resource)
            raise too_many_requests()
        self.current[kind] += 1
        self._gauges[kind].set(self.current[kind])
        try:
            yield
        finally:
            self.current[kind] -= 1
            self._gauges[kind].set(self.current[kind])
