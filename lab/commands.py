"""The command line of every process the lab runs as a cluster component: etcd, containerd and the five
pybernetes components (apiserver, scheduler, controller-manager, kubelet, proxy).

One function per component returns its argv (before nsenter) from the Plan; the timing profile's flags
(lab.profiles) go last. `discover_flags` reads a component's --help so optional flags are passed only to
a program that knows them. lab.control_plane and lab.nodes spawn these; lab.processes records them, so
`lab start` reruns exactly the recorded line.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from lab.processes import run_cmd
from lab.topology import CLUSTER_CIDR, CP_IP, CP_NAME, LB_POOL, SERVICE_CIDR, NodeSpec, Plan
from pybernetes import ports

# component -> (console script, module for `python -m`)
_PROGRAMS = {
    "apiserver": ("pb-apiserver", "services.apiserver.main"),
    "scheduler": ("pb-scheduler", "services.scheduler.main"),
    "controller-manager": ("pb-controller-manager", "services.controllers.main"),
    "kubelet": ("pb-kubelet", "node_agent.main"),
    "proxy": ("pb-proxy", "netproxy.main"),
}


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


async def discover_flags(component: str) -> set[str]:
    """Flags a component's --help lists (pb-proxy is newer than the lab; optional profile flags)."""
    code, text = await run_cmd([*program(component), "--help"], check=False)
    words = (w.strip(",[]").split("=")[0] for w in text.split())
    return {w for w in words if w.startswith("--")} if code == 0 else set()


def etcd_argv(data: Path) -> list[str]:
    client = f"http://127.0.0.1:{ports.ETCD_CLIENT}"
    peer = f"http://127.0.0.1:{ports.ETCD_PEER}"
    return ["etcd", f"--name={CP_NAME}", f"--data-dir={data}", f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={CP_NAME}={peer}",
            "--experimental-watch-progress-notify-interval=5s", "--logger=zap", "--log-outputs=stderr",
            f"--listen-metrics-urls=http://127.0.0.1:{ports.ETCD_METRICS}",
            "--log-level=warn"]


def apiserver_argv(plan: Plan, known: set[str]) -> tuple[list[str], list[str]]:
    """(argv, the profile's optional flags this apiserver does not know and so does not get)."""
    argv = [*program("apiserver"), f"--data-dir={plan.path('control-plane', 'apiserver')}",
            "--bind-address=0.0.0.0", f"--port={ports.APISERVER}", f"--advertise-address={CP_IP}",
            f"--etcd-servers=http://127.0.0.1:{ports.ETCD_CLIENT}", f"--health-port={ports.APISERVER_HEALTH}",
            f"--token-auth-file={plan.path('control-plane', 'tokens.csv')}",
            f"--service-cluster-ip-range={SERVICE_CIDR}"]
    optional = plan.profile.apiserver_optional
    argv += [f for f in optional if f.split("=")[0] in known]
    missing = [f.split("=")[0] for f in optional if f.split("=")[0] not in known]
    return argv, missing


def scheduler_argv(plan: Plan) -> list[str]:
    return [*program("scheduler"), f"--kubeconfig={plan.config_file('scheduler')}",
            f"--health-port={ports.SCHEDULER}", *plan.profile.scheduler]


def controller_manager_argv(plan: Plan) -> list[str]:
    return [*program("controller-manager"), f"--config={plan.config_file('controller-manager')}",
            f"--cluster-cidr={CLUSTER_CIDR}", "--node-cidr-mask-size=24", f"--health-port={ports.CONTROLLER_MANAGER}",
            f"--loadbalancer-ip-range={LB_POOL}",
            *plan.profile.controller_manager]


def containerd_argv(config: Path) -> list[str]:
    return ["containerd", "--config", str(config)]


def kubelet_argv(plan: Plan, n: NodeSpec) -> list[str]:
    from node_agent.containerd import NodePaths
    from node_agent.pressure import LAB_EVICTION_HARD

    paths = NodePaths((plan.node_dir(n.name) / "containerd").resolve())
    return [*program("kubelet"), f"--config={plan.config_file(f'kubelet-{n.name}')}",
            f"--node-name={n.name}", f"--node-ip={n.ip}", f"--containerd-socket={paths.socket}",
            f"--root-dir={plan.node_dir(n.name) / 'kubelet'}", f"--pod-cidr={n.pod_cidr}",
            f"--cni-conf-dir={paths.cni_conf_dir}", f"--cni-data-dir={paths.cni_data_dir}",
            f"--health-port={ports.KUBELET_HEALTH}", "--health-host=0.0.0.0",
            f"--eviction-hard={LAB_EVICTION_HARD}", *plan.profile.kubelet]


def proxy_argv(plan: Plan, n: NodeSpec, known: set[str]) -> list[str]:
    """pb-proxy's argv, each setting under the first of its names that `known` (its --help) lists."""
    want: list[tuple[tuple[str, ...], str]] = [
        (("--kubeconfig", "--config"), str(plan.config_file("proxy"))),
        (("--hostname-override", "--node-name"), n.name),
        # health and metrics on every address: the lab checks 127.0.0.1, Prometheus scrapes the node IP
        (("--bind-address",), "0.0.0.0"),
        (("--cluster-cidr",), CLUSTER_CIDR),
        (("--service-cidr", "--service-cluster-ip-range"), SERVICE_CIDR),
        (("--healthz-port", "--health-port"), str(ports.PROXY_HEALTH)),
        (("--metrics-port",), str(ports.PROXY_METRICS)),
    ]
    argv = list(program("proxy"))
    for names, value in want:
        flag = next((f for f in names if f in known), None)
        if flag is not None:
            argv.append(f"{flag}={value}")
    return argv
