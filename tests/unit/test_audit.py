"""The audit log (services/apiserver/audit): Policy parsing and kube's matching rules (first match wins,
users/groups/verbs/resources/resourceNames/namespaces/nonResourceURLs, subresource wildcards, omitStages),
the Event's fields for allowed, denied, unauthenticated and impersonated requests, and the writer: batches,
rotation by size with a bounded number of backups, and counted drops when its queue is full."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pybernetes import errors
from services.apiserver.audit import policy as policies
from services.apiserver.audit.auditor import Auditor
from services.apiserver.audit.backend import ERRORS, LogBackend
from services.apiserver.audit.policy import Level
from services.apiserver.audit.record import Record
from services.apiserver.auth import User
from services.apiserver.authz import (
    AlwaysAllowAuthorizer,
    Attributes,
    Decision,
    Result,
    check,
    resource_attributes,
)

ALICE = User("alice", "u-1", ("dev", "system:authenticated"))
NODE = User("system:node:node-1", "", ("system:nodes",))


def pol(*rules: dict[str, Any], **top: Any) -> policies.Policy:
    return policies.parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top})


def level(p: policies.Policy, a: Attributes, authenticated: bool = True) -> Level:
    return p.evaluate(a, authenticated)[0]


def test_first_matching_rule_wins_and_default_is_none() -> None:
    p = pol({"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
            {"level": "RequestResponse", "verbs": ["create"]})
    assert level(p, resource_attributes(ALICE, "create", "secrets", "default", "s")) is Level.METADATA
    assert level(p, resource_attributes(ALICE, "create", "pods", "default")) is Level.REQUEST_RESPONSE
    assert level(p, resource_attributes(ALICE, "get", "pods", "default", "p")) is Level.NONE


def test_users_groups_and_unauthenticated() -> None:
    p = pol({"level": "None", "users": ["alice"]}, {"level": "Request", "userGroups": ["system:nodes"]},
            {"level": "Metadata"})
    assert level(p, resource_attributes(ALICE, "get", "pods", "d", "p")) is Level.NONE
    assert level(p, resource_attributes(NODE, "get", "pods", "d", "p")) is Level.REQUEST
    # A 401 has no user: rules naming users or groups never match it.
    assert level(p, resource_attributes(User(""), "get", "pods", "d", "p"), authenticated=False) is Level.METADATA


def test_resources_subresources_names_namespaces_and_urls() -> None:
    p = pol({"level": "RequestResponse", "resources": [{"group": "", "resources": ["pods/log"]}]},
            {"level": "Request", "resources": [{"group": "", "resources": ["*/status"]}]},
            {"level": "Metadata", "resources": [{"group": "apps", "resources": ["deployments/*"]}]},
            {"level": "None", "resources": [{"group": "", "resources": ["configmaps"],
                                             "resourceNames": ["kube-root-ca.crt"]}]},
            {"level": "None", "namespaces": ["kube-system"]},
            {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
            {"level": "Metadata", "nonResourceURLs": ["*"]},
            {"level": "Request"})
    assert level(p, resource_attributes(ALICE, "get", "pods/log", "d", "p")) is Level.REQUEST_RESPONSE
    assert level(p, resource_attributes(ALICE, "get", "pods", "d", "p")) is Level.REQUEST  # falls to the last
    assert level(p, resource_attributes(ALICE, "update", "nodes/status", "", "n")) is Level.REQUEST
    assert level(p, resource_attributes(ALICE, "update", "deployments/scale", "d", "x")) is Level.METADATA
    assert level(p, resource_attributes(ALICE, "get", "configmaps", "d", "kube-root-ca.crt")) is Level.NONE
    assert level(p, resource_attributes(ALICE, "get", "configmaps", "d", "other")) is Level.REQUEST
    assert level(p, resource_attributes(ALICE, "get", "configmaps", "kube-system", "x")) is Level.NONE
    assert level(p, Attributes(ALICE, "get", path="/healthz/etcd")) is Level.NONE
    assert level(p, Attributes(ALICE, "get", path="/version")) is Level.NONE
    assert level(p, Attributes(ALICE, "get", path="/api")) is Level.METADATA  # a resource rule never matches a URL


def test_omit_stages_union_of_policy_and_rule() -> None:
    p = pol({"level": "Metadata", "omitStages": ["ResponseStarted"]}, omitStages=["RequestReceived"])
    assert p.evaluate(resource_attributes(ALICE, "get", "pods"))[1] == {"RequestReceived", "ResponseStarted"}


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "Policy", "apiVersion": "v1"}, "expected kind Policy"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": []}, "at least one rule"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": [{"level": "Loud"}]},
     r"rules\[0\].level: unknown level 'Loud'"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": [{"level": "None", "verbz": []}]},
     r"rules\[0\].verbz: unknown field"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": [{"level": "None", "omitStages": ["Later"]}]},
     r"rules\[0\].omitStages\[0\]: unknown stage"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]}, "both regular resources"),
])
def test_bad_policy_names_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        policies.parse(doc, "policy.yaml")


def test_lab_policy_keeps_secrets_at_metadata(tmp_path: Path) -> None:
    p = policies.load(policies.write_lab_policy(tmp_path / "audit-policy.yaml"))
    assert (tmp_path / "audit-policy.yaml").stat().st_mode & 0o777 == 0o600
    for res in ("secrets", "configmaps"):
        for verb in ("create", "update", "patch", "get", "delete"):
            assert level(p, resource_attributes(ALICE, verb, res, "d", "x")) is Level.METADATA
    assert level(p, resource_attributes(ALICE, "create", "pods", "d")) is Level.REQUEST
    assert level(p, resource_attributes(NODE, "update", "pods/status", "d", "p")) is Level.METADATA
    assert level(p, resource_attributes(User("system:kube-scheduler"), "create", "pods/binding", "d", "p")) \
        is Level.METADATA
    assert level(p, resource_attributes(NODE, "update", "leases", "kube-node-lease", "node-1")) is Level.NONE
    assert level(p, resource_attributes(ALICE, "create", "events", "d")) is Level.NONE
    assert level(p, Attributes(ALICE, "get", path="/healthz")) is Level.NONE


# -- records and events ------------------------------------------------------------------------------

class Sink(LogBackend):
    def __init__(self) -> None:
        super().__init__("-")
        self.events: list[dict[str, Any]] = []

    def process(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def auditor(*rules: dict[str, Any]) -> tuple[Auditor, Sink]:
    sink = Sink()
    return Auditor(pol(*rules) if rules else policies.METADATA_POLICY, sink), sink


def test_allowed_request_events() -> None:
    a, sink = auditor({"level": "RequestResponse"})
    authz = a.authorizer(AlwaysAllowAuthorizer())
    guess = resource_attributes(User(""), "update", "deployments/scale", "web", "d")
    rec = a.begin(Record("/apis/apps/v1/namespaces/web/deployments/d/scale", guess, ["10.0.0.1"], "kubectl/v1.31"))
    check(authz, resource_attributes(ALICE, "update", "deployments/scale", "web", "d"))
    rec.code, rec.request_object, rec.response_object = 200, {"spec": {"replicas": 2}}, {"kind": "Scale"}
    a.end(rec)
    received, complete = sink.events
    assert received["stage"] == "RequestReceived" and complete["stage"] == "ResponseComplete"
    assert "responseStatus" not in received and "responseObject" not in received
    assert complete["kind"] == "Event" and complete["apiVersion"] == "audit.k8s.io/v1"
    assert complete["level"] == "RequestResponse" and complete["auditID"] == received["auditID"]
    assert complete["verb"] == "update"
    assert complete["user"] == {"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]}
    assert complete["sourceIPs"] == ["10.0.0.1"] and complete["userAgent"] == "kubectl/v1.31"
    assert complete["objectRef"] == {"resource": "deployments", "namespace": "web", "name": "d", "apiGroup": "apps",
                                     "apiVersion": "v1", "subresource": "scale"}
    assert complete["responseStatus"] == {"metadata": {}, "code": 200}
    assert complete["requestObject"] == {"spec": {"replicas": 2}} and complete["responseObject"] == {"kind": "Scale"}
    assert complete["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert complete["requestReceivedTimestamp"].endswith("Z") and len(complete["stageTimestamp"]) == 27


def test_metadata_level_drops_objects_and_none_logs_nothing() -> None:
    a, sink = auditor({"level": "None", "users": ["bob"]}, {"level": "Metadata"})
    rec = a.begin(Record("/api/v1/secrets", resource_attributes(User(""), "list", "secrets")))
    a.authorized(resource_attributes(ALICE, "list", "secrets"), Result(Decision.ALLOW))
    rec.code, rec.request_object, rec.response_object = 200, {"data": "x"}, {"data": "y"}
    a.end(rec)
    assert [e["stage"] for e in sink.events] == ["RequestReceived", "ResponseComplete"]
    assert all("requestObject" not in e and "responseObject" not in e for e in sink.events)
    rec = a.begin(Record("/api/v1/pods", resource_attributes(User(""), "list", "pods")))
    a.authorized(resource_attributes(User("bob"), "list", "pods"), Result(Decision.ALLOW))
    rec.code = 200
    a.end(rec)
    assert len(sink.events) == 2


class Deny:
    def authorize(self, attrs: Attributes) -> Result:
        return Result(Decision.DENY, "no RBAC policy matched")


def test_denied_and_unauthenticated_requests() -> None:
    a, sink = auditor()
    rec = a.begin(Record("/api/v1/namespaces/kube-system/secrets", resource_attributes(User(""), "list", "secrets",
                                                                                          "kube-system")))
    with pytest.raises(errors.Forbidden) as e:
        check(a.authorizer(Deny()), resource_attributes(ALICE, "list", "secrets", "kube-system"))
    rec.code, rec.message, rec.failure_reason = e.value.code, e.value.message, e.value.reason
    a.end(rec)
    ev = sink.events[-1]
    assert ev["responseStatus"]["code"] == 403 and ev["responseStatus"]["reason"] == "Forbidden"
    assert 'User "alice" cannot list resource "secrets"' in ev["responseStatus"]["message"]
    assert ev["annotations"] == {"authorization.k8s.io/decision": "forbid",
                                 "authorization.k8s.io/reason": "no RBAC policy matched"}
    assert ev["user"]["username"] == "alice"
    # Authentication failed: no user, but the verb and object the request named.
    rec = a.begin(Record("/api/v1/namespaces/d/pods/p", resource_attributes(User(""), "get", "pods", "d", "p")))
    rec.code, rec.message, rec.failure_reason = 401, "Unauthorized", "Unauthorized"
    a.end(rec)
    received, ev = sink.events[-2:]
    assert received["stage"] == "RequestReceived" and received["auditID"] == ev["auditID"]
    assert ev["user"] == {} and ev["verb"] == "get" and ev["responseStatus"]["code"] == 401
    assert ev["objectRef"]["name"] == "p" and "annotations" not in ev


def test_impersonation_logs_both_users() -> None:
    a, sink = auditor()
    rec = a.begin(Record("/api/v1/pods", resource_attributes(User(""), "list", "pods")))
    admin = User("admin", "", ("system:masters",))
    authz = a.authorizer(AlwaysAllowAuthorizer())
    check(authz, Attributes(admin, "impersonate", resource="users", name="alice"))
    check(authz, resource_attributes(ALICE, "list", "pods"))
    rec.code = 200
    a.end(rec)
    ev = sink.events[-1]
    assert ev["user"]["username"] == "admin" and ev["impersonatedUser"]["username"] == "alice"
    assert ev["verb"] == "list"


def test_long_running_stages_and_panic() -> None:
    a, sink = auditor()
    rec = a.begin(Record("/api/v1/pods?watch=1", resource_attributes(User(""), "watch", "pods"), long_running=True))
    a.authorized(resource_attributes(ALICE, "watch", "pods"), Result(Decision.ALLOW))
    rec.code = 200
    a.started(rec)
    a.started(rec)  # once only
    a.end(rec)
    assert [e["stage"] for e in sink.events] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    rec = a.begin(Record("/api/v1/pods", resource_attributes(User(""), "list", "pods")))
    rec.code = 500
    a.end(rec, "Panic")
    assert sink.events[-1]["stage"] == "Panic"


# -- the writer ---------------------------------------------------------------------------------------

def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_writer_rotates_by_size_and_keeps_max_backups(tmp_path: Path) -> None:
    log = tmp_path / "audit" / "audit.log"
    b = LogBackend(str(log), max_backups=2, max_bytes=2000)
    b.start()
    for i in range(60):
        b.process({"n": i, "pad": "x" * 80})
        if i % 10 == 9:
            await b.flush()
            await asyncio.sleep(0.01)  # a new file name each rotation (millisecond stamps)
    await b.stop()
    backups = sorted(log.parent.glob("audit-*.log"))
    assert len(backups) == 2 and log.stat().st_size <= 2000
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in [log, *backups])
    ns = [e["n"] for e in lines(log)]
    assert ns[-1] == 59 and ns == list(range(ns[0], 60))  # the newest, in order, none lost in the live file


async def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    b = LogBackend(str(tmp_path / "a.log"), queue_size=3)
    before = ERRORS.labels("log")._value.get()
    for i in range(5):  # not started: nothing drains
        b.process({"n": i})
    assert b.dropped == 2 and ERRORS.labels("log")._value.get() == before + 2
    b.start()
    await b.stop()
    assert [e["n"] for e in lines(tmp_path / "a.log")] == [0, 1, 2]


async def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    b = LogBackend("-")
    b.start()
    b.process({"kind": "Event", "n": 1})
    await b.stop()
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [{"kind": "Event", "n": 1}]
