"""A ServiceAccount token used from inside a pod (issue 18): the official Python client's in-cluster config
(`kubernetes.config.load_incluster_config()`) in a lab pod lists the pods of its namespace over HTTPS through
the `kubernetes` Service (10.96.0.1:443), with the token, ca.crt and namespace the pod got mounted at
/var/run/secrets/kubernetes.io/serviceaccount and the KUBERNETES_SERVICE_HOST/PORT the kubelet set.

The lab's `python` image has only the standard library, so the pod mounts this checkout's virtualenv
site-packages (where `kubernetes` and its dependencies are installed) read-only by hostPath, plus the host's
shared libraries pydantic-core links (libgcc_s, librt...: the image carries only what its python needs); lab
nodes share the host's filesystem, and the image's libc is the host's.
The pod also prints its token's claims, to show the token is bound to the pod.
"""

from __future__ import annotations

import json
import site
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Lab

pytestmark = pytest.mark.e2e
NS = "sa-e2e"
SITE = Path(site.getsitepackages()[0])
SCRIPT = r"""
import base64, json, os
from kubernetes import client, config
config.load_incluster_config()
root = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(f"{root}/namespace").read()
pods = client.CoreV1Api().list_namespaced_pod(ns)
payload = open(f"{root}/token").read().split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
print(json.dumps({"namespace": ns, "host": os.environ["KUBERNETES_SERVICE_HOST"],
                  "port": os.environ["KUBERNETES_SERVICE_PORT"], "files": sorted(os.listdir(root)),
                  "pods": sorted(p.metadata.name for p in pods.items), "sub": claims["sub"],
                  "bound": claims["kubernetes.io"]["pod"]["name"]}))
"""


def host_libs() -> dict[str, Path]:
    """name -> host path of each library pydantic-core's extension links, but libc and the loader."""
    ext = next((SITE / "pydantic_core").glob("_pydantic_core*.so"), None)
    if ext is None:
        return {}
    out = subprocess.run(["ldd", str(ext)], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0].strip()
        if path.startswith("/") and not name.startswith(("libc.so", "ld-linux")):
            libs[name] = Path(path).resolve()
    return libs


def manifest(libs: dict[str, Path]) -> str:
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "incluster", "namespace": NS},
        "spec": {
            "serviceAccountName": "reader", "restartPolicy": "Never",
            "containers": [{
                "name": "client", "image": "python:3.11", "command": ["python3", "-c", SCRIPT],
                "env": [{"name": "PYTHONPATH", "value": "/opt/site"},
                        {"name": "LD_LIBRARY_PATH", "value": "/opt/hostlib"}],
                "volumeMounts": [{"name": "site", "mountPath": "/opt/site", "readOnly": True},
                                 *({"name": f"lib-{i}", "mountPath": f"/opt/hostlib/{name}", "readOnly": True}
                                   for i, name in enumerate(libs))]}],
            "volumes": [{"name": "site", "hostPath": {"path": str(SITE), "type": "Directory"}},
                        *({"name": f"lib-{i}", "hostPath": {"path": str(path), "type": "File"}}
                          for i, path in enumerate(libs.values()))]}}
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": NS}},
        # RBAC: the pod's account may read its namespace (Kubernetes' `view`), nothing more.
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader-view", "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]},
        pod,
    ]
    return "\n---\n".join(json.dumps(d) for d in docs)


def phase(lab: Lab) -> str:
    return lab.pbctl("get", "pod", "incluster", "-n", NS, "-o", "jsonpath={.status.phase}").strip()


def test_incluster_python_client_lists_its_namespace(lab: Lab, tmp_path: Path) -> None:
    if not (SITE / "kubernetes").is_dir():
        pytest.skip("the kubernetes package is not installed (pip install -e '.[dev]')")
    path = tmp_path / "incluster.yaml"
    path.write_text(manifest(host_libs()))
    lab.pbctl("apply", "-f", str(path))
    try:
        deadline = time.monotonic() + 180
        while phase(lab) not in ("Succeeded", "Failed"):
            assert time.monotonic() < deadline, lab.pbctl("describe", "pod", "incluster", "-n", NS, check=False)
            time.sleep(1)
        logs = lab.pbctl("logs", "incluster", "-n", NS, check=False)
        assert phase(lab) == "Succeeded", f"the in-cluster client failed:\n{logs}"
        got = json.loads(logs.strip().splitlines()[-1])
        assert got == {"namespace": NS, "host": "10.96.0.1", "port": "443", "files": ["ca.crt", "namespace", "token"],
                       "pods": ["incluster"], "sub": f"system:serviceaccount:{NS}:reader", "bound": "incluster"}
        cm = json.loads(lab.pbctl("get", "configmap", "kube-root-ca.crt", "-n", NS, "-o", "json"))
        assert cm["data"]["ca.crt"] == (lab.dir / "control-plane" / "apiserver" / "pki" / "ca.crt").read_text()
    finally:
        lab.pbctl("delete", "namespace", NS, check=False)
