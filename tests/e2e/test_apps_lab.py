"""DaemonSets and StatefulSets in the lab (issue 15): real pods on the three real nodes.

A DaemonSet lands one pod on each node and follows a node taken out and back as Kubernetes does: an
untolerated NoExecute taint removes that node's daemon pod (and only it), removing the taint brings a new one
back; a NoSchedule taint evicts nothing (the pod stays, counted misscheduled). A change of its pod template
rolls out to every node, and a watch on its pods (pybernetes.client, in a thread) never sees more than
maxUnavailable nodes without an available pod. A StatefulSet behind a headless
Service creates `web-0` before `web-1` (web-1 only once web-0 is Ready), `web-0.web` resolves from a pod to
web-0's IP and serves web-0's page, and scaling down removes web-1, not web-0. `pbctl apply` of a DaemonSet
whose selector does not match its template, or of a StatefulSet with volumeClaimTemplates, fails naming the
field and creates nothing. Runs against the session lab
(tests/e2e/conftest.py) and removes what it made; bounded by polls of at most two minutes.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e

IMAGE = "localhost:5000/busybox:stable"
NODES = ("node-1", "node-2", "node-3")
TAINT_KEY = "e2e.pybernetes.io/out"
MAX_UNAVAILABLE = 2  # of three nodes: two at a time, the third waits for one of them


def daemonset_manifest(revision: str) -> str:
    """The e2e-agent DaemonSet; `revision` (in its containers' env) changes the pod template."""
    return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: e2e-agent}}
