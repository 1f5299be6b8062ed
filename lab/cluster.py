"""The local lab: a control plane and N worker nodes, each in its own network namespace, in one command.

Topology (all namespaces named `pb-...`, joined by a bridge in `pb-lab-br` that has no uplink):

    pb-control-plane 172.30.0.10   etcd (127.0.0.1:2379 of this namespace only; only the apiserver talks
                                   to it), pb-apiserver :6443 (health :6444), pb-scheduler (:10259),
                                   pb-controller-manager (:10257), docker-registry :5000
    pb-node-i        172.30.0.1i   containerd (own root/state/socket under the lab dir), pb-kubelet
                                   (:10248), pb-proxy (:10256/:10249), registry forwarder 127.0.0.1:5000
    root namespace                 only a relay on 127.0.0.1:6443 (or a free port) -> the apiserver, so
                                   `pbctl` works from the host with <lab-dir>/admin.conf

Pod CIDRs are fixed, node-i gets 10.244.i.0/24: the lab creates the Node objects with spec.podCIDR before
the kubelets start (node IPAM in the controller manager keeps a podCIDR that is already set), passes the
same CIDR to the kubelet (--pod-cidr) and adds a static route per other node's CIDR inside every lab
namespace. Deterministic ranges make routes, docs and debugging simple and survive controller restarts.

`up` runs a plan of steps, printing one progress line per step; independent steps (node bring-up)
run concurrently. Everything made is recorded in <lab-dir>/state.json (lab.state) before or
right after it is made, so `down` removes exactly that, also after a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lab import netns
from lab.image_registry import relay as registry_relay
from lab.state import LabState, ProcessRecord

T = TypeVar("T")

DEFAULT_DIR = Path("/var/lib/pybernetes/lab")
DEFAULT_IMAGE_CACHE = Path("/var/tmp/pybernetes-images")
NETWORK = netns.Network("pb-lab")
CP_NETNS = "pb-control-plane"
CP_NAME = "control-plane"
SUBNET = "172.30.0"
CP_IP = f"{SUBNET}.10"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
# The tail of the lab bridge's /24: type=LoadBalancer Services get these (the controller manager's servicelb).
LB_POOL = "172.30.0.200-172.30.0.250"
APISERVER_PORT = 6443
APISERVER_HEALTH_PORT = 6444
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_PORT = 2381  # Prometheus scrapes this one: only the apiserver connects to the client port
SCHEDULER_PORT = 10259
CM_PORT = 10257
KUBELET_HEALTH_PORT = 10248
PROXY_HEALTH_PORT = 10256
PROXY_METRICS_PORT = 10249
REGISTRY_PORT = 5000
PROMETHEUS_PORT = 9090
COMPONENTS = ("etcd", "apiserver", "scheduler", "controller-manager", "containerd", "kubelet", "proxy")
CONTROL_PLANE_COMPONENTS = ("etcd", "apiserver", "scheduler", "controller-manager")

# component -> (console script, module for `python -m`)
_PROGRAMS = {
    "apiserver": ("pb-apiserver", "services.apiserver.main"),
    "scheduler": ("pb-scheduler", "services.scheduler.main"),
    "controller-manager": ("pb-controller-manager", "services.controllers.main"),
    "kubelet": ("pb-kubelet", "node_agent.main"),
    "proxy": ("pb-proxy", "netproxy.main"),
}


class LabError(Exception):
    """A step failed; the message says what and where to look."""


# ---- profiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    controller_manager: tuple[str, ...] = ()
    scheduler: tuple[str, ...] = ()
    kubelet: tuple[str, ...] = ()
    # passed only when the apiserver's --help lists them (DefaultTolerationSeconds lives there)
    apiserver_optional: tuple[str, ...] = ()


PROFILES = {
    # Kubernetes' defaults: node monitor grace 40 s, NoExecute tolerations 300 s, status every 10 s.
    "default": Profile("default", "Kubernetes' defaults (node grace 40 s, eviction after 300 s)"),
    # Failure handling visible within a minute: a dead node is NotReady after ~10 s, its pods are
    # evicted 20 s later. Single replicas, so leader election only costs time on restarts.
    "fast": Profile(
        "fast", "short timings (node grace 10 s, eviction after 20 s)",
        controller_manager=("--node-monitor-grace-period=10s", "--node-monitor-period=1s",
                            "--pod-eviction-timeout=20s", "--default-not-ready-toleration-seconds=20",
                            "--default-unreachable-toleration-seconds=20", "--leader-elect=false"),
        scheduler=("--leader-elect=false",),
        kubelet=("--node-status-update-frequency=2s", "--node-lease-duration=8", "--sync-frequency=5s"),
        apiserver_optional=("--default-not-ready-toleration-seconds=20",
                            "--default-unreachable-toleration-seconds=20"),
    ),
}


# ---- plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: int

    @property
    def netns(self) -> str:
        return f"pb-{self.name}"

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"


@dataclass
class Plan:
    dir: Path
    workers: int = 3
    profile: Profile = PROFILES["default"]
    image_cache: Path = DEFAULT_IMAGE_CACHE
    nodes: list[NodeSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.dir.resolve()
        if not self.nodes:
            self.nodes = [NodeSpec(f"node-{i}", i) for i in range(1, self.workers + 1)]

    @property
    def namespaces(self) -> list[str]:
        return [NETWORK.bridge_netns, CP_NETNS, *(n.netns for n in self.nodes)]

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    @property
    def admin_conf(self) -> Path:
        return self.path("admin.conf")

    def node_dir(self, node: str) -> Path:
        return self.path("nodes", node)

    def config_file(self, who: str) -> Path:
        return self.path("config", f"{who}.conf")


# ---- small helpers -----------------------------------------------------------------------------


def program(component: str) -> list[str]:
    """The command that starts a component: its console script if installed, else `python -m`."""
    script, module = _PROGRAMS[component]
    path = Path(sys.executable).parent / script
    if path.exists():
        return [str(path)]
    return [sys.executable, "-m", module]


def proxy_available() -> bool:
    try:
        return importlib.util.find_spec("netproxy.main") is not None
    except (ImportError, ValueError):
        return False


def _log_name(name: str) -> str:
    return name.replace("/", "-") + ".log"


def spawn(st: LabState, name: str, component: str, argv: Sequence[str], *, netns_name: str = "",
          node: str = "", pass_fds: Sequence[int] = ()) -> ProcessRecord:
    """Start a long-running lab process in its own session (it outlives `lab up`) and record it."""
    logs = Path(st.dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / _log_name(name)
    full = netns.nsenter(netns_name, argv) if netns_name else list(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PBCONFIG", None)
    with open(log_path, "ab") as logf:
        logf.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(full)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=st.dir, env=env, pass_fds=tuple(pass_fds))
    rec = ProcessRecord(name=name, component=component, argv=list(argv), log=str(log_path), netns=netns_name,
                        node=node, pid=proc.pid, started_at=time.time())
    from lab.state import proc_start_time

    rec.start_time = proc_start_time(proc.pid) or 0
    _CHILDREN.append(proc)
    st.add_process(rec)
    return rec


_CHILDREN: list[subprocess.Popen[bytes]] = []


def log_tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


async def run_cmd(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise LabError(f"{' '.join(argv)} timed out after {timeout:.0f} s") from None
    text = out.decode(errors="replace").strip()
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {text}")
    return proc.returncode or 0, text


async def http_get(netns_name: str | None, url: str, *, timeout: float = 1.0) -> tuple[bool, str]:
    """GET `url` from inside a network namespace (curl through nsenter); (2xx?, body)."""
    cmd = ["curl", "-sS", "--max-time", str(timeout), "-w", "\n%{http_code}", url]
    code, out = await run_cmd(netns.nsenter(netns_name, cmd) if netns_name else cmd, check=False,
                              timeout=timeout + 5)
    if code != 0:
        return False, out
    body, _, status = out.rpartition("\n")
    return status.startswith("2"), body


async def tcp_ok(host: str, port: int) -> bool:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    w.close()
    with contextlib.suppress(OSError):
        await w.wait_closed()
    return True


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0,
                   rec: ProcessRecord | None = None, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if rec is not None and not rec.alive():
            raise LabError(f"{what}: process exited; log {rec.log}:\n{log_tail(rec.log)}")
        if time.monotonic() > deadline:
            where = f"; log {rec.log}:\n{log_tail(rec.log)}" if rec is not None else ""
            raise LabError(f"{what}: not ready after {timeout:.0f} s{where}")
        await asyncio.sleep(interval)


# ---- progress ----------------------------------------------------------------------------------


class Progress:
    """Numbered progress lines: `[3/12] starting containerd on node-2 ... ok (0.3 s)`."""

    def __init__(self, total: int, out: Callable[[str], None] = print) -> None:
        self.total = total
        self.done = 0
        self.out = out

    async def step(self, title: str, fn: Callable[[], Awaitable[T]]) -> T:
        t0 = time.monotonic()
        try:
            result = await fn()
        except BaseException as e:
            self.done += 1
            if isinstance(e, subprocess.CalledProcessError):
                msg = f"{' '.join(map(str, e.cmd))} failed ({e.returncode}): {(e.stderr or e.stdout or '').strip()}"
            elif isinstance(e, asyncio.CancelledError):
                msg = "cancelled (another step failed)"
            else:
                msg = str(e) if isinstance(e, LabError | OSError | RuntimeError | TimeoutError) else repr(e)
            self.out(f"[{self.done}/{self.total}] {title} ... FAILED ({time.monotonic() - t0:.1f} s)\n  {msg}")
            raise
        self.done += 1
        note = f" — {result}" if isinstance(result, str) and result else ""
        self.out(f"[{self.done}/{self.total}] {title} ... ok ({time.monotonic() - t0:.1f} s){note}")
        return result


# ---- health checks (also used by `status` and `start`) ----------------------------------------


def health_check(st: LabState, rec: ProcessRecord) -> Callable[[], Awaitable[bool]] | None:
    """How to tell that a recorded process is serving, or None when only liveness applies."""
    c, ns = rec.component, rec.netns
    urls = {
        "etcd": f"http://127.0.0.1:{ETCD_CLIENT_PORT}/health",
        "apiserver": f"http://127.0.0.1:{APISERVER_HEALTH_PORT}/readyz",
        "scheduler": f"http://127.0.0.1:{SCHEDULER_PORT}/healthz",
        "controller-manager": f"http://127.0.0.1:{CM_PORT}/healthz",
        "kubelet": f"http://127.0.0.1:{KUBELET_HEALTH_PORT}/healthz",
        "proxy": f"http://127.0.0.1:{PROXY_HEALTH_PORT}/healthz",
        "registry": f"http://{CP_IP}:{REGISTRY_PORT}/v2/",
        "registry-forwarder": f"http://127.0.0.1:{REGISTRY_PORT}/v2/",
    }
    if c in urls:
        url = urls[c]

        async def http() -> bool:
            ok, _ = await http_get(ns, url)
            return ok
        return http
    if c == "containerd":
        sock = st.containerd.get(rec.node, {}).get("socket", "")

        async def cri() -> bool:
            if not sock or not Path(sock).exists():
                return False
            from node_agent.cri.client import CRIClient
            from node_agent.cri.errors import CRIError

            try:
                async with CRIClient(sock) as c:
                    await c.version(deadline=2.0)
                return True
            except CRIError:
                return False
        return cri
    if c == "prometheus":
        async def prom() -> bool:
            ok, _ = await http_get(CP_NETNS, f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready")
            return ok
        return prom
    if c == "relay":
        spec = st.info.get("relays", {}).get(rec.name, {})
        port = int(st.info.get(spec.get("port_key", "relay_port"), 0))

        async def relay() -> bool:
            return await tcp_ok("127.0.0.1", port)
        return relay
    return None


async def start_recorded(st: LabState, rec: ProcessRecord, *, timeout: float = 30.0) -> ProcessRecord:
    """(Re)start a recorded process with its recorded command line and wait until it is healthy."""
    if rec.component == "relay":
        spec = st.info.get("relays", {}).get(rec.name, {})
        new = start_relay(st, rec.name, port_key=spec.get("port_key", "relay_port"),
                          target=spec.get("target", f"127.0.0.1:{APISERVER_PORT}"))
    else:
        new = spawn(st, rec.name, rec.component, rec.argv, netns_name=rec.netns, node=rec.node)
    check = health_check(st, new)
    if check is not None:
        await wait_for(check, f"{new.name}", timeout=timeout, rec=new)
    return new


# ---- the relay: root-namespace loopback -> apiserver ------------------------------------------


def start_relay(st: LabState, name: str = "apiserver-relay", *, port_key: str = "relay_port",
                want: int = APISERVER_PORT, target: str = f"127.0.0.1:{APISERVER_PORT}") -> ProcessRecord:
    """Listen on 127.0.0.1:<port> in the root namespace; connect to `target` from the control plane.

    The listening socket is made here (root namespace) and handed to a relay process that runs inside the
    control-plane namespace, so nothing is routed into the lab from the host. The port is `want` if free
    (else any free port) and is recorded in the state's info under `port_key`.
    """
    want = int(st.info.get(port_key) or want)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", want))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    try:
        fd = sock.fileno()
        argv = [sys.executable, "-m", "lab.cluster", "relay", "--fd", str(fd), target]
        rec = spawn(st, name, "relay", argv, netns_name=CP_NETNS, pass_fds=[fd])
    finally:
        sock.close()
    st.info[port_key] = port
    st.info.setdefault("relays", {})[name] = {"port_key": port_key, "target": target}
    st.save()
    return rec


async def relay(fd: int, target: str) -> None:
    await registry_relay(target, sock=socket.socket(fileno=fd))


# ---- up ----------------------------------------------------------------------------------------


class Lab:
    def __init__(self, plan: Plan, out: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.out = out
        self.st = LabState(dir=str(plan.dir), profile=plan.profile.name, workers=plan.workers,
                           created_at=time.time())
        self.tokens: dict[str, str] = {}
        self.images: Any = None
        self.registry: Any = None
        self.has_proxy = proxy_available()
        self.flags: dict[str, set[str]] = {}

    # - steps -

    async def check_prerequisites(self) -> str:
        missing = [b for b in ("nsenter", "ip", "etcd", "containerd", "ctr", "runc", "curl", "skopeo", "umoci",
                               "docker-registry") if shutil.which(b) is None]
        if missing:
            raise LabError(f"missing programs: {', '.join(missing)} (see deploy/install-deps.sh)")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, containerd)")
        if not Path("/usr/lib/cni/bridge").exists():
            raise LabError("CNI plugins not found in /usr/lib/cni")
        taken = [ns for ns in self.plan.namespaces if netns.exists(ns)]
        if taken:
            raise LabError(f"namespaces {', '.join(taken)} already exist (another lab? run `lab down`"
                           " with its --dir)")
        return "" if self.has_proxy else "pb-proxy not available yet: nodes run without a service proxy"

    async def build_images(self) -> str:
        from lab.images import build_lab_images

        cached = (self.plan.image_cache / "lab-images.oci.tar").exists()
        self.images = await asyncio.to_thread(build_lab_images, self.plan.image_cache)
        return "cached" if cached else f"built in {self.plan.image_cache}"

    async def create_network(self) -> str:
        for ns in self.plan.namespaces:
            self.st.add_namespace(ns)
        await asyncio.to_thread(NETWORK.create)
        hosts = [(CP_NETNS, f"{CP_IP}/24")] + [(n.netns, f"{n.ip}/24") for n in self.plan.nodes]
        # One at a time: each veth's host end is briefly named eth0 inside the bridge namespace.
        for ns, addr in hosts:
            await asyncio.to_thread(NETWORK.add_host, ns, addr)
        return f"{NETWORK.bridge_netns} + {len(hosts)} hosts"

    async def routes(self) -> str:
        async def one(ns: str, own: int) -> None:
            await run_cmd(netns.nsenter(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
            for n in self.plan.nodes:
                if n.index != own:
                    await run_cmd(netns.nsenter(ns, ["ip", "route", "replace", n.pod_cidr, "via", n.ip]))
            # The service range gets no route here: each node's pb-proxy routes it into its sink device
            # (unmatched cluster IPs die there), and the lab hosts have no default route at all.
        await asyncio.gather(one(CP_NETNS, 0), *(one(n.netns, n.index) for n in self.plan.nodes))
        return f"pod CIDRs {', '.join(n.pod_cidr for n in self.plan.nodes)}"

    def write_credentials(self) -> None:
        """One token per component in the apiserver's token file, and a client config for each."""
        cp = self.plan.path("control-plane")
        cp.mkdir(parents=True, exist_ok=True)
        users = [("admin", "system:admin", "system:masters"),
                 ("scheduler", "system:kube-scheduler", ""),
                 ("controller-manager", "system:kube-controller-manager", ""),
                 ("proxy", "system:kube-proxy", "")]
        users += [(f"kubelet-{n.name}", f"system:node:{n.name}", "system:nodes") for n in self.plan.nodes]
        lines = []
        from pybernetes.client import config as client_config

        for who, user, groups in users:
            tok = secrets.token_hex(24)
            self.tokens[who] = tok
            lines.append(f'{tok},{user},{who},"{groups}"' if groups else f"{tok},{user},{who}")
            if who != "admin":
                client_config.write(self.plan.config_file(who), f"{CP_IP}:{APISERVER_PORT}", tok)
        path = cp / "tokens.csv"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    async def start_etcd(self) -> str:
        data = self.plan.path("control-plane", "etcd")
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)  # etcd's data is the apiserver's alone
        client = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"
        peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
        argv = ["etcd", f"--name={CP_NAME}", f"--data-dir={data}", f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={CP_NAME}={peer}",
                "--experimental-watch-progress-notify-interval=5s", "--logger=zap", "--log-outputs=stderr",
                f"--listen-metrics-urls=http://127.0.0.1:{ETCD_METRICS_PORT}",
                "--log-level=warn"]
        rec = spawn(self.st, "etcd", "etcd", argv, netns_name=CP_NETNS)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, "etcd", rec=rec)
        return f"127.0.0.1:{ETCD_CLIENT_PORT} in {CP_NETNS}"

    async def start_apiserver(self) -> str:
        self.write_credentials()
        argv = [*program("apiserver"), f"--data-dir={self.plan.path('control-plane', 'apiserver')}",
                "--bind-address=0.0.0.0", f"--port={APISERVER_PORT}", f"--advertise-address={CP_IP}",
                f"--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}", f"--health-port={APISERVER_HEALTH_PORT}",
                f"--token-auth-file={self.plan.path('control-plane', 'tokens.csv')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}"]
        known = self.flags.get("apiserver", set())
        optional = self.plan.profile.apiserver_optional
        argv += [f for f in optional if f.split("=")[0] in known]
        missing = [f.split("=")[0] for f in optional if f.split("=")[0] not in known]
        rec = spawn(self.st, "apiserver", "apiserver", argv, netns_name=CP_NETNS)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, "apiserver", rec=rec)
        note = f" (no {', '.join(missing)} yet: pods tolerate unhealthy nodes 300 s)" if missing else ""
        return f"{CP_IP}:{APISERVER_PORT}{note}"

    async def start_relay_step(self) -> str:
        rec = start_relay(self.st)
        port = int(self.st.info["relay_port"])
        await wait_for(lambda: tcp_ok("127.0.0.1", port), "apiserver relay", rec=rec)
        from pybernetes.client import config as client_config

        client_config.write(self.plan.admin_conf, f"127.0.0.1:{port}", self.tokens["admin"])
        self.st.info["admin_conf"] = str(self.plan.admin_conf)
        self.st.save()
        return f"127.0.0.1:{port} -> {CP_IP}:{APISERVER_PORT}, {self.plan.admin_conf}"

    async def register_nodes(self) -> str:
        from pybernetes import errors
        from pybernetes.api.core.v1 import core_pb2 as core
        from pybernetes.client.client import Client

        async with Client(f"127.0.0.1:{self.st.info['relay_port']}", token=self.tokens["admin"],
                          timeout=10) as c:
            for n in self.plan.nodes:
                node = core.Node()
                node.metadata.name = n.name
                node.spec.pod_cidr = n.pod_cidr
                node.spec.pod_cidrs.append(n.pod_cidr)
                with contextlib.suppress(errors.AlreadyExists):
                    await c.create(node)
        return "podCIDR 10.244.<i>.0/24 per node"

    async def start_registry(self) -> str:
        from lab.image_registry import REGISTRY_BIN, Registry

        storage = self.plan.path("control-plane", "registry")
        reg = Registry(storage, address=f"{CP_IP}:{REGISTRY_PORT}", netns=CP_NETNS)
        self.registry = reg
        await asyncio.to_thread(reg.start)
        proc = reg._proc
        assert proc is not None
        from lab.state import proc_start_time

        rec = ProcessRecord(name="registry", component="registry", argv=[REGISTRY_BIN, "serve",
                            str(reg.config_path)], log=str(storage / "registry.log"), netns=CP_NETNS,
                            pid=proc.pid, start_time=proc_start_time(proc.pid) or 0, started_at=time.time())
        self.st.add_process(rec)
        return f"{CP_IP}:{REGISTRY_PORT}"

    async def push_images(self) -> str:
        reg, images = self.registry, self.images
        refs = await asyncio.gather(asyncio.to_thread(reg.push, images.skopeo_ref("busybox"), "busybox:stable"),
                                    asyncio.to_thread(reg.push, images.skopeo_ref("pause"), "pause:3.9"))
        return ", ".join(refs)

    async def start_forwarder(self, n: NodeSpec) -> str:
        argv = [sys.executable, "-m", "lab.image_registry", "forward", f"127.0.0.1:{REGISTRY_PORT}",
                f"{CP_IP}:{REGISTRY_PORT}"]
        rec = spawn(self.st, f"registry-forwarder/{n.name}", "registry-forwarder", argv, netns_name=n.netns,
                    node=n.name)
        probe = netns.nsenter(n.netns, [sys.executable, "-c",
                                        f"import socket; socket.create_connection(('127.0.0.1', {REGISTRY_PORT}), 1)"])

        async def listening() -> bool:
            code, _ = await run_cmd(probe, check=False)
            return code == 0
        await wait_for(listening, f"registry forwarder on {n.name}", rec=rec, timeout=15, interval=0.2)
        return ""

    async def start_containerd(self, n: NodeSpec) -> str:
        from node_agent.containerd import Containerd

        base = self.plan.node_dir(n.name) / "containerd"
        self.st.containerd[n.name] = {"dir": str(base), "netns": n.netns, "pod_cidr": n.pod_cidr,
                                      "socket": str(base / "containerd.sock")}
        self.st.add_mount_root(base)
        ctd = Containerd(base, netns=n.netns, pod_cidr=n.pod_cidr)
        ctd.write_config()
        ctd.paths.socket.unlink(missing_ok=True)
        rec = spawn(self.st, f"containerd/{n.name}", "containerd", ["containerd", "--config", str(ctd.paths.config)],
                    netns_name=n.netns, node=n.name)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, f"containerd on {n.name}", rec=rec)
        return ""

    async def start_scheduler(self) -> str:
        argv = [*program("scheduler"), f"--kubeconfig={self.plan.config_file('scheduler')}",
                f"--health-port={SCHEDULER_PORT}", *self.plan.profile.scheduler]
        rec = spawn(self.st, "scheduler", "scheduler", argv, netns_name=CP_NETNS)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, "scheduler", rec=rec)
        return ""

    async def start_controller_manager(self) -> str:
        argv = [*program("controller-manager"), f"--config={self.plan.config_file('controller-manager')}",
                f"--cluster-cidr={CLUSTER_CIDR}", "--node-cidr-mask-size=24", f"--health-port={CM_PORT}",
                f"--loadbalancer-ip-range={LB_POOL}",
                *self.plan.profile.controller_manager]
        rec = spawn(self.st, "controller-manager", "controller-manager", argv, netns_name=CP_NETNS)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, "controller-manager", rec=rec)
        return ""

    async def start_kubelet(self, n: NodeSpec) -> str:
        from node_agent.containerd import NodePaths
        from node_agent.pressure import LAB_EVICTION_HARD

        paths = NodePaths((self.plan.node_dir(n.name) / "containerd").resolve())
        argv = [*program("kubelet"), f"--config={self.plan.config_file(f'kubelet-{n.name}')}",
                f"--node-name={n.name}", f"--node-ip={n.ip}", f"--containerd-socket={paths.socket}",
                f"--root-dir={self.plan.node_dir(n.name) / 'kubelet'}", f"--pod-cidr={n.pod_cidr}",
                f"--cni-conf-dir={paths.cni_conf_dir}", f"--cni-data-dir={paths.cni_data_dir}",
                f"--health-port={KUBELET_HEALTH_PORT}", "--health-host=0.0.0.0",
                f"--eviction-hard={LAB_EVICTION_HARD}", *self.plan.profile.kubelet]
        rec = spawn(self.st, f"kubelet/{n.name}", "kubelet", argv, netns_name=n.netns, node=n.name)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, f"kubelet on {n.name}", rec=rec)
        return ""

    async def discover_flags(self, component: str) -> None:
        """Flags a component's --help lists (pb-proxy is newer than the lab; optional profile flags)."""
        code, text = await run_cmd([*program(component), "--help"], check=False)
        words = (w.strip(",[]").split("=")[0] for w in text.split())
        self.flags[component] = {w for w in words if w.startswith("--")} if code == 0 else set()

    def proxy_argv(self, n: NodeSpec) -> list[str]:
        want: list[tuple[tuple[str, ...], str]] = [
            (("--kubeconfig", "--config"), str(self.plan.config_file("proxy"))),
            (("--hostname-override", "--node-name"), n.name),
            # health and metrics on every address: the lab checks 127.0.0.1, Prometheus scrapes the node IP
            (("--bind-address",), "0.0.0.0"),
            (("--cluster-cidr",), CLUSTER_CIDR),
            (("--service-cidr", "--service-cluster-ip-range"), SERVICE_CIDR),
            (("--healthz-port", "--health-port"), str(PROXY_HEALTH_PORT)),
            (("--metrics-port",), str(PROXY_METRICS_PORT)),
        ]
        argv = list(program("proxy"))
        for names, value in want:
            flag = next((f for f in names if f in self.flags.get("proxy", set())), None)
            if flag is not None:
                argv.append(f"{flag}={value}")
        return argv

    async def start_proxy(self, n: NodeSpec) -> str:
        rec = spawn(self.st, f"proxy/{n.name}", "proxy", self.proxy_argv(n), netns_name=n.netns, node=n.name)
        check = health_check(self.st, rec)
        assert check is not None
        await wait_for(check, f"proxy on {n.name}", rec=rec)
        return ""

    async def wait_nodes_ready(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            rows = await node_rows(self.st)
            ready = [r for r in rows if r[1] == "Ready"]
            if len(ready) >= len(self.plan.nodes):
                return f"{len(ready)}/{len(self.plan.nodes)} Ready"
            if time.monotonic() > deadline:
                raise LabError(f"nodes not Ready after {timeout:.0f} s: "
                               + ", ".join(f"{r[0]}={r[1]}" for r in rows))
            await asyncio.sleep(0.2)

    async def start_prometheus(self) -> str:
        return await maybe_prometheus(self.st)

    # - the plan -

    async def up(self) -> None:
        n = len(self.plan.nodes)
        # fixed steps + per node: forwarder, containerd, kubelet, proxy
        total = 14 + n * (4 if self.has_proxy else 3) + (0 if self.has_proxy else 1)
        pr = Progress(total, self.out)
        self.plan.dir.mkdir(parents=True, exist_ok=True)
        self.st.add_dir(self.plan.dir)
        self.st.info.update({"control_plane": {"netns": CP_NETNS, "ip": CP_IP},
                             "nodes": [{"name": x.name, "netns": x.netns, "ip": x.ip, "pod_cidr": x.pod_cidr}
                                       for x in self.plan.nodes],
                             "image_cache": str(self.plan.image_cache)})
        self.st.save()
        note = await pr.step("checking prerequisites", self.check_prerequisites)
        if not self.has_proxy:
            pr.done += 1
            self.out(f"[{pr.done}/{pr.total}] pb-proxy ... skipped: {note}")
        await asyncio.gather(pr.step("building lab images", self.build_images),
                             pr.step("creating network namespaces", self.create_network))
        await pr.step("adding pod routes", self.routes)

        async def control_plane() -> None:
            await asyncio.gather(pr.step(f"starting etcd on {CP_NAME}", self.start_etcd),
                                 self.discover_flags("apiserver"))
            await pr.step(f"starting apiserver on {CP_NAME}", self.start_apiserver)
            await pr.step("starting apiserver relay, writing admin.conf", self.start_relay_step)
            await pr.step("registering nodes with their pod CIDRs", self.register_nodes)

        async def registry() -> None:
            await pr.step(f"starting registry on {CP_NAME}", self.start_registry)
            await asyncio.gather(pr.step("pushing images", self.push_images),
                                 *(pr.step(f"starting registry forwarder on {x.name}",
                                           functools.partial(self.start_forwarder, x)) for x in self.plan.nodes))

        extra: list[Awaitable[Any]] = [self.discover_flags("proxy")] if self.has_proxy else []
        await asyncio.gather(control_plane(), registry(), *extra,
                             *(pr.step(f"starting containerd on {x.name}", functools.partial(self.start_containerd, x))
                               for x in self.plan.nodes))
        steps = [pr.step(f"starting scheduler on {CP_NAME}", self.start_scheduler),
                 pr.step(f"starting controller-manager on {CP_NAME}", self.start_controller_manager)]
        steps += [pr.step(f"starting kubelet on {x.name}", functools.partial(self.start_kubelet, x))
                  for x in self.plan.nodes]
        if self.has_proxy:
            steps += [pr.step(f"starting proxy on {x.name}", functools.partial(self.start_proxy, x))
                      for x in self.plan.nodes]
        steps.append(pr.step("starting Prometheus", self.start_prometheus))
        await asyncio.gather(*steps)
        await pr.step("waiting for nodes to be Ready", self.wait_nodes_ready)
        self.st.complete = True
        self.st.save()


async def maybe_prometheus(st: LabState) -> str:
    """A Prometheus in the control-plane namespace (lab.prometheus, when present), scraping every
    component, with a relay on the host's 127.0.0.1:9090 (or a free port) for the browser."""
    if importlib.util.find_spec("lab.prometheus") is None:
        return "skipped: lab.prometheus not available yet"
    if shutil.which("prometheus") is None:
        return "skipped: prometheus is not installed"
    nodes = st.info.get("nodes", [])
    targets = {"apiserver": [f"127.0.0.1:{APISERVER_HEALTH_PORT}"], "scheduler": [f"127.0.0.1:{SCHEDULER_PORT}"],
               "controller-manager": [f"127.0.0.1:{CM_PORT}"], "etcd": [f"127.0.0.1:{ETCD_METRICS_PORT}"],
               "prometheus": [f"127.0.0.1:{PROMETHEUS_PORT}"]}
    argv = [sys.executable, "-m", "lab.prometheus", "run", f"--workdir={Path(st.dir) / 'prometheus'}",
            f"--listen=127.0.0.1:{PROMETHEUS_PORT}", f"--netns={CP_NETNS}", "--scrape-interval=5s",
            "--sync-nodes", f"--config={Path(st.dir) / 'admin.conf'}"]
    for job, addrs in targets.items():
        argv += [f"--target={job}={a}" for a in addrs]
    rec = spawn(st, "prometheus", "prometheus", argv)
    check = health_check(st, rec)
    assert check is not None
    await wait_for(check, "prometheus", rec=rec, timeout=60, interval=0.3)
    relay_rec = start_relay(st, "prometheus-relay", port_key="prometheus_port", want=PROMETHEUS_PORT,
                            target=f"127.0.0.1:{PROMETHEUS_PORT}")
    port = int(st.info["prometheus_port"])
    await wait_for(lambda: tcp_ok("127.0.0.1", port), "prometheus relay", rec=relay_rec)
    url = f"http://127.0.0.1:{port}"
    st.info["prometheus_url"] = url
    st.save()
    return f"{url} ({len(nodes)} nodes via file_sd)"


async def node_rows(st: LabState) -> list[tuple[str, str, str, str, str]]:
    """(name, status, internal IP, pod CIDR, version) for every Node, through the relay.

    Status is Ready only when the Ready condition is True *and* the node lifecycle controller has lifted
    its not-ready/unreachable taints, i.e. the scheduler can use the node; else NotReady/Unknown/Tainted."""
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    cfg = client_config.load(str(Path(st.dir) / "admin.conf"))
    try:
        async with Client.from_config(cfg, timeout=5) as c:
            nodes = (await c.list(core.Node)).items
    except errors.ApiError:
        return []
    rows = []
    for nd in sorted(nodes, key=lambda x: x.metadata.name):
        ready = next((cd.status for cd in nd.status.conditions if cd.type == "Ready"), "Unknown")
        status = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
        if status == "Ready" and any(t.key in _HEALTH_TAINTS for t in nd.spec.taints):
            status = "Tainted"
        ip = next((a.address for a in nd.status.addresses if a.type == "InternalIP"), "")
        rows.append((nd.metadata.name, status, ip, nd.spec.pod_cidr, nd.status.node_info.kubelet_version))
    return rows


_HEALTH_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


async def print_summary(st: LabState, out: Callable[[str], None] = print) -> None:
    rows = await node_rows(st)
    out("")
    out(table([("NAME", "STATUS", "INTERNAL-IP", "POD-CIDR", "VERSION"), *rows]))
    out("")
    out(f"export PBCONFIG={Path(st.dir) / 'admin.conf'}")
    out("")
    out("Try next:")
    out("  pbctl get nodes -o wide")
    out("  python -m lab.demo            # Deployment + Services, requests balanced across nodes")
    out("  pbctl lab status                        # or: python -m lab.cli status")
    out("  pbctl lab shell node-1 -- ip route")
    out("  pbctl lab stop kubelet --node node-2     # watch the node go NotReady and its pods move")
    out("  pbctl lab down")
    if st.info.get("prometheus_url"):
        out(f"  Prometheus: {st.info['prometheus_url']}")


async def up(plan: Plan, out: Callable[[str], None] = print) -> int:
    t0 = time.monotonic()
    existing = LabState.load(plan.dir)
    if existing is not None:
        if existing.complete:
            dead = [p for p in existing.processes.values() if not p.alive()]
            if not dead:
                out(f"lab in {plan.dir} is already up ({len(existing.processes)} processes running); nothing to do")
                await print_summary(existing, out)
                return 0
            out(f"lab in {plan.dir} is up but {len(dead)} processes are down; restarting them")
            for rec in dead:
                t1 = time.monotonic()
                await start_recorded(existing, rec)
                out(f"restarted {rec.name} ... ok ({time.monotonic() - t1:.1f} s)")
            await print_summary(existing, out)
            return 0
        out(f"found an unfinished lab in {plan.dir}; tearing it down first")
        await down(plan.dir, out)
    lab = Lab(plan, out)
    try:
        await lab.up()
    except (LabError, OSError, RuntimeError, subprocess.CalledProcessError, TimeoutError) as e:
        out(f"lab up failed: {e}")
        out(f"what was made is recorded in {lab.st.path}; `lab down` removes it")
        return 1
    out(f"lab up in {time.monotonic() - t0:.1f} s ({plan.workers} nodes, profile {plan.profile.name})")
    await print_summary(lab.st, out)
    return 0


# ---- down --------------------------------------------------------------------------------------

_SWEEP_PROGRAMS = ("containerd", "containerd-shim", "containerd-shim-runc-v2", "etcd", "docker-registry", "python",
                   "python3", "python3.11", "nsenter", "pb-apiserver", "pb-scheduler", "pb-controller-manager",
                   "pb-kubelet", "pb-proxy", "prometheus")


def stray_pids(lab_dir: Path) -> list[int]:
    """Lab programs not in the record (a crash between spawn and save): their argv names the lab dir."""
    prefix = str(lab_dir)
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) not in _SWEEP_PROGRAMS:
            continue
        if any(a == prefix or a.startswith(prefix + "/") or ("=" + prefix) in a for a in argv[1:]):
            found.append(int(entry))
    return found


