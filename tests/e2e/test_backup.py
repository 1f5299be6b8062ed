"""Backup and restore round trip in the lab: save a snapshot through the apiserver, delete a namespace with a
Deployment, restore (`pbctl etcd snapshot restore FILE --lab`): the namespace and its workload are back and
Running, with the pods the snapshot holds started again, and what was made after the snapshot is stopped on
its node (the kubelets reconcile to the restored state).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: localhost:5000/busybox:stable
          command: ["sh", "-c", "echo $(hostname) > /www/i; exec httpd -f -p 8080 -h /www"]
          readinessProbe:
            httpGet:
              path: /i
              port: 8080
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 8080
"""


def lab_pbctl_argv(lab: Lab) -> list[str]:
    """pbctl as Lab.pbctl runs it, for the calls whose failure is the point."""
    return [sys.executable, "-m", "pbctl.main", "--config", str(lab.admin)]


def apply(lab: Lab, tmp: Path, ns: str, replicas: int) -> None:
    f = tmp / f"{ns}.yaml"
    f.write_text(APP.format(ns=ns, replicas=replicas))
    lab.pbctl("apply", "-f", str(f))


def pods(lab: Lab, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(lab.pbctl("get", "pods", "-n", ns, "-o", "json"))["items"]
    return items


def ready(lab: Lab, ns: str, n: int) -> list[dict[str, Any]]:
    ps = pods(lab, ns)
    ok = [p for p in ps if p.get("status", {}).get("phase") == "Running"
          and all(c.get("ready") for c in p["status"].get("containerStatuses", [{}]))
          and p["status"].get("podIP", "").startswith("10.244.")]
    return ok if len(ok) == n == len(ps) else []


def answers(lab: Lab, pod: dict[str, Any]) -> bool:
    res = lab.in_node("node-1", "curl", "-sS", "--max-time", "2", f"http://{pod['status']['podIP']}:8080/i")
    return res.returncode == 0 and res.stdout.strip() == pod["metadata"]["name"]


def running_task(lab: Lab, node: str, container_id: str) -> bool:
    sock = lab.state().containerd[node]["socket"]
    res = subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", "tasks", "ls"], capture_output=True, text=True,
                         timeout=30)
    return any(line.split()[:1] == [container_id] and "RUNNING" in line for line in res.stdout.splitlines())


def test_save_delete_restore_brings_everything_back(lab: Lab, tmp_path: Path) -> None:
    apply(lab, tmp_path, "backup-e2e", 2)
    lab.pbctl("rollout", "status", "deployment/web", "-n", "backup-e2e", "--timeout", "120s", timeout=150)
    saved = {p["metadata"]["name"]: p["metadata"]["uid"] for p in poll(lambda: ready(lab, "backup-e2e", 2), 90,
                                                                           "2 ready pods in backup-e2e")}

    snap = tmp_path / "etcd.db"
    out = lab.pbctl("etcd", "snapshot", "save", str(snap))
    assert "Snapshot saved at" in out, out
    status = json.loads(lab.pbctl("etcd", "snapshot", "status", str(snap), "-o", "json"))
    assert status["revision"] > 0 and status["totalKey"] > 0

    # After the snapshot: a workload the restore must stop, and the namespace it must bring back deleted.
    apply(lab, tmp_path, "backup-late", 1)
    late = poll(lambda: ready(lab, "backup-late", 1), 90, "the late pod ready")[0]
    late_node = late["spec"]["nodeName"]
    late_cid = late["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    assert running_task(lab, late_node, late_cid)
    lab.pbctl("delete", "namespace", "backup-e2e")
    poll(lambda: "NotFound" in subprocess.run(
        [*lab_pbctl_argv(lab), "get", "namespace", "backup-e2e"], capture_output=True, text=True).stderr
         or None, 120, "namespace backup-e2e deleted")

    res = subprocess.run([*lab_pbctl_argv(lab), "etcd", "snapshot", "restore", str(snap), "--lab",
                          "--dir", str(lab.dir)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"

    back = poll(lambda: ready(lab, "backup-e2e", 2), 180, "backup-e2e's pods Running again")
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in back} == saved  # the snapshot's pods, restarted
    poll(lambda: all(answers(lab, p) for p in ready(lab, "backup-e2e", 2)) or None, 60, "the pods answering")
    assert lab.pbctl("get", "configmap", "settings", "-n", "backup-e2e", "-o",
                     "jsonpath={.data.greeting}").strip() == "hello"
    poll(lambda: lab.pbctl("get", "deployment", "web", "-n", "backup-e2e", "-o",
                           "jsonpath={.status.readyReplicas}").strip() == "2" or None, 60,
         "the Deployment's status counting both pods ready")  # its controller reports after the kubelets
    lab.pbctl("get", "service", "web", "-n", "backup-e2e")
    # What the snapshot does not hold is gone from the API and stopped on its node.
    gone = subprocess.run([*lab_pbctl_argv(lab), "get", "namespace", "backup-late"], capture_output=True, text=True)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr
    poll(lambda: not running_task(lab, late_node, late_cid), 90, "the late pod's container stopped")
    poll(lambda: lab.cli("status", check=False).returncode == 0, 60, "every lab component healthy")
    lab.pbctl("delete", "namespace", "backup-e2e", "--wait=false")
