"""Unmodified upstream manifests run in the lab, offline (issue 13, "Unmodified manifests run offline").

The Kubernetes docs' Deployment example (`nginx:1.14.2`, 3 replicas) and a `busybox` pod, applied exactly
as written upstream, reach Running: node containerds pull docker.io names through their mirror from the lab
registry (lab.images.CATALOG, node_agent.containerd.render_hosts). nginx answers on port 80 with its
welcome page; a tag the lab registry lacks ends in ErrImagePull/ImagePullBackOff with the registry's
not-found. Runs against the session lab (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e

# https://kubernetes.io/docs/concepts/workloads/controllers/deployment/ (controllers/nginx-deployment.yaml)
NGINX_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""

# As in the docs' DNS debugging page (admin/dns/busybox.yaml), with the bare `busybox` name (:latest).
BUSYBOX_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: busybox
  namespace: default
  labels:
    app: upstream-busybox
spec:
  containers:
  - name: busybox
    image: busybox
    command:
      - sleep
      - "3600"
    imagePullPolicy: IfNotPresent
  restartPolicy: Always
"""

MISSING_TAG_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx-missing-tag
  labels:
    app: upstream-missing
spec:
  containers:
  - name: nginx
    image: nginx:0.0.1-not-served
"""


def pods(lab: Lab, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(lab.pbctl("get", "pods", "-l", selector, "-o", "json"))["items"]
    return items


def running(lab: Lab, selector: str, count: int) -> list[dict[str, Any]]:
    ok = [p for p in pods(lab, selector) if p.get("status", {}).get("phase") == "Running"
          and not p["metadata"].get("deletionTimestamp")
          and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
    return ok if len(ok) == count else []


def test_docs_nginx_deployment_runs_and_serves(lab: Lab, tmp_path: Path) -> None:
    f = tmp_path / "nginx-deployment.yaml"
    f.write_text(NGINX_DEPLOYMENT)
    lab.pbctl("apply", "-f", str(f))
    lab.pbctl("rollout", "status", "deployment/nginx-deployment", "--timeout", "150s", timeout=180)
    ready = poll(lambda: running(lab, "app=nginx", 3), 120, "3 Running nginx pods")
    for p in ready:
        assert p["spec"]["containers"][0]["image"] == "nginx:1.14.2"  # stored as written
        status = p["status"]["containerStatuses"][0]
        assert status["image"].endswith("nginx:1.14.2"), status
    pod = ready[0]
    res = lab.in_node(pod["spec"]["nodeName"], "curl", "-fsS", "--max-time", "5", f"http://{pod['status']['podIP']}/")
    assert res.returncode == 0 and "Welcome to nginx!" in res.stdout, res
    lab.pbctl("delete", "-f", str(f))


def test_busybox_pod_runs(lab: Lab, tmp_path: Path) -> None:
    f = tmp_path / "busybox.yaml"
    f.write_text(BUSYBOX_POD)
    lab.pbctl("apply", "-f", str(f))
    poll(lambda: running(lab, "app=upstream-busybox", 1), 120, "the busybox pod Running")
    lab.pbctl("delete", "-f", str(f))


def test_tag_not_served_fails_to_pull(lab: Lab, tmp_path: Path) -> None:
    f = tmp_path / "missing.yaml"
    f.write_text(MISSING_TAG_POD)
    lab.pbctl("apply", "-f", str(f))

    def pull_failed() -> dict[str, Any] | None:
        for p in pods(lab, "app=upstream-missing"):
            for c in p.get("status", {}).get("containerStatuses", []):
                waiting = c.get("state", {}).get("waiting", {})
                if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                    return dict(waiting)
        return None

    waiting = poll(pull_failed, 90, "ErrImagePull/ImagePullBackOff")
    # The registry's reason, not a fallback to the internet: containerd asked the lab registry.
    assert "docker.io/library/nginx:0.0.1-not-served" in waiting.get("message", ""), waiting
    assert "not found" in waiting.get("message", ""), waiting
    lab.pbctl("delete", "-f", str(f))
