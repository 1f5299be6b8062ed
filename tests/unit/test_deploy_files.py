"""The deployment files: systemd units, install.sh, the Vagrant lab and the box builder.

Static checks (unit syntax, `bash -n`, shellcheck / systemd-analyze / ruby when installed) and a dry run
of install.sh for both roles whose generated flags are fed to each component's own parse_args, so a
renamed or removed flag fails here rather than in a VM.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Scheduled jobs (a oneshot service and its timer) are not daemons: they have a shape of their own.
JOBS = {"pb-etcd-backup"}
UNITS = sorted(u for u in (DEPLOY / "systemd").glob("*.service") if u.stem not in JOBS)
SCRIPTS = [DEPLOY / "install.sh", DEPLOY / "vagrant" / "build-box.sh", DEPLOY / "vagrant" / "provision.sh",
           DEPLOY / "vagrant" / "prep.sh"]
EXPECTED_UNITS = {"pb-apiserver", "pb-scheduler", "pb-controller-manager", "pb-kubelet", "pb-proxy",
                  "pb-containerd", "pb-registry", "pb-dns"}
SYSTEM_BINARIES = {"/usr/bin/containerd", "/usr/bin/docker-registry"}


def console_scripts() -> set[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(meta["project"]["scripts"])


def parse_unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(path.read_text())
    return cp


def test_every_unit_is_there() -> None:
    assert {u.stem for u in UNITS} == EXPECTED_UNITS


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.stem)
def test_unit_shape(unit: Path) -> None:
    cp = parse_unit(unit)
    assert cp.sections() == ["Unit", "Service", "Install"]
    svc = cp["Service"]
    exec_start = shlex.split(svc["ExecStart"])
    binary = exec_start[0]
    if binary.startswith("/opt/pybernetes/bin/"):
        assert Path(binary).name in console_scripts(), f"{binary} is not a console script in pyproject.toml"
        assert Path(binary).name == unit.stem
    else:
        assert binary in SYSTEM_BINARIES
    var = "PB_" + unit.stem.removeprefix("pb-").upper().replace("-", "_") + "_ARGS"
    assert f"${var}" in exec_start, "flags come from the environment file"
    assert svc["EnvironmentFile"] == f"-/etc/default/{unit.stem}"
    assert svc["Restart"] == "always"
    assert "multi-user.target" in cp["Install"]["WantedBy"]
    assert "network-online.target" in cp["Unit"]["After"]
    if unit.stem in ("pb-kubelet", "pb-containerd"):
        assert svc["KillMode"] == "process", "containers must survive a restart of the daemon"
    if unit.stem in ("pb-scheduler", "pb-controller-manager", "pb-dns"):
        assert "pb-apiserver.service" in cp["Unit"]["After"]
    if unit.stem == "pb-kubelet":
        assert "pb-containerd.service" in cp["Unit"]["After"]
        assert "pb-containerd.service" in cp["Unit"]["Wants"]


def test_etcd_backup_job_shape() -> None:
    assert {u.name for u in (DEPLOY / "systemd").glob("pb-etcd-backup.*")} == \
        {"pb-etcd-backup.service", "pb-etcd-backup.timer"}
    svc = parse_unit(DEPLOY / "systemd" / "pb-etcd-backup.service")
    assert svc["Service"]["Type"] == "oneshot"
    assert svc["Service"]["EnvironmentFile"] == "-/etc/default/pb-etcd-backup"
    assert svc["Service"]["UMask"] == "0077"  # a snapshot holds every secret of the cluster
    assert "/opt/pybernetes/bin/pbctl etcd snapshot save" in svc["Service"]["ExecStart"]
    assert "pb-apiserver.service" in svc["Unit"]["After"]
    timer = parse_unit(DEPLOY / "systemd" / "pb-etcd-backup.timer")
    assert timer.sections() == ["Unit", "Timer", "Install"]
    assert timer["Timer"]["Persistent"] == "true" and timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", [*UNITS, *(DEPLOY / "systemd" / f"{j}.{kind}" for j in sorted(JOBS)
                                            for kind in ("service", "timer"))], ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path) -> None:
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # The binaries exist only after install.sh; every other complaint is a real one.
    problems = [ln for ln in (res.stdout + res.stderr).splitlines()
                if ln.strip() and "is not executable" not in ln and "sysinit.target" not in ln]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_syntax(script: Path) -> None:
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    res = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby not installed")
def test_vagrantfile_syntax() -> None:
    res = subprocess.run(["ruby", "-c", str(REPO / "Vagrantfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_vagrantfile_networks_do_not_forward() -> None:
    text = (REPO / "Vagrantfile").read_text()
    assert 'libvirt__forward_mode: "none"' in text
    assert '"172.31.0' in text
    assert 'management_network_mode = OFFLINE ? "none"' in text
    assert 'lv.driver = DRIVER' in text and 'ENV.fetch("PB_LIBVIRT_DRIVER", "qemu")' in text
    assert 'ENV.fetch("PB_WORKERS", "3")' in text
    assert "bridge" not in re.sub(r"#.*", "", text), "no network may be bridged to the host's uplink"


def dry_run(*args: str) -> str:
    res = subprocess.run(["bash", str(DEPLOY / "install.sh"), *args, "--dry-run", "--no-apt"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def env_args(output: str, var: str) -> list[str]:
    m = re.search(rf'^\s+{var}="(.*)"$', output, re.M)
    assert m, f"{var} not written:\n{output}"
    return shlex.split(m.group(1))


def test_install_control_plane_dry_run_flags_parse() -> None:
    from clusterdns.main import parse_args as dns_args
    from services.apiserver.main import parse_args as apiserver_args
    from services.controllers.main import parse_args as cm_args
    from services.scheduler.main import parse_args as scheduler_args

    out = dry_run("control-plane", "--advertise-address", "172.31.0.10", "--nodes", "node-1=10.244.1.0/24")
    for unit in ("pb-apiserver", "pb-scheduler", "pb-controller-manager"):
        assert f"/etc/systemd/system/{unit}.service" in out
    api = apiserver_args(env_args(out, "PB_APISERVER_ARGS"))
    assert api.advertise_address == "172.31.0.10" and api.health_port == 6444
    assert (api.secure_port, api.grpc_port) == (6443, 6442)  # the REST API over HTTPS; gRPC beside it
    # the CA exists before the apiserver starts, so the components' kubeconfigs carry it
    assert "--pki-dir /var/lib/pybernetes/apiserver/pki --advertise-address 172.31.0.10" in out
    assert api.bind_address == "0.0.0.0" and str(api.data_dir) == "/var/lib/pybernetes/apiserver"
    assert str(api.admin_config) == "/etc/pybernetes/admin.conf"
    sched = scheduler_args(env_args(out, "PB_SCHEDULER_ARGS"))
    assert sched.kubeconfig == "/etc/pybernetes/scheduler.conf"
    cm = cm_args(env_args(out, "PB_CONTROLLER_MANAGER_ARGS"))
    assert cm.config == "/etc/pybernetes/controller-manager.conf"
    assert "/etc/systemd/system/pb-dns.service" in out
    dns = dns_args(env_args(out, "PB_DNS_ARGS"))
    assert dns.kubeconfig == "/etc/pybernetes/dns.conf" and dns.bind_address == "172.31.0.10" and dns.port == 53
    assert dns.cluster_domain == "cluster.local" and dns.health_port == 9153
    assert "kube-dns --config /etc/pybernetes/admin.conf --cluster-ip 10.96.0.10 --address 172.31.0.10" in out
    assert "systemctl" in out  # not PID 1 here (or dry run): prints how to start


def test_install_node_dry_run_flags_parse() -> None:
    from netproxy.main import parse_args as proxy_args
    from node_agent.main import parse_args as kubelet_args

    out = dry_run("node", "--name", "node-2", "--node-ip", "172.31.0.12", "--server", "172.31.0.10:6443",
                  "--token-file", "/nonexistent/token", "--pod-cidr", "10.244.2.0/24")
    for unit in ("pb-containerd", "pb-kubelet", "pb-proxy"):
        assert f"/etc/systemd/system/{unit}.service" in out
    kl = kubelet_args(env_args(out, "PB_KUBELET_ARGS"))
    assert kl.node_name == "node-2" and kl.node_ip == "172.31.0.12" and kl.pod_cidr == "10.244.2.0/24"
    assert kl.containerd_socket == "/run/pybernetes/containerd/containerd.sock"
    assert kl.cni_conf_dir == "/var/lib/pybernetes/containerd/cni/net.d"
    assert kl.port == 10250 and kl.health_port == 10248
    assert kl.cluster_dns == ["10.96.0.10"] and kl.cluster_domain == "cluster.local"
    proxy_args(env_args(out, "PB_PROXY_ARGS"))
    assert "net.ipv4.ip_forward = 1" in out


def test_install_rejects_incomplete_node() -> None:
    res = subprocess.run(["bash", str(DEPLOY / "install.sh"), "node", "--dry-run", "--no-apt"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "--node-ip" in res.stderr and "--server" in res.stderr


def test_containerd_config_uses_system_paths() -> None:
    res = subprocess.run([sys.executable, str(DEPLOY / "pb_setup.py"), "containerd-config", "--out", "-"],
                         capture_output=True, text=True, check=True)
    text = res.stdout
    assert 'address = "/run/pybernetes/containerd/containerd.sock"' in text
    assert 'state = "/run/pybernetes/containerd/state"' in text
    assert 'root = "/var/lib/pybernetes/containerd/root"' in text
    assert 'conf_dir = "/var/lib/pybernetes/containerd/cni/net.d"' in text
    assert 'sandbox_image = "localhost:5000/pause:3.9"' in text


def test_setup_writes_kubeconfigs(tmp_path: Path) -> None:
    from pybernetes.client import config as client_config

    setup = [sys.executable, str(DEPLOY / "pb_setup.py")]
    node = tmp_path / "kubelet.conf"
    subprocess.run([*setup, "client-config", "--out", str(node), "--server", "172.31.0.10:6443", "--token", "t"],
                   check=True, capture_output=True)
    cfg = client_config.load(str(node))
    assert (cfg.https_server, cfg.server, cfg.token) == ("https://172.31.0.10:6443", "172.31.0.10:6442", "t")
    assert node.stat().st_mode & 0o077 == 0
    token = tmp_path / "token"
    token.write_text("nodetoken\n")
    subprocess.run([*setup, "control-plane-tokens", "--tokens-csv", str(tmp_path / "tokens.csv"),
                    "--node-token-file", str(token), "--config-dir", str(tmp_path / "etc"),
                    "--server", "127.0.0.1:6443", "--pki-dir", str(tmp_path / "pki"),
                    "--advertise-address", "172.31.0.10"], check=True, capture_output=True)
    sched = client_config.load(str(tmp_path / "etc" / "scheduler.conf"))
    assert sched.server == "127.0.0.1:6442" and sched.https_server == "https://127.0.0.1:6443"
    assert sched.ca_pem == (tmp_path / "pki" / "ca.crt").read_bytes()


def test_setup_issues_component_and_node_certificates(tmp_path: Path) -> None:
    from pybernetes import tls
    from pybernetes.client import config as client_config

    setup = [sys.executable, str(DEPLOY / "pb_setup.py")]
    token, pki = tmp_path / "token", tmp_path / "pki"
    token.write_text("nodetoken\n")
    subprocess.run([*setup, "control-plane-tokens", "--tokens-csv", str(tmp_path / "tokens.csv"),
                    "--node-token-file", str(token), "--config-dir", str(tmp_path / "etc"),
                    "--server", "127.0.0.1:6443", "--pki-dir", str(pki), "--advertise-address", "172.31.0.10"],
                   check=True, capture_output=True)
    for who, user in (("scheduler", "system:kube-scheduler"), ("controller-manager", "system:kube-controller-manager"),
                      ("dns", "system:serviceaccount:kube-system:coredns")):
        cfg = client_config.load(str(tmp_path / "etc" / f"{who}.conf"))
        assert cfg.token == "" and cfg.cert_pem == (pki / f"{who}.crt").read_bytes()
        assert tls.identity(tls.CertPair(pki / f"{who}.crt", pki / f"{who}.key").der()) == (user, ())
    # A node's own directory: the CA, its kubelet's and proxy's certificates, nothing of another node.
    node = tmp_path / "nodes" / "node-2"
    subprocess.run([*setup, "node-pki", "--pki-dir", str(pki), "--name", "node-2", "--out", str(node)],
                   check=True, capture_output=True)
    assert sorted(p.name for p in node.iterdir()) == ["ca.crt", "kubelet.crt", "kubelet.key", "proxy.crt", "proxy.key"]
    assert tls.identity(tls.CertPair(node / "kubelet.crt", node / "kubelet.key").der()) == (
        "system:node:node-2", ("system:nodes",))
    assert (node / "kubelet.key").stat().st_mode & 0o077 == 0
    conf = tmp_path / "kubelet.conf"
    subprocess.run([*setup, "client-config", "--out", str(conf), "--server", "172.31.0.10:6443", "--ca-file",
                    str(node / "ca.crt"), "--client-cert", str(node / "kubelet.crt"), "--client-key",
                    str(node / "kubelet.key")], check=True, capture_output=True)
    tls_cfg = client_config.load(str(conf)).tls()
    assert tls_cfg is not None and tls_cfg.cert_pem == (node / "kubelet.crt").read_bytes()
    out = dry_run("node", "--name", "node-2", "--node-ip", "172.31.0.12", "--server", "172.31.0.10:6443",
                  "--token-file", "/nonexistent/token", "--client-cert", str(node / "kubelet.crt"),
                  "--client-key", str(node / "kubelet.key"))
    assert "--client-cert /etc/pybernetes/pki/kubelet.crt --client-key /etc/pybernetes/pki/kubelet.key" in out
