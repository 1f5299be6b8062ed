"""pb-kubelet against a real containerd (node netns) and the real apiserver: pods bound at create time,
asserted through the API."""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.images import INDEX_PAGE
from node_agent import runtime
from node_agent.cri import api_pb2 as pb
from pybernetes import errors, tls
from pybernetes.api import codec
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from tests.helpers import eventually
from tests.integration import fixtures_kubelet, fixtures_node
from tests.integration.fixtures_kubelet import NODE_NAME, KubeletEnv, make_pod
from tests.integration.fixtures_node import POD_CIDR

pytestmark = pytest.mark.integration

lab_images = fixtures_node.lab_images
lab_network = fixtures_node.lab_network
cri_node = fixtures_node.cri_node
kubelet_env = fixtures_kubelet.kubelet_env


async def get_pod(env: KubeletEnv, name: str) -> core.Pod:
    return await env.client.get(core.Pod, name, namespace="default")


async def wait_pod(env: KubeletEnv, name: str, check: Callable[[core.Pod], bool], timeout: float = 60.0,
                   what: str = "") -> core.Pod:
    async def probe() -> core.Pod:
        pod = await get_pod(env, name)
        assert check(pod), f"status now: {codec.to_dict(pod.status)}"
        return pod
    return await eventually(probe, timeout=timeout, interval=0.2, what=what or f"pod {name}")


def cond(pod: core.Pod, type_: str) -> str:
    return next((c.status for c in pod.status.conditions if c.type == type_), "")


async def events_for(env: KubeletEnv, name: str) -> list[core.Event]:
    evs = await env.client.list(core.Event, namespace="default")
    return [e for e in evs.items if e.involved_object.name == name]


async def reasons(env: KubeletEnv, name: str) -> set[str]:
    return {e.reason for e in await events_for(env, name)}


