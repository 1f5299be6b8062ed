"""pbctl's create generators and run build exactly kubectl 1.33's objects: `--dry-run=client -o yaml|json`
compared byte for byte with kubectl's output, recorded here and, when the real kubectl is installed
(`./deploy/get-kubectl.sh`), with a live run of it too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pbctl import generators
from pbctl.common import CliError
from pbctl.main import run
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core

KUBECTL = Path(sys.prefix) / "bin" / "kubectl"

# kubectl create ... --dry-run=client -o yaml, as kubectl 1.33 printed it.
RECORDED = {
    "create deployment web --image=nginx": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx
        name: nginx
        resources: {}
status: {}
""",
    "create deployment web --image=nginx:1.25 --image=busybox@sha256:abc --replicas=3 --port=80": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.25
        name: nginx
        ports:
        - containerPort: 80
        resources: {}
      - image: busybox@sha256:abc
        name: busybox
        resources: {}
status: {}
""",
    "create namespace demo": """\
apiVersion: v1
kind: Namespace
metadata:
  creationTimestamp: null
  name: demo
spec: {}
status: {}
""",
    "create service clusterip web --tcp=80:8080": """\
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  ports:
  - name: 80-8080
    port: 80
    protocol: TCP
    targetPort: 8080
  selector:
    app: web
  type: ClusterIP
status:
  loadBalancer: {}
""",
    "create service clusterip hl --clusterip=None": """\
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: hl
  name: hl
spec:
  clusterIP: None
  selector:
    app: hl
  type: ClusterIP
status:
  loadBalancer: {}
""",
    "create service nodeport web --tcp=80:8080 --node-port=30080": """\
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  ports:
  - name: 80-8080
    nodePort: 30080
    port: 80
    protocol: TCP
    targetPort: 8080
  selector:
    app: web
  type: NodePort
status:
  loadBalancer: {}
""",
    "create service loadbalancer web --tcp=80:http --tcp=443": """\
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  ports:
  - name: 80-http
    port: 80
    protocol: TCP
    targetPort: http
  - name: "443"
    port: 443
    protocol: TCP
    targetPort: 443
  selector:
    app: web
  type: LoadBalancer
status:
  loadBalancer: {}
""",
    "create configmap cm --from-literal=b=x --from-literal=a=1 -n shop": """\
apiVersion: v1
data:
  a: "1"
  b: x
kind: ConfigMap
metadata:
  creationTimestamp: null
  name: cm
  namespace: shop
""",
    "create secret generic s --from-literal=pw=hunter2 --type=Opaque": """\
apiVersion: v1
data:
  pw: aHVudGVyMg==
kind: Secret
metadata:
  creationTimestamp: null
  name: s
type: Opaque
""",
    "create serviceaccount sa": """\
apiVersion: v1
kind: ServiceAccount
metadata:
  creationTimestamp: null
  name: sa
""",
    # kubectl run asks the server for discovery even with --dry-run=client: recorded against a cluster.
    "run box --image=busybox --port=80 --env=A=B --labels=b=2,a=1 --restart=Never -- sleep 10": """\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    a: "1"
    b: "2"
  name: box
spec:
  containers:
  - args:
    - sleep
    - "10"
    env:
    - name: A
      value: B
    image: busybox
    name: box
    ports:
    - containerPort: 80
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Never
status: {}
""",
}

JSON_DEPLOYMENT = """\
{
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "web",
        "creationTimestamp": null,
        "labels": {
            "app": "web"
        }
    },
    "spec": {
        "replicas": 1,
        "selector": {
            "matchLabels": {
                "app": "web"
            }
        },
        "template": {
            "metadata": {
                "creationTimestamp": null,
                "labels": {
                    "app": "web"
                }
            },
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx",
                        "resources": {}
                    }
                ]
            }
        },
        "strategy": {}
    },
    "status": {}
}
"""


async def pbctl_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert await run(["--server", "127.0.0.1:1", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize("command", list(RECORDED))
async def test_dry_run_client_yaml_is_kubectls(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = command.split()
    cut = argv.index("--") if "--" in argv else len(argv)
    argv = [*argv[:cut], "--dry-run=client", "-o", "yaml", *argv[cut:]]
    assert await pbctl_out(capsys, argv) == RECORDED[command]


@pytest.mark.skipif(not KUBECTL.exists(), reason="the real kubectl is not installed (./deploy/get-kubectl.sh)")
@pytest.mark.parametrize("command", [c for c in RECORDED if c.startswith("create")])
@pytest.mark.parametrize("output", ["yaml", "json"])
async def test_dry_run_client_matches_live_kubectl(command: str, output: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*command.split(), "--dry-run=client", "-o", output]
    live = subprocess.run([str(KUBECTL), *argv], capture_output=True, text=True, timeout=60, check=True).stdout
    assert await pbctl_out(capsys, argv) == live


async def test_json_and_name_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = await pbctl_out(capsys, ["create", "deployment", "web", "--image=nginx", "--dry-run=client", "-o", "json"])
    assert out == JSON_DEPLOYMENT
    assert await pbctl_out(capsys, ["create", "ns", "x", "--dry-run=client", "-o", "name"]) == "namespace/x\n"
    assert await pbctl_out(capsys, ["create", "deploy", "x", "--image=a", "--dry-run"]) == \
        "deployment.apps/x created (dry run)\n"


def test_container_names() -> None:
    assert generators.container_name("registry.k8s.io/pause:3.9") == "pause"
    assert generators.container_name("nginx@sha256:abc") == "nginx"
    name = generators.container_name("reg.io/my_app:1.0")
    assert name.startswith("my-app-") and len(name) == len("my-app-") + 5


def test_run_with_command_and_default_labels() -> None:
    pod = generators.to_message(generators.run_pod("box", "ns1", "busybox", command=True, args=["sh", "-c", "x"]))
    assert isinstance(pod, core.Pod)
    assert (pod.metadata.namespace, dict(pod.metadata.labels), list(pod.spec.containers[0].command),
            pod.spec.restart_policy, pod.spec.dns_policy) == ("ns1", {"run": "box"}, ["sh", "-c", "x"], "Always",
                                                              "ClusterFirst")


def test_generated_objects_are_typed_messages() -> None:
    d = generators.to_message(generators.deployment("web", "", ["nginx"], 2, 8080))
    assert isinstance(d, apps.Deployment)
    assert d.spec.template.spec.containers[0].ports[0].container_port == 8080
    svc = generators.to_message(generators.service("loadbalancer", "web", "", ["80:http"]))
    assert isinstance(svc, core.Service) and svc.spec.ports[0].target_port.str_val == "http"
    secret = generators.to_message(generators.secret_generic("s", "", ["k=v"], []))
    assert isinstance(secret, core.Secret) and secret.data["k"] == b"v"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: generators.service("clusterip", "x", "", []), "at least one tcp port specifier must be provided"),
    (lambda: generators.configmap("x", "", ["novalue"], []), "invalid literal source novalue, expected key=value"),
    (lambda: generators.configmap("x", "", ["a=1", "a=2"], []),
     'cannot add key "a", another key by that name already exists'),
    (lambda: generators.run_pod("x", "", "i", restart="Sometimes"), "invalid restart policy: Sometimes"),
])
def test_generator_refusals(call: object, message: str) -> None:
    with pytest.raises(CliError) as e:
        call()  # type: ignore[operator]
    assert str(e.value) == message

