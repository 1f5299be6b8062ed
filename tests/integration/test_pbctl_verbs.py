"""pbctl's kubectl-style verbs against a real apiserver (etcd + in-process pb-apiserver): the create
generators and run, patch, set image|env|resources, wait, and port-forward's refusal, with their errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer
from tests.integration.test_pbctl import Pbctl

pytestmark = pytest.mark.integration


@pytest.fixture
def pbctl(apiserver: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Pbctl:
    cfg = tmp_path / "pbconfig"
    apiserver.write_kubeconfig(cfg)
    return Pbctl(cfg, capsys)


async def test_create_generators_and_run(pbctl: Pbctl, apiserver: ApiServer) -> None:
    c = apiserver.client
    assert await pbctl.ok("create", "namespace", "demo") == "namespace/demo created\n"
    rc, _, err = await pbctl("create", "namespace", "demo")
    assert rc == 1 and err.strip() == 'Error from server (AlreadyExists): namespaces "demo" already exists'
    assert await pbctl.ok("-n", "demo", "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2",
                          "--port=80") == "deployment.apps/web created\n"
    d = await c.get(apps.Deployment, "web", namespace="demo")
    assert (d.spec.replicas, dict(d.spec.selector.match_labels), d.spec.template.spec.containers[0].name,
            d.spec.template.spec.containers[0].ports[0].container_port) == (2, {"app": "web"}, "nginx", 80)
    assert await pbctl.ok("-n", "demo", "create", "service", "clusterip", "web", "--tcp=80:8080") == \
        "service/web created\n"
    assert await pbctl.ok("-n", "demo", "create", "svc", "nodeport", "np", "--tcp=80") == "service/np created\n"
    assert await pbctl.ok("-n", "demo", "create", "service", "loadbalancer", "lb", "--tcp=443:8443",
                          "-o", "name") == "service/lb\n"
    svc = await c.get(core.Service, "web", namespace="demo")
    assert (svc.spec.type, svc.spec.ports[0].name, svc.spec.ports[0].target_port.int_val,
            dict(svc.spec.selector)) == ("ClusterIP", "80-8080", 8080, {"app": "web"})
    assert (await c.get(core.Service, "np", namespace="demo")).spec.ports[0].node_port > 0
    assert await pbctl.ok("-n", "demo", "create", "configmap", "cfg", "--from-literal=a=1") == "configmap/cfg created\n"
    assert dict((await c.get(core.ConfigMap, "cfg", namespace="demo")).data) == {"a": "1"}
    assert await pbctl.ok("-n", "demo", "create", "secret", "generic", "s", "--from-literal=pw=hunter2") \
        == "secret/s created\n"
    assert dict((await c.get(core.Secret, "s", namespace="demo")).data) == {"pw": b"hunter2"}
    assert await pbctl.ok("-n", "demo", "create", "sa", "robot") == "serviceaccount/robot created\n"
    assert await pbctl.ok("-n", "demo", "run", "box", "--image=busybox", "--restart=Never", "--env=A=B",
                          "--", "sleep", "3600") == "pod/box created\n"
    pod = await c.get(core.Pod, "box", namespace="demo")
    assert (dict(pod.metadata.labels), list(pod.spec.containers[0].args), pod.spec.restart_policy) == \
        ({"run": "box"}, ["sleep", "3600"], "Never")

    # Dry runs write nothing; client dry-run prints kubectl's object without asking the server.
    out = await pbctl.ok("create", "ns", "ghost", "--dry-run=client", "-o", "yaml")
    assert out == "apiVersion: v1\nkind: Namespace\nmetadata:\n  creationTimestamp: null\n  name: ghost\n" \
                  "spec: {}\nstatus: {}\n"
    assert await pbctl.ok("create", "ns", "ghost", "--dry-run=server") == "namespace/ghost created (server dry run)\n"
    served = yaml.safe_load(await pbctl.ok("create", "ns", "ghost", "--dry-run=server", "-o", "yaml"))
    assert served["metadata"]["name"] == "ghost"
    rc, _, err = await pbctl("get", "ns", "ghost")
    assert rc == 1 and "NotFound" in err

    # Refusals: the server's validation names the field; missing flags are kubectl's errors.
    rc, _, err = await pbctl("create", "deployment", "Bad_Name", "--image=nginx")
    assert rc == 1 and err.startswith('The Deployment "Bad_Name" is invalid') and "metadata.name" in err
    rc, _, err = await pbctl("create", "deployment", "x")
    assert rc == 1 and err.strip() == 'error: required flag(s) "image" not set'
    rc, _, err = await pbctl("create", "service", "clusterip", "x")
    assert rc == 1 and err.strip() == "error: at least one tcp port specifier must be provided"
    rc, _, err = await pbctl("create", "configmap", "x", "--from-literal=nokey")
    assert rc == 1 and err.strip() == "error: invalid literal source nokey, expected key=value"


async def _deployment(pbctl: Pbctl) -> None:
    await pbctl.ok("create", "deployment", "web", "--image=nginx:1.25", "--image=busybox")


async def test_patch(pbctl: Pbctl, apiserver: ApiServer) -> None:
    c = apiserver.client
    await _deployment(pbctl)
    assert await pbctl.ok("patch", "deployment", "web", "-p", '{"spec":{"replicas":3}}') == \
        "deployment.apps/web patched\n"
    assert await pbctl.ok("patch", "deploy/web", "--type=merge", "-p", "spec: {replicas: 3}") == \
        "deployment.apps/web patched (no change)\n"
    # A strategic patch merges containers by name; a JSON patch addresses them by index.
    await pbctl.ok("patch", "deployment/web", "-p",
                   '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.36"}]}}}}')
    d = await c.get(apps.Deployment, "web", namespace="default")
    assert [x.image for x in d.spec.template.spec.containers] == ["nginx:1.25", "busybox:1.36"]
    await pbctl.ok("patch", "deployment/web", "--type=json", "-p",
                   '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]')
    d = await c.get(apps.Deployment, "web", namespace="default")
    assert d.spec.template.spec.containers[0].image == "nginx:1.27" and d.spec.replicas == 3
    assert await pbctl.ok("patch", "deployment/web", "--subresource=scale", "--type=merge",
                          "-p", '{"spec":{"replicas":1}}') == "deployment.apps/web patched\n"
    assert (await c.get(apps.Deployment, "web", namespace="default")).spec.replicas == 1
    out = await pbctl.ok("patch", "deployment/web", "--dry-run=server", "-p", '{"spec":{"replicas":9}}', "-o", "json")
    assert json.loads(out)["spec"]["replicas"] == 9
    assert (await c.get(apps.Deployment, "web", namespace="default")).spec.replicas == 1

    rc, _, err = await pbctl("patch", "deployment", "nope", "-p", "{}")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    rc, _, err = await pbctl("patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"replicas":-1}}')
    assert rc == 1 and 'The Deployment "web" is invalid' in err and "spec.replicas" in err
    rc, _, err = await pbctl("patch", "deployment", "web", "--type=json", "-p", '{"spec":{}}')
    assert (rc, err.strip()) == (1, "Error from server (BadRequest): a JSON patch must be a JSON array of operations")
    rc, _, err = await pbctl("patch", "deployment", "web", "-p", '{"spec":')
    assert rc == 1 and err.startswith('error: unable to parse "{"spec":"')
    rc, _, err = await pbctl("patch", "deployment", "web", "--type=json",
                             "-p", '[{"op":"test","path":"/spec/replicas","value":5}]')
    assert rc == 1 and err.startswith("Error from server")
    rc, _, err = await pbctl("patch", "deployment", "web")
    assert rc == 1 and "must specify --patch or --patch-file" in err
    assert (await c.get(apps.Deployment, "web", namespace="default")).spec.replicas == 1  # nothing half-written


def quantities(m: Mapping[str, Any]) -> dict[str, str]:
    return {k: v.string for k, v in m.items()}


async def test_set(pbctl: Pbctl, apiserver: ApiServer) -> None:
    c = apiserver.client
    await _deployment(pbctl)
    assert await pbctl.ok("set", "image", "deployment/web", "nginx=nginx:1.27") == \
        "deployment.apps/web image updated\n"
    assert await pbctl.ok("set", "image", "deployment/web", "nginx=nginx:1.27") == ""  # nothing to change
    assert await pbctl.ok("set", "env", "deployment/web", "A=1", "B=2") == "deployment.apps/web env updated\n"
    assert await pbctl.ok("set", "env", "deployment/web", "-c", "nginx", "A-") == "deployment.apps/web env updated\n"
    assert await pbctl.ok("set", "env", "deployment/web", "--list", "-c", "nginx") == \
        "# Deployment web, container nginx\nB=2\n"
    assert await pbctl.ok("set", "resources", "deployment/web", "-c", "nginx", "--limits=cpu=200m,memory=512Mi",
                          "--requests=cpu=100m") == "deployment.apps/web resource requirements updated\n"
    spec = (await c.get(apps.Deployment, "web", namespace="default")).spec.template.spec
    nginx, box = spec.containers
    assert nginx.image == "nginx:1.27"
    assert [e.name for e in nginx.env] == ["B"] and [e.name for e in box.env] == ["A", "B"]
    assert quantities(nginx.resources.limits) == {"cpu": "200m", "memory": "512Mi"}
    assert quantities(nginx.resources.requests) == {"cpu": "100m"}
    assert not box.resources.limits

    await pbctl.ok("run", "p", "--image=busybox")
    assert await pbctl.ok("set", "image", "pod/p", "p=busybox:1.36") == "pod/p image updated\n"
    assert (await c.get(core.Pod, "p", namespace="default")).spec.containers[0].image == "busybox:1.36"

    rc, _, err = await pbctl("set", "image", "deployment/web", "nope=x")
    assert rc == 1 and err.strip() == 'error: unable to find container named "nope"'
    rc, _, err = await pbctl("set", "image", "deployment/missing", "nginx=x")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): deployments.apps "missing" not found'
    rc, _, err = await pbctl("set", "resources", "deployment/web", "--limits=cpu")
    assert rc == 1 and "expected NAME=QUANTITY" in err
    rc, _, err = await pbctl("set", "resources", "deployment/web", "--limits=cpu=lots")
    assert (rc, err.strip()) == (1, "error: quantities must match the regular expression "
                                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    rc, _, err = await pbctl("set", "resources", "deployment/web", "--limits=cpu=1.2.3")
    assert rc == 1 and "Invalid" in err and "spec.template.spec.containers[0].resources.limits[cpu]" in err
    spec = (await c.get(apps.Deployment, "web", namespace="default")).spec.template.spec
    assert quantities(spec.containers[0].resources.limits) == {"cpu": "200m", "memory": "512Mi"}  # nothing half-written


async def test_wait(pbctl: Pbctl, apiserver: ApiServer) -> None:
    c = apiserver.client
    await pbctl.ok("run", "w", "--image=busybox")

    async def ready_soon() -> None:
        await asyncio.sleep(0.5)
        pod = await c.get(core.Pod, "w", namespace="default")
        pod.status.phase = "Running"
        cond = pod.status.conditions.add()
        cond.type, cond.status = "Ready", "True"
        await c.update_status(pod)

    task = asyncio.create_task(ready_soon())
    assert await pbctl.ok("wait", "--for=condition=Ready", "pod/w", "--timeout=20s") == "pod/w condition met\n"
    await task
    assert await pbctl.ok("wait", "--for=jsonpath={.status.phase}=Running", "pod", "w") == "pod/w condition met\n"
    assert await pbctl.ok("wait", "--for=condition=ready", "pods", "--all") == "pod/w condition met\n"
    rc, out, err = await pbctl("wait", "--for=condition=Ready=false", "pod/w", "--timeout=1s")
    assert (rc, out, err.strip()) == (1, "", "error: timed out waiting for the condition on pods/w")
    rc, _, err = await pbctl("wait", "--for=condition=Ready", "pod/nope", "--timeout=1s")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): pods "nope" not found'
    rc, _, err = await pbctl("wait", "--for=sunshine", "pod/w")
    assert rc == 1 and "unrecognized condition" in err

    async def delete_soon() -> None:
        await asyncio.sleep(0.5)
        await c.delete(core.Pod, "w", namespace="default", grace_period_seconds=0)

    task = asyncio.create_task(delete_soon())
    assert await pbctl.ok("wait", "--for=delete", "pod/w", "--timeout=20s") == "pod/w condition met\n"
    await task
    assert await pbctl.ok("wait", "--for=delete", "pod/w", "--timeout=1s") == ""  # already gone: kubectl is silent
    rc, _, err = await pbctl("wait", "--for=condition=Ready", "pods", "--all", "--timeout=1s")
    assert rc == 1 and err.strip() == "error: no matching resources found"


async def test_port_forward_bad_targets_are_refused_clearly(pbctl: Pbctl) -> None:
    # Forwarding itself needs a real node: tests/integration/test_port_forward.py.
    rc, _, err = await pbctl("port-forward", "pod/x", "8080:80")
    assert rc == 1 and 'pods "x" not found' in err
    rc, _, err = await pbctl("port-forward", "cronjob/x", "8080:80")
    assert rc == 1 and "cannot port-forward to cronjob" in err
    rc, _, err = await pbctl("port-forward", "pod/x")
    assert rc == 1 and "TYPE/NAME and list of ports are required" in err