async def _stop_all(recs: Sequence[ProcessRecord], grace: float = 10.0) -> None:
    await asyncio.gather(*(asyncio.to_thread(r.stop, grace) for r in recs))


async def down(lab_dir: Path, out: Callable[[str], None] = print) -> int:
    from node_agent.containerd import Containerd, mounts_under

    lab_dir = lab_dir.resolve()
    st = LabState.load(lab_dir)
    if st is None:
        out(f"no lab in {lab_dir} (no {lab_dir / 'state.json'}); nothing to do")
        return 0
    t0 = time.monotonic()
    procs = list(st.processes.values())
    # 1. node agents first, so nothing recreates pods while we remove them
    first = [p for p in procs if p.component in ("kubelet", "proxy")]
    await _stop_all(first, 10)
    out(f"stopped {len(first)} node agents")
    # 2. pods through the CRI while containerd still runs (clean CNI teardown, cgroups removed)
    async def remove_pods(node: str, info: dict[str, str]) -> None:
        ctd = Containerd(info["dir"], netns=info["netns"], pod_cidr=info["pod_cidr"])
        if Path(info["socket"]).exists():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctd.remove_all_pods(), 30)
    await asyncio.gather(*(remove_pods(k, v) for k, v in st.containerd.items()))
    ctds = [p for p in procs if p.component == "containerd"]
    await _stop_all(ctds, 10)
    leftovers: list[str] = []
    for info in st.containerd.values():
        ctd = Containerd(info["dir"], netns=info["netns"], pod_cidr=info["pod_cidr"])
        leftovers += await ctd.destroy(remove_dir=True)
    out(f"removed pods and containerd on {len(st.containerd)} nodes")
    # 3. everything else, in reverse start order (control plane, relay, registry, forwarders, prometheus)
    rest = [p for p in reversed(procs) if p.component not in ("kubelet", "proxy", "containerd")]
    await _stop_all(rest, 10)
    for pid in stray_pids(lab_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    out(f"stopped {len(rest)} control-plane and lab processes")
    # 4. mounts, namespaces, directories
    for root in [*st.mounts, str(lab_dir)]:
        for mp in mounts_under(root):
            await run_cmd(["umount", mp], check=False)
            if mp in mounts_under(root):
                await run_cmd(["umount", "-l", mp], check=False)
    for ns in reversed(st.namespaces):
        await asyncio.to_thread(netns.delete, ns)
    out(f"deleted namespaces {', '.join(reversed(st.namespaces))}")
    left = [m for root in [*st.mounts, str(lab_dir)] for m in mounts_under(root)]
    for d in sorted(set(st.dirs) | {str(lab_dir)}, key=len, reverse=True):
        if not left:
            shutil.rmtree(d, ignore_errors=True)
    if left or leftovers:
        out(f"warning: mounts left: {left or leftovers}; kept {lab_dir}")
        return 1
    out(f"lab down in {time.monotonic() - t0:.1f} s; removed {lab_dir}")
    return 0


# ---- status, shell, stop/start -----------------------------------------------------------------


async def status(lab_dir: Path, out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        out(f"no lab in {lab_dir}")
        return 1

    async def one(rec: ProcessRecord) -> tuple[str, str, str, str, str]:
        alive = rec.alive()
        check = health_check(st, rec)
        if not alive:
            health = "-"
        elif check is None:
            health = "n/a"
        else:
            health = "ok" if await check() else "FAILING"
        return (rec.name.split("/")[0], rec.node or CP_NAME, str(rec.pid), "running" if alive else "STOPPED", health)

    order = {c: i for i, c in enumerate(("etcd", "apiserver", "relay", "scheduler", "controller-manager", "registry",
                                         "prometheus", "containerd", "registry-forwarder", "kubelet", "proxy"))}
    recs = sorted(st.processes.values(), key=lambda r: (r.node, order.get(r.component, 99), r.name))
    rows = await asyncio.gather(*(one(r) for r in recs))
    out(table([("COMPONENT", "HOST", "PID", "PROCESS", "HEALTH"), *rows]))
    if not st.complete:
        out("(lab up did not finish)")
    nodes = await node_rows(st) if any(r[0] == "apiserver" and r[4] == "ok" for r in rows) else []
    if nodes:
        out("")
        out(table([("NAME", "STATUS", "INTERNAL-IP", "POD-CIDR", "VERSION"), *nodes]))
    bad = [r for r in rows if r[3] != "running" or r[4] == "FAILING"]
    return 1 if bad else 0


def shell_argv(lab_dir: Path, host: str, cmd: Sequence[str]) -> list[str]:
    st = LabState.load(lab_dir.resolve())
    names = {CP_NAME: CP_NETNS}
    if st is not None:
        names.update({n["name"]: n["netns"] for n in st.info.get("nodes", [])})
    ns = names.get(host) or (host if host.startswith("pb-") else "")
    if not ns or not netns.exists(ns):
        raise LabError(f"no lab host {host!r} (known: {', '.join(names)})")
    return netns.nsenter(ns, list(cmd) or [os.environ.get("SHELL", "/bin/sh")])


def _select(st: LabState, component: str, node: str) -> list[ProcessRecord]:
    if component not in COMPONENTS and component not in ("registry", "registry-forwarder", "relay", "prometheus"):
        raise LabError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    recs = st.find(component, node)
    if not recs:
        raise LabError(f"no {component}{' on ' + node if node else ''} in this lab")
    return recs


async def stop_component(lab_dir: Path, component: str, node: str = "",
                         out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    for rec in _select(st, component, node):
        t0 = time.monotonic()
        was = await asyncio.to_thread(rec.stop, 10)
        out(f"{'stopped' if was else 'already stopped:'} {rec.name} ({time.monotonic() - t0:.1f} s)")
    return 0


async def start_component(lab_dir: Path, component: str, node: str = "",
                          out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    for rec in _select(st, component, node):
        if rec.alive():
            out(f"already running: {rec.name} (pid {rec.pid})")
            continue
        t0 = time.monotonic()
        new = await start_recorded(st, rec)
        out(f"started {new.name} (pid {new.pid}) ... ok ({time.monotonic() - t0:.1f} s)")
    return 0


async def open_dashboards(lab_dir: Path, out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    url = st.info.get("prometheus_url")
    if not url:
        out("no Prometheus in this lab (lab.prometheus was not available at `lab up`)")
        return 1
    out(f"Prometheus: {url}")
    return 0


def idle_usage(lab_dir: Path, seconds: float = 5.0) -> tuple[float, float]:
    """(RSS MiB, CPU % of one core) summed over the lab's processes, their children and containerd shims."""
    st = LabState.load(lab_dir.resolve())
    if st is None:
        return 0.0, 0.0
    pids = {p.pid for p in st.processes.values() if p.alive()}
    socks = [v["socket"] for v in st.containerd.values()]
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                parent[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if any(s.encode() in argv for s in socks):
                pids.add(int(entry))
    grew = True
    while grew:  # descendants (e.g. the prometheus binary under its wrapper, containers under shims)
        more = {p for p, pp in parent.items() if pp in pids and p not in pids}
        pids |= more
        grew = bool(more)

    def ticks() -> dict[int, int]:
        out: dict[int, int] = {}
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[pid] = int(f[11]) + int(f[12])
        return out

    a = ticks()
    time.sleep(seconds)
    b = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    cpu = sum(b[p] - a.get(p, b[p]) for p in b) / hz / seconds * 100
    rss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
    return rss / 1024, cpu


def main() -> None:
    """`python -m lab.cluster relay --fd N HOST:PORT` (internal)."""
    p = argparse.ArgumentParser(prog="lab.cluster")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--fd", type=int, required=True)
    r.add_argument("target")
    a = p.parse_args()
    if a.cmd == "relay":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(relay(a.fd, a.target))


if __name__ == "__main__":
    main()