async def test_pod_runs_ready_serves_and_node_registers(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    pod = make_pod("web", ["httpd", "-f", "-p", "8080", "-h", "/www"])
    c = pod.spec.containers[0]
    c.ports.add(container_port=8080, name="http")
    c.readiness_probe.http_get.path = "/index.html"
    c.readiness_probe.http_get.port.type, c.readiness_probe.http_get.port.str_val = 1, "http"
    c.readiness_probe.period_seconds = 1
    env_var = c.env.add(name="MY_POD")
    env_var.value_from.field_ref.field_path = "metadata.name"
    c.resources.limits["memory"].string = "64Mi"
    c.resources.requests["cpu"].string = "100m"
    t0 = time.monotonic()
    await env.client.create(pod)
    got = await wait_pod(env, "web", lambda p: p.status.phase == "Running" and cond(p, "Ready") == "True",
                         what="web Running and Ready")
    print(f"web Running+Ready after {time.monotonic() - t0:.2f}s")
    assert ipaddress.ip_address(got.status.pod_ip) in ipaddress.ip_network(POD_CIDR)
    assert [i.ip for i in got.status.pod_ips] == [got.status.pod_ip]
    assert got.status.host_ip == fixtures_kubelet.NODE_IP
    assert got.status.HasField("start_time")
    cs = got.status.container_statuses[0]
    assert cs.name == "main" and cs.ready and cs.started and cs.restart_count == 0
    assert cs.container_id.startswith("containerd://") and cs.image_id
    assert cs.state.HasField("running")
    assert {cond(got, t) for t in ("Initialized", "ContainersReady", "PodScheduled")} == {"True"}

    res = env.node.host.run("curl", "-fsS", "--max-time", "2", f"http://{got.status.pod_ip}:8080/index.html",
                            check=False)
    assert res.returncode == 0 and res.stdout == INDEX_PAGE, res.stderr
    cid = cs.container_id.removeprefix("containerd://")
    out = await env.node.cri.exec_sync(cid, ["sh", "-c", "echo $MY_POD"])
    assert out.stdout == b"web\n"
    # CRI-standard log layout under the root dir.
    assert (env.root_dir / "pods" / got.metadata.uid / "main" / "0.log").exists()
    assert {"Created", "Started", "Pulled"} <= await eventually(
        lambda: reasons(env, "web"), what="events")

    node = await env.client.get(core.Node, NODE_NAME)
    assert node.metadata.labels["kubernetes.io/hostname"] == NODE_NAME
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert {a.type: a.address for a in node.status.addresses} == {"InternalIP": fixtures_kubelet.NODE_IP,
                                                                   "Hostname": NODE_NAME}
    assert node.status.capacity["pods"].string == "110"
    assert {"cpu", "memory", "ephemeral-storage"} <= set(node.status.allocatable)
    conds = {c.type: c.status for c in node.status.conditions}
    assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    lease = await env.client.get(coordination.Lease, NODE_NAME, namespace="kube-node-lease")
    assert lease.spec.holder_identity == NODE_NAME and lease.spec.lease_duration_seconds == 40
    first = lease.spec.renew_time.seconds * 10**9 + lease.spec.renew_time.nanos

    async def renewed() -> bool:
        ls = await env.client.get(coordination.Lease, NODE_NAME, namespace="kube-node-lease")
        return ls.spec.renew_time.seconds * 10**9 + ls.spec.renew_time.nanos > first
    await eventually(renewed, timeout=25, what="lease renewed")


async def test_crash_loop_backoff(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    await env.client.create(make_pod("crash", ["sh", "-c", "echo dying; exit 1"]))

    def looping(p: core.Pod) -> bool:
        cs = p.status.container_statuses
        return bool(cs) and cs[0].restart_count >= 1 and cs[0].state.waiting.reason == "CrashLoopBackOff"
    got = await wait_pod(env, "crash", looping, what="CrashLoopBackOff")
    cs = got.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    assert "back-off" in cs.state.waiting.message
    assert got.status.phase == "Running" and cond(got, "Ready") == "False"
    got = await wait_pod(env, "crash", lambda p: p.status.container_statuses[0].restart_count >= 2,
                         timeout=40, what="second restart")
    assert "BackOff" in await reasons(env, "crash")


async def test_restart_never_fails_with_exit_code(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    await env.client.create(make_pod("once", ["sh", "-c", "exit 3"], restart_policy="Never"))
    got = await wait_pod(env, "once", lambda p: p.status.phase == "Failed", what="Failed")
    t = got.status.container_statuses[0].state.terminated
    assert t.exit_code == 3 and t.reason == "Error" and got.status.container_statuses[0].restart_count == 0
    await env.client.create(make_pod("ok", ["sh", "-c", "exit 0"], restart_policy="OnFailure"))
    got = await wait_pod(env, "ok", lambda p: p.status.phase == "Succeeded", what="Succeeded")
    assert got.status.container_statuses[0].state.terminated.reason == "Completed"


async def test_liveness_failure_restarts(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    pod = make_pod("live", ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000"], grace=1)
    p = pod.spec.containers[0].liveness_probe
    p.exec.command.extend(["cat", "/tmp/healthy"])
    p.period_seconds, p.failure_threshold = 1, 1
    await env.client.create(pod)
    got = await wait_pod(env, "live", lambda p: bool(p.status.container_statuses)
                         and p.status.container_statuses[0].restart_count >= 1, timeout=60,
                         what="liveness restart")
    assert got.status.container_statuses[0].last_state.HasField("terminated")
    rs = await eventually(lambda: reasons(env, "live"), what="events")
    assert {"Unhealthy", "Killing"} <= rs


async def test_readiness_toggles_ready(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    pod = make_pod("ready", ["sleep", "1000"], grace=1)
    p = pod.spec.containers[0].readiness_probe
    p.exec.command.extend(["test", "-f", "/tmp/ready"])
    p.period_seconds, p.failure_threshold = 1, 1
    await env.client.create(pod)
    got = await wait_pod(env, "ready", lambda p: p.status.phase == "Running", what="Running")
    assert cond(got, "Ready") == "False" and cond(got, "ContainersReady") == "False"
    cid = got.status.container_statuses[0].container_id.removeprefix("containerd://")
    await env.node.cri.exec_sync(cid, ["touch", "/tmp/ready"])
    await wait_pod(env, "ready", lambda p: cond(p, "Ready") == "True" and p.status.container_statuses[0].ready,
                   what="Ready")
    await env.node.cri.exec_sync(cid, ["rm", "/tmp/ready"])
    await wait_pod(env, "ready", lambda p: cond(p, "Ready") == "False", what="not Ready again")


async def test_graceful_deletion_runs_sigterm_handler(kubelet_env: KubeletEnv, tmp_path: Path) -> None:
    env = kubelet_env
    out = tmp_path / "out"
    out.mkdir()
    script = "trap 'echo bye > /out/term; exit 0' TERM; echo started > /out/started; while true; do sleep 0.2; done"
    pod = make_pod("graceful", ["sh", "-c", script], grace=10)
    vol = pod.spec.volumes.add(name="out")
    vol.host_path.path = str(out)
    pod.spec.containers[0].volume_mounts.add(name="out", mount_path="/out")
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "echo pre > /out/prestop"])
    await env.client.create(pod)
    got = await wait_pod(env, "graceful", lambda p: p.status.phase == "Running", what="Running")
    await eventually(lambda: _exists(out / "started"), what="started file")
    uid = got.metadata.uid
    _, gone = await env.client.delete(core.Pod, "graceful", namespace="default")
    assert not gone

    async def deleted() -> bool:
        try:
            await get_pod(env, "graceful")
        except errors.NotFound:
            return True
        return False
    await eventually(deleted, timeout=30, what="pod removed from the API")
    assert (out / "term").read_text() == "bye\n"
    assert (out / "prestop").read_text() == "pre\n"
    assert await env.node.cri.list_pod_sandbox(label_selector={runtime.POD_UID: uid}) == []
    assert not (env.root_dir / "pods" / uid).exists()


async def _exists(p: Path) -> bool:
    return p.exists()


async def test_missing_image_reports_pull_errors(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    await env.client.create(make_pod("noimg", ["sleep", "10"], image="localhost:5000/nope:1"))
    got = await wait_pod(env, "noimg", lambda p: bool(p.status.container_statuses) and
                         p.status.container_statuses[0].state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"),
                         what="image pull error")
    assert "nope" in got.status.container_statuses[0].state.waiting.message
    assert got.status.phase == "Pending"
    await wait_pod(env, "noimg", lambda p: p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff",
                   what="ImagePullBackOff")
    rs = await eventually(lambda: reasons(env, "noimg"), what="events")
    assert {"Pulling", "Failed"} <= rs


async def test_bad_command_and_unknown_volume(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    await env.client.create(make_pod("badcmd", ["/no/such/binary"]))

    def start_error(p: core.Pod) -> bool:
        cs = p.status.container_statuses
        if not cs:
            return False
        w, t = cs[0].state.waiting, cs[0].last_state.terminated
        return (w.reason in ("RunContainerError", "CrashLoopBackOff") and
                ("no/such/binary" in w.message or "no/such/binary" in t.message))
    await wait_pod(env, "badcmd", start_error, what="RunContainerError")
    pod = make_pod("badvol", ["sleep", "100"])
    pod.spec.containers[0].volume_mounts.add(name="missing", mount_path="/m")
    try:
        await env.client.create(pod)
    except errors.Invalid:
        return  # the apiserver validated it; otherwise the kubelet must say why the pod waits
    got = await wait_pod(env, "badvol", lambda p: bool(p.status.container_statuses) and
                         p.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError",
                         what="CreateContainerConfigError")
    assert "missing" in got.status.container_statuses[0].state.waiting.message


async def test_kubelet_restart_adopts_running_containers(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    await env.client.create(make_pod("adopt", ["sleep", "1000"], grace=1))
    got = await wait_pod(env, "adopt", lambda p: p.status.phase == "Running", what="Running")
    cid = got.status.container_statuses[0].container_id
    await env.kubelet.stop()
    await env.kubelet.start()
    await wait_pod(env, "adopt", lambda p: p.status.phase == "Running", what="Running after restart")
    # Give the restarted kubelet a few sync rounds to (wrongly) act.
    await eventually(lambda: _sleep_true(3.0), timeout=10)
    got = await get_pod(env, "adopt")
    cs = got.status.container_statuses[0]
    assert cs.container_id == cid and cs.restart_count == 0 and cs.state.HasField("running")
    cts = await env.node.cri.list_containers(label_selector={runtime.POD_UID: got.metadata.uid})
    assert [c.id for c in cts] == [cid.removeprefix("containerd://")]
    sbs = await env.node.cri.list_pod_sandbox(label_selector={runtime.POD_UID: got.metadata.uid})
    assert len(sbs) == 1 and sbs[0].state == pb.SANDBOX_READY


async def _sleep_true(s: float) -> bool:
    import asyncio
    await asyncio.sleep(s)
    return True


async def test_apiserver_down_crash_still_restarted(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    script = "while [ ! -f /tmp/die ]; do sleep 0.2; done; exit 1"
    await env.client.create(make_pod("survivor", ["sh", "-c", script], grace=1))
    got = await wait_pod(env, "survivor", lambda p: p.status.phase == "Running", what="Running")
    uid = got.metadata.uid
    cid = got.status.container_statuses[0].container_id.removeprefix("containerd://")
    await env.apiserver.stop()
    try:
        await env.node.cri.exec_sync(cid, ["touch", "/tmp/die"])

        async def restarted() -> bool:
            cts = await env.node.cri.list_containers(label_selector={runtime.POD_UID: uid},
                                                     state=pb.CONTAINER_RUNNING)
            return any(c.id != cid for c in cts)
        await eventually(restarted, timeout=30, what="container restarted while the apiserver is down")
    finally:
        await env.apiserver.start()
    await wait_pod(env, "survivor", lambda p: p.status.container_statuses[0].restart_count == 1
                   and p.status.container_statuses[0].state.HasField("running"), timeout=30,
                   what="status caught up")


def health_tls(env: KubeletEnv) -> ssl.SSLContext:
    """The kubelet's health port is HTTPS (it has --client-ca-file): trust its self-signed serving certificate
    and present the admin's (system:masters may get /metrics; health paths need no certificate)."""
    pki = env.apiserver.pki
    return tls.client_context(env.root_dir / "pki" / "kubelet.crt", tls.CertPair(pki / "admin.crt", pki / "admin.key"))


async def http_get(port: int, path: str, ctx: ssl.SSLContext) -> tuple[int, str]:
    import asyncio
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())  # then read to EOF
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_checkpoint_keeps_pods_without_apiserver_and_orphans_are_removed(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    script = "while [ ! -f /tmp/die ]; do sleep 0.2; done; exit 1"
    await env.client.create(make_pod("ckpt", ["sh", "-c", script], grace=1))
    await env.client.create(make_pod("orphan", ["sleep", "1000"], grace=1))
    got = await wait_pod(env, "ckpt", lambda p: p.status.phase == "Running", what="Running")
    orphan = await wait_pod(env, "orphan", lambda p: p.status.phase == "Running", what="orphan Running")
    uid, cid = got.metadata.uid, got.status.container_statuses[0].container_id.removeprefix("containerd://")
    assert (env.root_dir / "checkpoints" / f"{uid}.pb").exists()

    # Kubelet restarts while the apiserver is down: it runs the checkpointed pods.
    await env.kubelet.stop()
    await env.client.delete(core.Pod, "orphan", namespace="default", grace_period_seconds=0)
    await env.apiserver.stop()
    try:
        await env.kubelet.start()
        await env.node.cri.exec_sync(cid, ["touch", "/tmp/die"])

        async def restarted() -> bool:
            cts = await env.node.cri.list_containers(label_selector={runtime.POD_UID: uid},
                                                     state=pb.CONTAINER_RUNNING)
            return any(c.id != cid for c in cts)
        await eventually(restarted, timeout=30, what="restart from checkpoint")
        # Unknown pods are not killed while the pod source has not synced.
        osel = {runtime.POD_UID: orphan.metadata.uid}
        assert await env.node.cri.list_containers(label_selector=osel, state=pb.CONTAINER_RUNNING)
    finally:
        await env.apiserver.start()
    await wait_pod(env, "ckpt", lambda p: p.status.container_statuses[0].restart_count == 1
                   and p.status.container_statuses[0].state.HasField("running"), timeout=40,
                   what="status caught up")

    async def orphan_gone() -> bool:
        return await env.node.cri.list_pod_sandbox(label_selector=osel) == []
    await eventually(orphan_gone, timeout=30, what="orphan sandbox removed")


async def test_containerd_restart_readyz_and_metrics(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    port, ctx = env.kubelet.cfg.health_port, health_tls(env)
    assert (await http_get(port, "/readyz", ctx))[0] == 200
    await env.client.create(make_pod("before", ["sleep", "1000"], grace=1))
    before = await wait_pod(env, "before", lambda p: p.status.phase == "Running", what="Running")
    await env.node.containerd.stop()
    try:
        code, body = await http_get(port, "/readyz", ctx)
        assert code == 500 and "containerd" in body
    finally:
        await env.node.containerd.start()
    await eventually(lambda: _ready(port, ctx), timeout=20, what="readyz ok again")
    await env.client.create(make_pod("after", ["sleep", "1000"], grace=1))
    await wait_pod(env, "after", lambda p: p.status.phase == "Running", timeout=60, what="Running after restart")
    got = await get_pod(env, "before")
    assert got.status.container_statuses[0].container_id == before.status.container_statuses[0].container_id
    _, text = await http_get(port, "/metrics", ctx)
    for m in ("kubelet_running_pods", "kubelet_running_containers", "kubelet_pod_start_duration_seconds_count",
              'kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"}',
              "kubelet_runtime_operations_errors_total"):
        assert m in text, m


async def _ready(port: int, ctx: ssl.SSLContext) -> bool:
    try:
        return (await http_get(port, "/readyz", ctx))[0] == 200
    except OSError:
        return False


async def test_configmap_secret_env_volumes_and_host_port_conflict(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "cfg", "default"
    cm.data["greeting"] = "hello"
    await env.client.create(cm)
    sec = core.Secret()
    sec.metadata.name, sec.metadata.namespace = "sec", "default"
    sec.data["password"] = b"s3cret"
    await env.client.create(sec)
    pod = make_pod("cfgpod", ["sleep", "1000"], grace=1)
    c = pod.spec.containers[0]
    e = c.env.add(name="GREETING")
    e.value_from.config_map_key_ref.name, e.value_from.config_map_key_ref.key = "cfg", "greeting"
    e = c.env.add(name="PASSWORD")
    e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key = "sec", "password"
    c.env.add(name="BOTH", value="$(GREETING)-$(PASSWORD)")
    v = pod.spec.volumes.add(name="cfg")
    v.config_map.name = "cfg"
    v = pod.spec.volumes.add(name="sec")
    v.secret.secret_name = "sec"
    v = pod.spec.volumes.add(name="scratch")
    v.empty_dir.SetInParent()
    v = pod.spec.volumes.add(name="info")
    v.downward_api.items.add(path="labels").field_ref.field_path = "metadata.labels"
    v = pod.spec.volumes.add(name="bundle")
    v.projected.sources.add().config_map.name = "cfg"
    v.projected.sources.add().secret.name = "sec"
    v.projected.sources.add().downward_api.items.add(path="name").field_ref.field_path = "metadata.name"
    pod.metadata.labels["tier"] = "web"
    c.volume_mounts.add(name="cfg", mount_path="/etc/cfg")
    c.volume_mounts.add(name="sec", mount_path="/etc/sec", read_only=True)
    c.volume_mounts.add(name="scratch", mount_path="/scratch")
    c.volume_mounts.add(name="info", mount_path="/etc/info", read_only=True)
    c.volume_mounts.add(name="bundle", mount_path="/etc/bundle", read_only=True)
    c.ports.add(container_port=80, host_port=18080)
    await env.client.create(pod)
    got = await wait_pod(env, "cfgpod", lambda p: p.status.phase == "Running", what="Running")
    cid = got.status.container_statuses[0].container_id.removeprefix("containerd://")
    out = await env.node.cri.exec_sync(cid, ["sh", "-c", "echo $BOTH; cat /etc/cfg/greeting; echo; "
                                                         "cat /etc/sec/password; echo; stat -c %a /etc/sec/password; "
                                                         "touch /scratch/x && echo ok; cat /etc/info/labels; echo; "
                                                         "cat /etc/bundle/greeting /etc/bundle/password; echo; "
                                                         "cat /etc/bundle/name"])
    assert out.stdout.decode().split() == ["hello-s3cret", "hello", "s3cret", "644", "ok", 'app="cfgpod"',
                                           'tier="web"', "hellos3cret", "cfgpod"], out

    clash = make_pod("clash", ["sleep", "1000"], grace=1)
    clash.spec.containers[0].ports.add(container_port=80, host_port=18080)
    await env.client.create(clash)
    got = await wait_pod(env, "clash", lambda p: p.status.phase == "Failed", what="rejected")
    assert got.status.reason == "NodePorts" and "18080" in got.status.message


async def test_init_containers_run_in_order_first(kubelet_env: KubeletEnv) -> None:
    env = kubelet_env
    pod = make_pod("init", ["sh", "-c", "cat /work/log; sleep 1000"], grace=1)
    pod.spec.volumes.add(name="work").empty_dir.SetInParent()
    for i, name in enumerate(("first", "second")):
        ic = pod.spec.init_containers.add(name=name, image=pod.spec.containers[0].image,
                                          image_pull_policy="IfNotPresent")
        ic.command.extend(["sh", "-c", f"echo {name} >> /work/log; sleep {0.5 * (1 - i)}"])
        ic.volume_mounts.add(name="work", mount_path="/work")
    pod.spec.containers[0].volume_mounts.add(name="work", mount_path="/work")
    await env.client.create(pod)
    got = await wait_pod(env, "init", lambda p: p.status.phase == "Running", what="Running after init")
    assert cond(got, "Initialized") == "True"
    assert [s.state.terminated.reason for s in got.status.init_container_statuses] == ["Completed", "Completed"]
    cid = got.status.container_statuses[0].container_id.removeprefix("containerd://")
    out = await env.node.cri.exec_sync(cid, ["cat", "/work/log"])
    assert out.stdout == b"first\nsecond\n"


async def test_node_pressure_conditions_follow_eviction_thresholds(kubelet_env: KubeletEnv) -> None:
    """Thresholds no machine meets turn the pressure conditions True with Kubernetes' reasons; the image
    filesystem comes from containerd (CRI ImageFsInfo); thresholds nothing crosses turn them back."""
    env = kubelet_env
    await env.kubelet.stop()
    env.kubelet.cfg.eviction_hard = "memory.available<1Ei,imagefs.available<100%,pid.available<1G"
    env.kubelet.cfg.eviction_pressure_transition_period = 0.0
    await env.kubelet.start()

    async def conditions(want: dict[str, tuple[str, str]]) -> dict[str, core.NodeCondition]:
        node = await env.client.get(core.Node, NODE_NAME)
        got = {c.type: c for c in node.status.conditions}
        assert {t: (got[t].status, got[t].reason) for t in want} == want
        return got

    got = await eventually(lambda: conditions({
        "MemoryPressure": ("True", "KubeletHasInsufficientMemory"),
        "DiskPressure": ("True", "KubeletHasDiskPressure"),
        "PIDPressure": ("True", "KubeletHasInsufficientPID"),
        "Ready": ("True", "KubeletReady")}), timeout=20, what="pressure conditions True")
    assert got["MemoryPressure"].message == "kubelet has insufficient memory available (memory.available<1Ei)"
    assert got["DiskPressure"].message == "kubelet has disk pressure (imagefs.available<100%)"
    # A new pod is refused as the eviction manager refuses it: Failed, reason Evicted, with the conditions.
    await env.client.create(make_pod("refused", ["sleep", "3600"]))
    refused = await wait_pod(env, "refused", lambda p: p.status.phase == "Failed", what="refused pod Failed")
    assert refused.status.reason == "Evicted"
    assert refused.status.message == "The node had condition: [MemoryPressure DiskPressure PIDPressure]. "
    assert "Evicted" in await eventually(lambda: reasons(env, "refused"), what="Evicted event")
    assert not await env.node.cri.list_pod_sandbox()

    mounts = [fs.fs_id.mountpoint for fs in await env.node.cri.image_fs_info()]
    assert mounts and Path(mounts[0]).is_relative_to(env.node.containerd.paths.root), mounts

    await env.kubelet.stop()
    env.kubelet.cfg.eviction_hard = "memory.available<1Ki,imagefs.available<0%"
    await env.kubelet.start()
    await eventually(lambda: conditions({
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID")}), timeout=20, what="pressure conditions False")


async def test_hard_eviction_ends_the_best_effort_pod_first(kubelet_env: KubeletEnv) -> None:
    """A memory threshold no machine meets: one pod per pass is killed and left Failed/Evicted, the pod
    using more than it requests first; the pod within its request goes on the next pass."""
    env = kubelet_env
    # BestEffort: any use is above its request
    greedy = make_pod("greedy", ["sh", "-c", "echo greedy was here; exec sleep 3600"], grace=30)
    modest = make_pod("modest", ["sleep", "3600"], grace=30)
    for res in ("requests", "limits"):
        getattr(modest.spec.containers[0].resources, res)["memory"].string = "64Mi"
        getattr(modest.spec.containers[0].resources, res)["cpu"].string = "100m"
    for p in (greedy, modest):
        await env.client.create(p)
    for name in ("greedy", "modest"):
        await wait_pod(env, name, lambda p: p.status.phase == "Running", what=f"{name} Running")

    await env.kubelet.stop()
    env.kubelet.cfg.eviction_hard = "memory.available<1Ei"
    env.kubelet.cfg.eviction_monitoring_period = 6.0
    await env.kubelet.start()

    evicted = await wait_pod(env, "greedy", lambda p: p.status.phase == "Failed", timeout=30, what="greedy evicted")
    assert evicted.status.reason == "Evicted"
    assert evicted.status.message.startswith("The node was low on resource: memory. Threshold quantity: 1Ei, ")
    # Killed at once (grace 0 for hard eviction, not its 30 s); its sandbox is stopped (no IP) and its
    # container kept, terminated, with its logs, until the pod is deleted.
    sandboxes = await env.node.cri.list_pod_sandbox(label_selector={"io.kubernetes.pod.name": "greedy"})
    assert sandboxes and all(sb.state == pb.SANDBOX_NOTREADY for sb in sandboxes)
    cs = evicted.status.container_statuses
    assert [c.name for c in cs] == ["main"] and cs[0].state.HasField("terminated") and not cs[0].ready
    log_file = env.root_dir / "pods" / evicted.metadata.uid / "main" / "0.log"
    assert log_file.read_text().rstrip().endswith("greedy was here"), log_file.read_text()
    assert (await get_pod(env, "modest")).status.phase == "Running"  # one pod per pass
    assert "Evicted" in await eventually(lambda: reasons(env, "greedy"), what="Evicted event")

    await wait_pod(env, "modest", lambda p: p.status.phase == "Failed" and p.status.reason == "Evicted",
                   timeout=30, what="modest evicted on a later pass")
