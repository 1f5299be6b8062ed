"""The chaos run's load generator and its ledger: writes at a fixed rate, every accepted one recorded, and the
check of the stored objects against the ledger afterwards.

The generator creates, updates (ConfigMap data, Deployment replicas and template, Service labels) and deletes
ConfigMaps, Deployments and Services in one namespace, one request at a time, and retries a failed request as a
client would: names are deterministic, updates are merge patches of the whole intended value (idempotent), and
after an ambiguous failure (unavailable, timeout, internal error) an AlreadyExists on a create or a NotFound on a
delete means the earlier attempt landed. The ledger holds, per object, the state the last accepted write implies
(None: deleted). lab.chaos runs it while it kills components.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of
from pybernetes.client.client import Client

NAMESPACE = "chaos"
KINDS: dict[str, Any] = {"ConfigMap": core.ConfigMap, "Deployment": apps.Deployment, "Service": core.Service}
MAX_ALIVE = {"ConfigMap": 8, "Deployment": 3, "Service": 3}
# What the cluster itself keeps in every namespace (the controller manager's root-ca-cert-publisher): no load
# write made it, so it is neither lost nor duplicated.
CLUSTER_OWNED = {("ConfigMap", "kube-root-ca.crt")}
IMAGE = "localhost:5000/busybox:stable"
# Failures after which the request may or may not have been applied.
AMBIGUOUS = (errors.Unavailable, errors.Timeout, errors.InternalError)
DEFINITE_REFUSALS = (errors.Conflict,)  # a failed precondition: nothing was written


@dataclass
class Write:
    """One accepted write: when it was sent and answered, and what it leaves."""
    kind: str
    name: str
    verb: str
    sent: float
    accepted: float
    attempts: int
    state: dict[str, Any] | None


@dataclass
class Ledger:
    expected: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    uncertain: set[tuple[str, str]] = field(default_factory=set)  # gave up retrying: state unknown
    anomalies: list[str] = field(default_factory=list)  # answers no correct server gives a correct client
    failed_attempts: int = 0
    created: int = 0

    def alive(self, kind: str) -> list[str]:
        return sorted(n for (k, n), s in self.expected.items()
                      if k == kind and s is not None and (k, n) not in self.uncertain)


def manifest(kind: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
    md = {"name": name, "namespace": NAMESPACE}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": md, "data": state["data"]}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": kind, "metadata": {**md, "labels": {"rev": state["rev"]}},
                "spec": {"selector": {"chaos": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
    labels = {"chaos": name}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": md,
            "spec": {"replicas": state["replicas"], "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, "annotations": {"chaos/rev": state["rev"]}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c", "image": IMAGE,
                                                           "command": ["sleep", "100000"]}]}}}}


def observed(kind: str, obj: Any) -> dict[str, Any]:
    """The part of a stored object the ledger predicts."""
    if kind == "ConfigMap":
        return {"data": dict(obj.data)}
    if kind == "Service":
        return {"rev": meta_of(obj).labels.get("rev", "")}
    return {"replicas": obj.spec.replicas, "rev": obj.spec.template.metadata.annotations.get("chaos/rev", "")}


class LoadGenerator:
    """Writes at `rate` per second until stopped; every accepted write goes into `ledger`."""

    def __init__(self, client: Client, rate: float, seed: int, *, give_up: float = 90.0,
                 say: Callable[[str], None] = print) -> None:
        self.client = client
        self.rate = rate
        self.rng = random.Random(seed)
        self.give_up = give_up
        self.say = say
        self.ledger = Ledger()
        self.serial = 0

    async def ensure_namespace(self) -> None:
        ns = codec.parse_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        try:
            await self.client.create(ns)
        except errors.AlreadyExists:
            pass

    async def run(self, stop: asyncio.Event) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not stop.is_set():
            await self.one()
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
            else:  # behind (an outage): do not burst to catch up
                next_at = time.monotonic()

    def pick(self) -> tuple[str, str, str, dict[str, Any] | None]:
        """(kind, name, verb, state after)."""
        kind = self.rng.choice(["ConfigMap", "ConfigMap", "Deployment", "Service"])
        alive = self.ledger.alive(kind)
        self.serial += 1
        rev = str(self.serial)
        if not alive or (len(alive) < MAX_ALIVE[kind] and self.rng.random() < 0.35):
            self.ledger.created += 1
            name = f"{kind.lower()}-{self.ledger.created}"
            initial: dict[str, dict[str, Any]] = {
                "ConfigMap": {"data": {"v": rev}}, "Service": {"rev": rev},
                "Deployment": {"replicas": self.rng.randint(0, 2), "rev": rev}}
            state = initial[kind]
            return kind, name, "create", state
        name = self.rng.choice(alive)
        if self.rng.random() < 0.2:
            return kind, name, "delete", None
        cur = dict(self.ledger.expected[(kind, name)] or {})
        if kind == "ConfigMap":
            cur["data"] = {"v": rev}
        elif kind == "Service":
            cur["rev"] = rev
        elif self.rng.random() < 0.5:
            cur["replicas"] = self.rng.randint(0, 2)
        else:
            cur["rev"] = rev
        return kind, name, "update", cur

    def request(self, kind: str, name: str, verb: str, state: dict[str, Any] | None) -> Callable[[], Awaitable[Any]]:
        cls = KINDS[kind]
        if verb == "create":
            assert state is not None
            obj = codec.parse_object(manifest(kind, name, state))
            return lambda: self.client.create(obj)
        if verb == "delete":
            return lambda: self.client.delete(cls, name, namespace=NAMESPACE)
        assert state is not None
        body = manifest(kind, name, state)
        patch = {"metadata": {"labels": body["metadata"].get("labels", {})}}
        if kind == "ConfigMap":
            patch = {"data": body["data"]}
        elif kind == "Deployment":
            patch = {"spec": {"replicas": state["replicas"],
                              "template": {"metadata": {"annotations": {"chaos/rev": state["rev"]}}}}}
        return lambda: self.client.patch(cls, name, patch, namespace=NAMESPACE, patch_type="merge")

    async def one(self) -> None:
        kind, name, verb, state = self.pick()
        call = self.request(kind, name, verb, state)
        sent = time.monotonic()
        attempts, ambiguous, delay = 0, False, 0.1
        while True:
            attempts += 1
            try:
                await call()
                break
            except errors.AlreadyExists:
                if verb == "create" and ambiguous:
                    break  # the earlier attempt landed
                self.ledger.anomalies.append(f"{verb} {kind} {name}: AlreadyExists without an earlier attempt")
                return
            except errors.NotFound:
                if verb == "delete" and ambiguous:
                    break
                self.ledger.anomalies.append(f"{verb} {kind} {name}: NotFound (ledger says it exists)")
                return
            except errors.ApiError as e:
                self.ledger.failed_attempts += 1
                if not isinstance(e, DEFINITE_REFUSALS):
                    ambiguous = True
                if not isinstance(e, (*AMBIGUOUS, *DEFINITE_REFUSALS)) and e.code < 500:
                    self.ledger.anomalies.append(f"{verb} {kind} {name}: {e.reason}: {e}")
                    return
            if time.monotonic() - sent > self.give_up:
                self.ledger.uncertain.add((kind, name))
                self.say(f"   gave up on {verb} {kind}/{name} after {attempts} attempts")
                return
            await asyncio.sleep(delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, 2.0)
        self.ledger.expected[(kind, name)] = state
        self.ledger.writes.append(Write(kind, name, verb, sent, time.monotonic(), attempts, state))


# ---- afterwards ---------------------------------------------------------------------------------

@dataclass
class Verdict:
    accepted: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    converged: bool = False
    converge_s: float = 0.0
    unconverged: list[str] = field(default_factory=list)


async def stored(client: Client) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for kind, cls in KINDS.items():
        for obj in (await client.list(cls, namespace=NAMESPACE)).items:
            if (kind, meta_of(obj).name) not in CLUSTER_OWNED:
                found[(kind, meta_of(obj).name)] = obj
    return found


def compare(ledger: Ledger, found: dict[tuple[str, str], Any]) -> Verdict:
    """Lost: an accepted state not stored (missing or older). Duplicated: a stored object no write created.
    Resurrected: a stored object whose accepted delete came last."""
    v = Verdict(accepted=len(ledger.writes))
    for key, want in ledger.expected.items():
        if key in ledger.uncertain:
            continue
        got = found.get(key)
        if want is None and got is not None:
            v.resurrected.append(f"{key[0]}/{key[1]}")
        elif want is not None and got is None:
            v.lost.append(f"{key[0]}/{key[1]} (missing)")
        elif want is not None and observed(key[0], got) != want:
            v.lost.append(f"{key[0]}/{key[1]}: stored {observed(key[0], got)}, accepted {want}")
    v.duplicated = [f"{k}/{n}" for (k, n) in found if (k, n) not in ledger.expected and (k, n) not in ledger.uncertain]
    return v


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


async def pods_match(client: Client, namespace: str = NAMESPACE) -> list[str]:
    """What keeps a namespace's pods from matching their Deployments (empty: converged)."""
    deps = {meta_of(d).name: d for d in (await client.list(apps.Deployment, namespace=namespace)).items}
    pods = [p for p in (await client.list(core.Pod, namespace=namespace)).items
            if not meta_of(p).HasField("deletion_timestamp")]
    problems = []
    owned: set[str] = set()
    for name, d in deps.items():
        sel = dict(d.spec.selector.match_labels)
        mine = [p for p in pods if sel.items() <= dict(meta_of(p).labels).items()]
        owned.update(meta_of(p).name for p in mine)
        ready = sum(_ready(p) for p in mine)
        if len(mine) != d.spec.replicas or ready != d.spec.replicas or d.status.ready_replicas != d.spec.replicas:
            problems.append(f"{namespace}/{name}: spec {d.spec.replicas}, pods {len(mine)}, ready {ready}, "
                            f"status.readyReplicas {d.status.ready_replicas}; " + ", ".join(
                                f"{meta_of(p).name} on {p.spec.node_name or '-'} {p.status.phase}"
                                f"{'' if _ready(p) else ' not ready'}" for p in mine))
    orphans = [meta_of(p).name for p in pods if meta_of(p).name not in owned and meta_of(p).labels.get("chaos")]
    if orphans:
        problems.append(f"pods of deleted Deployments: {', '.join(sorted(orphans))}")
    return problems


async def all_pods_match(client: Client, namespaces: tuple[str, ...]) -> list[str]:
    return [p for ns in namespaces for p in await pods_match(client, ns)]


async def converge(client: Client, ledger: Ledger, timeout: float, also: tuple[str, ...] = ("default",)) -> Verdict:
    """Wait until the pods match their Deployments (the chaos namespace's and those in `also`: the demo's),
    then compare the stored objects with the ledger."""
    t0 = time.monotonic()
    problems: list[str] = ["not checked"]
    while time.monotonic() - t0 < timeout:
        try:
            problems = await all_pods_match(client, (NAMESPACE, *also))
        except errors.ApiError as e:
            problems = [f"list failed: {e}"]
        if not problems:
            break
        await asyncio.sleep(1.0)
    verdict = compare(ledger, await stored(client))
    verdict.converged, verdict.unconverged = not problems, problems
    verdict.converge_s = round(time.monotonic() - t0, 1)
    return verdict
