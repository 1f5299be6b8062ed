"""One request's audit record and the audit.k8s.io/v1 Event each of its stages becomes.

Filled in as the request goes: what the front end knows at the start (URI, source IPs, user agent, the
attributes its route implies), the user authentication found, the attributes and decision authorization saw
(and who impersonated whom), the response code and failure. `event(stage)` renders the Event with the
fields its level allows: objects only at Request/RequestResponse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pybernetes.api import kinds

from ..auth import User
from ..authz import Attributes, Decision
from .policy import Level


def micro_time(t: datetime) -> str:
    """metav1.MicroTime's JSON form: RFC 3339 with microseconds, in UTC."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {"username": u.name}
    if u.uid:
        out["uid"] = u.uid
    if u.groups:
        out["groups"] = list(u.groups)
    return out


@dataclass
class Record:
    request_uri: str
    guess: Attributes  # what the route implies, until authorization sees the real attributes
    source_ips: list[str] = field(default_factory=list)
    user_agent: str = ""
    long_running: bool = False  # a watch or stream: ResponseStarted when it starts
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
    user: User | None = None  # authenticated (None: authentication failed or did not happen)
    impersonator: User | None = None  # who asked to act as `attrs.user`
    attrs: Attributes | None = None
    decision: Decision | None = None
    reason: str = ""
    level: Level | None = None  # decided by the policy once the attributes are known
    omit: frozenset[str] = frozenset()
    code: int = 0
    message: str = ""
    failure_reason: str = ""
    request_object: Any = None
    response_object: Any = None
    object_name: str = ""  # a create's object, named in its body
    sent: set[str] = field(default_factory=set)
    token: Any = None  # the contextvar token of the front end that opened it

    def authorized(self, attrs: Attributes, decision: Decision, reason: str) -> None:
        """What the authorizer was asked and answered. An `impersonate` check is the impersonator's; the
        request's own attributes come after it, with the impersonated user."""
        if attrs.verb == "impersonate":
            if self.impersonator is None:
                self.impersonator = attrs.user
            return
        if self.attrs is not None:
            return  # the request's own attributes are the first; later checks (bind, escalate) are details
        self.attrs, self.decision, self.reason = attrs, decision, reason

    @property
    def effective(self) -> Attributes:
        """The attributes the policy and the Event use."""
        if self.attrs is not None:
            return self.attrs
        g = self.guess
        user = self.impersonator or self.user or User("")
        return Attributes(user=user, verb=g.verb, resource=g.resource, subresource=g.subresource,
                          api_group=g.api_group, namespace=g.namespace, name=g.name, path=g.path)

    @property
    def authenticated(self) -> bool:
        return self.user is not None or self.attrs is not None or self.impersonator is not None

    def event(self, stage: str, now: datetime | None = None) -> dict[str, Any]:
        a = self.effective
        level = self.level or Level.METADATA
        ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level.wire,
                              "auditID": self.audit_id, "stage": stage, "requestURI": self.request_uri,
                              "verb": a.verb}
        if self.impersonator is not None and self.attrs is not None and self.attrs.user != self.impersonator:
            ev["user"] = _user(self.impersonator)
            ev["impersonatedUser"] = _user(self.attrs.user)
        elif self.authenticated:
            ev["user"] = _user(a.user)
        else:
            ev["user"] = {}  # authentication failed: no user, as kube-apiserver logs a 401
        ev["sourceIPs"] = self.source_ips
        if self.user_agent:
            ev["userAgent"] = self.user_agent
        if a.is_resource_request:
            ref: dict[str, Any] = {"resource": a.resource}
            if a.namespace:
                ref["namespace"] = a.namespace
            if a.name or self.object_name:
                ref["name"] = a.name or self.object_name
            ref["apiGroup"] = a.api_group
            ref["apiVersion"] = self._version(a)
            if a.subresource:
                ref["subresource"] = a.subresource
            ev["objectRef"] = ref
        if stage != "RequestReceived" and self.code:
            st: dict[str, Any] = {"metadata": {}, "code": self.code}
            if self.code >= 400:
                st["status"] = "Failure"
                if self.message:
                    st["message"] = self.message
                if self.failure_reason:
                    st["reason"] = self.failure_reason
            ev["responseStatus"] = st
        if level >= Level.REQUEST and self.request_object is not None:
            ev["requestObject"] = self.request_object
        if level >= Level.REQUEST_RESPONSE and self.response_object is not None and stage == "ResponseComplete":
            ev["responseObject"] = self.response_object
        ev["requestReceivedTimestamp"] = micro_time(self.received)
        ev["stageTimestamp"] = micro_time(now or datetime.now(UTC))
        if self.decision is not None:
            ev["annotations"] = {"authorization.k8s.io/decision":
                                 "allow" if self.decision is Decision.ALLOW else "forbid",
                                 "authorization.k8s.io/reason": self.reason}
        return ev

    @staticmethod
    def _version(a: Attributes) -> str:
        info = kinds.for_plural(a.resource)
        return info.version if info is not None else "v1"