spec:
  selector: {{matchLabels: {{app: e2e-agent}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: {MAX_UNAVAILABLE}}}}}
  template:
    metadata: {{labels: {{app: e2e-agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: agent
          image: "{IMAGE}"
          command: ["sleep", "3600"]
          env: [{{name: AGENT_REVISION, value: "{revision}"}}]
"""
# web-0 turns Ready no sooner than 2 s after it starts: a web-1 created alongside it (not after it) would
# show as a creationTimestamp before web-0's Ready transition.
STATEFULSET = f"""
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: "{IMAGE}"
          command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 8080 -h /www"]
          readinessProbe: {{httpGet: {{path: /, port: 8080}}, initialDelaySeconds: 2, periodSeconds: 1}}
"""


def get_json(lab: Lab, *args: str) -> Any:
    return json.loads(lab.pbctl("get", *args, "-o", "json"))


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- DaemonSet -------------------------------------------------------------------------------------


def agents(lab: Lab) -> dict[str, list[str]]:
    """node -> the e2e-agent pods on it (any phase, terminating ones included)."""
    out: dict[str, list[str]] = {}
    for p in get_json(lab, "pods", "-l", "app=e2e-agent")["items"]:
        out.setdefault(p["spec"].get("nodeName", ""), []).append(p["metadata"]["name"])
    return out


def running_agents(lab: Lab) -> dict[str, str]:
    """node -> its one Running e2e-agent pod, once there is exactly one on each of the three nodes (else {})."""
    items = get_json(lab, "pods", "-l", "app=e2e-agent")["items"]
    if any(p["status"].get("phase") != "Running" or p["metadata"].get("deletionTimestamp") for p in items):
        return {}
    by_node = {p["spec"].get("nodeName", ""): p["metadata"]["name"] for p in items}
    return by_node if len(items) == len(NODES) and set(by_node) == set(NODES) else {}


def ds_status(lab: Lab) -> tuple[int, int]:
    st = get_json(lab, "daemonset", "e2e-agent").get("status", {})
    return st.get("desiredNumberScheduled", 0), st.get("numberMisscheduled", 0)


def set_taints(lab: Lab, node: str, taints: list[dict[str, str]]) -> None:
    lab.pbctl("patch", "node", node, "--type", "merge", "-p", json.dumps({"spec": {"taints": taints or None}}))


@pytest.fixture
def daemonset(lab: Lab, tmp_path: Path) -> Iterator[dict[str, list[dict[str, str]]]]:
    """The e2e-agent DaemonSet; yields each node's taints as they were, and puts them back afterwards."""
    before = {n: get_json(lab, "node", n).get("spec", {}).get("taints", []) for n in NODES}
    path = tmp_path / "ds.yaml"
    path.write_text(daemonset_manifest("1"))
    lab.pbctl("apply", "-f", str(path))
    try:
        yield before
    finally:
        for n, taints in before.items():
            set_taints(lab, n, taints)
        lab.pbctl("delete", "-f", str(path), "--ignore-not-found", check=False)
        poll(lambda: not agents(lab), 60, "the DaemonSet's pods garbage-collected")


def test_daemonset_one_pod_per_node_follows_a_node_out_and_back(lab: Lab,
                                                                  daemonset: dict[str, list[dict[str, str]]]) -> None:
    first = poll(lambda: running_agents(lab), 120, "one Running agent per node")
    assert ds_status(lab) == (3, 0)

    # node-2 taken out: an untolerated NoExecute taint removes its daemon pod and only it
    out = {"key": TAINT_KEY, "value": "yes", "effect": "NoExecute"}
    set_taints(lab, "node-2", [*daemonset["node-2"], out])
    poll(lambda: agents(lab) == {n: [first[n]] for n in ("node-1", "node-3")}, 60,
         "node-2's agent gone, the others untouched")
    poll(lambda: ds_status(lab) == (2, 0), 30, "DaemonSet desiring 2 pods")

    # ... and back: a new pod there, the others still the same
    set_taints(lab, "node-2", daemonset["node-2"])
    back = poll(lambda: running_agents(lab), 90, "an agent on node-2 again")
    assert back["node-2"] != first["node-2"]
    assert {n: back[n] for n in ("node-1", "node-3")} == {n: first[n] for n in ("node-1", "node-3")}
    poll(lambda: ds_status(lab) == (3, 0), 30, "DaemonSet desiring 3 pods")

    # a NoSchedule taint keeps new daemon pods away but evicts none: node-3's pod stays, counted misscheduled
    set_taints(lab, "node-3", [*daemonset["node-3"], {**out, "effect": "NoSchedule"}])
    poll(lambda: ds_status(lab) == (2, 1), 30, "node-3 no longer desired, its pod misscheduled")
    assert running_agents(lab) == back


class AgentWatch:
    """The e2e-agent pods as a watch delivers them, in order: the listed pods, then every (type, pod) event from
    the list's resource version on, gathered by a thread of its own (its own event loop and client)."""

    def __init__(self, lab: Lab) -> None:
        self.config = client_config.load(str(lab.admin))
        self.initial: list[core.Pod] = []
        self.events: list[tuple[str, core.Pod]] = []
        self.error: BaseException | None = None
        self.listed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="e2e-agent-watch", daemon=True)

    def __enter__(self) -> AgentWatch:
        self._thread.start()
        poll(lambda: self.listed.is_set() or self.error, 30, "the watch listing the agents")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:  # the test reads it: a broken watch must not pass for a quiet one
            self.error = e

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with Client.from_config(self.config, timeout=30) as c:
            res = await c.list(core.Pod, namespace="default", label_selector="app=e2e-agent")
            self.initial = list(res.items)

            async def follow() -> None:
                async for ev in c.watch(core.Pod, namespace="default", label_selector="app=e2e-agent",
                                        resource_version=res.resource_version):
                    if ev.type in ("ADDED", "MODIFIED", "DELETED"):
                        self.events.append((ev.type, ev.object))
                raise AssertionError("the pod watch ended")

            stream = asyncio.create_task(follow())
            self.listed.set()
            stopped = asyncio.create_task(self._stop.wait())
            await asyncio.wait({stream, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stream.cancel()
            stopped.cancel()
            failure = stream.exception() if stream.done() and not stream.cancelled() else None
            if failure is not None:
                raise failure

    def states(self) -> Iterator[dict[str, core.Pod]]:
        """uid -> pod after the listing and after each event, in order (a copy each time)."""
        pods = {p.metadata.uid: p for p in self.initial}
        yield dict(pods)
        for kind, pod in list(self.events):
            if kind == "DELETED":
                pods.pop(pod.metadata.uid, None)
            else:
                pods[pod.metadata.uid] = pod
            yield dict(pods)

    def last(self) -> dict[str, core.Pod]:
        *_, state = self.states()
        return state


def unavailable_nodes(pods: dict[str, core.Pod]) -> set[str]:
    """Nodes without an available agent: none there Running, Ready and not being deleted (as the DaemonSet
    controller counts them against maxUnavailable; minReadySeconds is 0)."""
    available = {p.spec.node_name for p in pods.values()
                 if not p.metadata.HasField("deletion_timestamp") and p.status.phase == "Running"
                 and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)}
    return set(NODES) - available


def revision_env(pod: core.Pod) -> str:
    return next((e.value for e in pod.spec.containers[0].env if e.name == "AGENT_REVISION"), "")


def test_daemonset_rolling_update_honours_max_unavailable(lab: Lab, tmp_path: Path,
                                                         daemonset: dict[str, list[dict[str, str]]]) -> None:
    first = poll(lambda: running_agents(lab), 120, "one Running agent per node")
    poll(lambda: get_json(lab, "daemonset", "e2e-agent").get("status", {}).get("numberAvailable") == 3, 60,
         "all three agents available")
    path = tmp_path / "ds-2.yaml"
    path.write_text(daemonset_manifest("2"))
    with AgentWatch(lab) as watch:
        assert not unavailable_nodes(watch.last()), "an agent was unavailable before the update"
        lab.pbctl("apply", "-f", str(path))

        def rolled_out() -> bool:
            if watch.error is not None:
                raise RuntimeError(f"the pod watch failed: {watch.error!r}")  # not retried by poll
            pods = [p for p in watch.last().values() if not p.metadata.HasField("deletion_timestamp")]
            return (not unavailable_nodes(watch.last()) and len(pods) == len(NODES)
                    and all(revision_env(p) == "2" for p in pods))
        poll(rolled_out, 120, "every node's agent replaced by an available one of the new template")
    assert watch.error is None, watch.error

    # at no observed moment more than maxUnavailable nodes without an available agent; every node had its turn
    down: set[str] = set()
    for i, state in enumerate(watch.states()):
        missing = unavailable_nodes(state)
        assert len(missing) <= MAX_UNAVAILABLE, (i, sorted(missing), sorted(p.metadata.name for p in state.values()))
        down |= missing
    assert down == set(NODES), down

    # the new pods run the new template on every node, none of the old ones is left
    now = poll(lambda: running_agents(lab), 60, "one Running agent per node")
    assert not set(now.values()) & set(first.values()), (first, now)
    for node, pod in now.items():
        assert in_pod(lab, pod, "sh", "-c", "echo $AGENT_REVISION").strip() == "2", (node, pod)
    poll(lambda: [get_json(lab, "daemonset", "e2e-agent")["status"].get(f, 0) for f in
                  ("updatedNumberScheduled", "numberAvailable", "numberUnavailable")] == [3, 3, 0], 30,
         "DaemonSet status: 3 updated, 3 available, 0 unavailable")


# -- StatefulSet -----------------------------------------------------------------------------------


@pytest.fixture
def statefulset(lab: Lab, tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "sts.yaml"
    path.write_text(STATEFULSET)
    lab.pbctl("apply", "-f", str(path))
    try:
        yield
    finally:
        lab.pbctl("delete", "-f", str(path), "--ignore-not-found", check=False)
        poll(lambda: not get_json(lab, "pods", "-l", "app=web")["items"], 60, "the StatefulSet's pods gone")


def in_pod(lab: Lab, pod: str, *cmd: str) -> str:
    return lab.pbctl("exec", pod, "--", *cmd, timeout=30)


def test_statefulset_ordered_creation_and_stable_dns(lab: Lab, statefulset: None) -> None:
    poll(lambda: get_json(lab, "statefulset", "web").get("status", {}).get("readyReplicas") == 2, 120,
         "web-0 and web-1 Ready")
    pods = {name: get_json(lab, "pod", name) for name in ("web-0", "web-1")}

    # the controller's events say web-0 was created first ...
    events = [e for e in get_json(lab, "events")["items"]
              if e["involvedObject"].get("kind") == "StatefulSet" and e["involvedObject"].get("name") == "web"
              and e.get("reason") == "SuccessfulCreate"]
    created = {e["message"].rsplit(" ", 1)[-1]: when(e.get("eventTime") or e["firstTimestamp"]) for e in events}
    assert set(created) == {"web-0", "web-1"}, events
    assert created["web-0"] < created["web-1"], created
    # ... and web-1 only once web-0 was Ready (OrderedReady)
    ready_at = next(when(c["lastTransitionTime"]) for c in pods["web-0"]["status"]["conditions"]
                    if c["type"] == "Ready" and c["status"] == "True")
    assert when(pods["web-0"]["metadata"]["creationTimestamp"]) < ready_at
    assert when(pods["web-1"]["metadata"]["creationTimestamp"]) >= ready_at, (pods["web-1"]["metadata"], ready_at)

    # web-0.web (its hostname under the headless Service) resolves from a pod to web-0's IP and serves its page
    ip = pods["web-0"]["status"]["podIP"]
    poll(lambda: ip in in_pod(lab, "web-1", "nslookup", "web-0.web.default.svc.cluster.local"), 30,
         f"web-0.web.default.svc.cluster.local -> {ip}")
    page = poll(lambda: in_pod(lab, "web-1", "timeout", "5", "wget", "-q", "-O", "-", "http://web-0.web:8080/"),
                30, "wget http://web-0.web:8080/ from web-1")
    assert page.strip() == "web-0"

    # scaling down removes the highest ordinal: web-1 goes, web-0 (the same pod) stays
    lab.pbctl("scale", "statefulset", "web", "--replicas", "1")
    poll(lambda: [p["metadata"]["name"] for p in get_json(lab, "pods", "-l", "app=web")["items"]] == ["web-0"], 60,
         "web-1 removed on scale down")
    assert get_json(lab, "pod", "web-0")["metadata"]["uid"] == pods["web-0"]["metadata"]["uid"]


# -- refusals --------------------------------------------------------------------------------------

REFUSED = {
    "DaemonSet": ("spec.template.metadata.labels", f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: e2e-refused}}
spec:
  selector: {{matchLabels: {{app: e2e-refused}}}}
  template:
    metadata: {{labels: {{app: something-else}}}}
    spec: {{containers: [{{name: agent, image: "{IMAGE}"}}]}}
"""),
    "StatefulSet": ("spec.volumeClaimTemplates", f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: e2e-refused}}
spec:
  serviceName: e2e-refused
  selector: {{matchLabels: {{app: e2e-refused}}}}
  template:
    metadata: {{labels: {{app: e2e-refused}}}}
    spec: {{containers: [{{name: db, image: "{IMAGE}"}}]}}
  volumeClaimTemplates:
    - metadata: {{name: data}}
      spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"""),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_refusal_names_its_field(lab: Lab, tmp_path: Path, kind: str) -> None:
    field, manifest = REFUSED[kind]
    path = tmp_path / "refused.yaml"
    path.write_text(manifest)
    with pytest.raises(AssertionError) as refused:
        lab.pbctl("apply", "-f", str(path))
    message = str(refused.value)
    assert "failed (1)" in message and f'The {kind} "e2e-refused" is invalid: {field}:' in message, message
    assert "e2e-refused" not in lab.pbctl("get", kind.lower(), "-o", "name")
