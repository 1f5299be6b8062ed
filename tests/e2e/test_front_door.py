"""Right after `lab up`, with no export, as after `kind create cluster`: real kubectl (the REST API over HTTPS
through the host's 127.0.0.1 relay) and pbctl (gRPC through the other relay) both reach the lab through the
`pybernetes-lab` context it merged into ~/.kube/config. HOME is the session lab's temp home
(tests/e2e/conftest.py), and neither KUBECONFIG, PBCONFIG nor --kubeconfig is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import OTHER_CONTEXT, REPO, Lab

pytestmark = pytest.mark.e2e
KUBECTL = Path(sys.prefix) / "bin" / "kubectl"


def run(lab: Lab, *argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PBCONFIG")}
    env["HOME"] = str(lab.home)
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert res.returncode == 0, f"{' '.join(argv)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_kubectl_and_pbctl_work_with_no_export(lab: Lab) -> None:
    assert KUBECTL.exists(), f"{KUBECTL} missing: run deploy/get-kubectl.sh (deploy/install-deps.sh does)"
    nodes = {f"node/{n['name']}" for n in lab.state().info["nodes"]}
    assert set(run(lab, str(KUBECTL), "get", "nodes", "-o", "name").split()) == nodes
    assert set(run(lab, sys.executable, "-m", "pbctl.main", "get", "nodes", "-o", "name").split()) == nodes
    assert run(lab, str(KUBECTL), "config", "current-context").strip() == "pybernetes-lab"
    contexts = run(lab, str(KUBECTL), "config", "get-contexts", "-o", "name").split()
    assert sorted(contexts) == sorted([OTHER_CONTEXT, "pybernetes-lab"])  # the user's own context kept
    # The in-cluster `kubernetes` Service points at the REST API's port, as in Kubernetes.
    target = run(lab, str(KUBECTL), "get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].ports[0].port}")
    assert target == "6443"
