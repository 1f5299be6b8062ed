"""A Prometheus for the lab: config from deploy/prometheus, file_sd for nodes, consoles, promtool checks.

`Prometheus(workdir, targets)` writes a config (the shipped deploy/prometheus/prometheus.yml with the
given static targets per job), the alert rules, file_sd JSON and a console library directory into
`workdir`, then runs `prometheus` as a child process (inside a network namespace with `netns=`).
`sync_file_sd(client, directory)` keeps the kubelet/proxy file_sd JSON equal to the Node objects.
Given a `ScrapeTLS` (the cluster has a PKI: the lab, deploy/), the jobs in SECURE_JOBS are scraped over HTTPS
as Prometheus' own identity, a client certificate in group system:monitoring (pybernetes.secureserving);
without one they stay plain HTTP (standalone components serve /metrics so). etcd is always plain HTTP on the
control plane's loopback: its metrics listener, as kubeadm sets it up (an etcd-CA client certificate would
open etcd's data port too).

    python -m lab.prometheus check                 # promtool check config/rules + test rules
    python -m lab.prometheus run --workdir DIR --target apiserver=127.0.0.1:PORT ... [--ca-file CA
        --cert-file CRT --key-file KEY]
    python -m lab.prometheus sync-file-sd --dir DIR/file_sd [--config KUBECONFIG]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab import health
from lab.netns import nsenter
from pybernetes import ports

log = logging.getLogger("lab.prometheus")

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
CONSOLES_DIR = DEPLOY_DIR / "consoles"
LIBRARY_DIR = DEPLOY_DIR / "console_libraries"
RULES = DEPLOY_DIR / "rules" / "alerts.yml"
RULES_TEST = DEPLOY_DIR / "rules" / "alerts_test.yml"
CONFIG_TEMPLATE = DEPLOY_DIR / "prometheus.yml"

# Where distributions put Prometheus' own console library (prom.lib, menu.lib): upstream tarballs,
# /etc on Debian (often only a README there), and Debian's examples.
SYSTEM_LIBRARY_DIRS = (
    Path("/usr/share/prometheus/console_libraries"),
    Path("/etc/prometheus/console_libraries"),
    Path("/usr/share/doc/prometheus/examples/console_libraries"),
)

# Jobs whose targets come from file_sd (one group per node) rather than static_configs.
FILE_SD_JOBS = ("kubelet", "proxy")
# Where each job is scraped by default (the kubelet serves /metrics on its health port).
DEFAULT_PORTS = {"apiserver": ports.APISERVER_HEALTH, "scheduler": ports.SCHEDULER,
                 "controller-manager": ports.CONTROLLER_MANAGER, "etcd": ports.ETCD_METRICS,
                 "kubelet": ports.KUBELET_HEALTH, "proxy": ports.PROXY_METRICS}

# Jobs whose /metrics want an authorized client certificate when the cluster has a PKI.
SECURE_JOBS = ("apiserver", "scheduler", "controller-manager", "dns", "kubelet", "proxy")
MONITORING_GROUP = "system:monitoring"  # bound to ClusterRole system:monitoring (get /metrics) by bootstrap RBAC
PROMETHEUS_USER = "prometheus"

FileSDGroup = dict[str, Any]  # {"targets": ["ip:port"], "labels": {"node": name}}


@dataclass(frozen=True)
class ScrapeTLS:
    """How Prometheus scrapes the secure jobs: the cluster CA (verifying each target's serving certificate)
    and its own client certificate (user `prometheus`, group system:monitoring)."""
    ca_file: Path
    cert_file: Path
    key_file: Path
    # False: the nodes' serving certificates are self-signed (deploy/: each kubelet makes its own), so the
    # kubelet and proxy jobs skip verifying them; Prometheus still presents its certificate.
    verify_nodes: bool = True

    def tls_config(self, job: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"ca_file": str(self.ca_file), "cert_file": str(self.cert_file),
                               "key_file": str(self.key_file)}
        if not self.verify_nodes and job in FILE_SD_JOBS:
            out["insecure_skip_verify"] = True
        return out


class PrometheusError(Exception):
    pass


def system_console_libraries() -> Path:
    """The directory holding Prometheus' prom.lib (the console library the consoles build on)."""
    for d in SYSTEM_LIBRARY_DIRS:
        if (d / "prom.lib").is_file():
            return d
    raise PrometheusError("prom.lib not found in " + ", ".join(map(str, SYSTEM_LIBRARY_DIRS))
                          + " (install the prometheus package)")


def render_config(targets: Mapping[str, Sequence[str]], *, scrape_interval: str | None = None,
                  rule_files: Sequence[str] = ("rules/alerts.yml",), tls: ScrapeTLS | None = None) -> dict[str, Any]:
    """The shipped config with `targets` as each static job's targets.

    Static jobs absent from `targets` are dropped (a lab without a scheduler has no scheduler job);
    file_sd jobs stay and read file_sd/<job>.json next to the written config. With `tls`, SECURE_JOBS
    are scraped with scheme https and that tls_config."""
    cfg: dict[str, Any] = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    if scrape_interval:
        cfg["global"]["scrape_interval"] = scrape_interval
        cfg["global"]["evaluation_interval"] = scrape_interval
        cfg["global"]["scrape_timeout"] = scrape_interval
    cfg["rule_files"] = list(rule_files)
    jobs = []
    for job in cfg["scrape_configs"]:
        name = job["job_name"]
        if name in FILE_SD_JOBS:
            job["file_sd_configs"] = [{"files": [f"file_sd/{name}.json"], "refresh_interval": "30s"}]
        elif name in targets:
            job["static_configs"] = [{"targets": list(targets[name])}]
        else:
            continue
        jobs.append(job)
    known = {j["job_name"] for j in jobs} | set(FILE_SD_JOBS)
    for name in targets:
        if name not in known:
            jobs.append({"job_name": name, "static_configs": [{"targets": list(targets[name])}]})
    if tls is not None:
        for job in jobs:
            if job["job_name"] in SECURE_JOBS:
                job["scheme"], job["tls_config"] = "https", tls.tls_config(job["job_name"])
    cfg["scrape_configs"] = jobs
    return cfg


def write_file_sd(directory: Path, targets_by_job: Mapping[str, Sequence[FileSDGroup]]) -> None:
    """Write file_sd/<job>.json atomically (Prometheus re-reads a file when it is replaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    for job, groups in targets_by_job.items():
        path = directory / f"{job}.json"
        text = json.dumps(list(groups), indent=2, sort_keys=True) + "\n"
        if path.exists() and path.read_text() == text:
            continue
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def node_targets(nodes: Sequence[Any], *, kubelet_port: int = DEFAULT_PORTS["kubelet"],
                 proxy_port: int = DEFAULT_PORTS["proxy"]) -> dict[str, list[FileSDGroup]]:
    """file_sd groups for the kubelet and proxy jobs: each node's InternalIP with its name as `node`."""
    out: dict[str, list[FileSDGroup]] = {job: [] for job in FILE_SD_JOBS}
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        ips = [a.address for a in node.status.addresses if a.type == "InternalIP"]
        if not ips:
            continue
        labels = {"node": node.metadata.name}
        out["kubelet"].append({"targets": [f"{ips[0]}:{kubelet_port}"], "labels": labels})
        out["proxy"].append({"targets": [f"{ips[0]}:{proxy_port}"], "labels": labels})
    return out


async def sync_file_sd(client: Any, directory: Path, *, kubelet_port: int = DEFAULT_PORTS["kubelet"],
                       proxy_port: int = DEFAULT_PORTS["proxy"], stop: asyncio.Event | None = None) -> None:
    """Watch Nodes (pybernetes.cache informer over `client`) and keep the file_sd JSON in step until `stop`."""
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.cache.factory import InformerFactory

    factory = InformerFactory(client)
    informer = factory.informer_for(core.Node)
    changed = asyncio.Event()

    def mark(*_: Any) -> None:
        changed.set()

    informer.add_event_handler(mark, mark, mark)
    factory.start()
    stop = stop or asyncio.Event()
    try:
        await factory.wait_for_cache_sync()
        changed.set()
        while not stop.is_set():
            waiter = asyncio.create_task(changed.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if changed.is_set():
                changed.clear()
                groups = node_targets(informer.lister().list(), kubelet_port=kubelet_port, proxy_port=proxy_port)
                write_file_sd(directory, groups)
                log.info("file_sd updated dir=%s nodes=%d", directory, len(groups["kubelet"]))
    finally:
        await factory.shutdown()


async def http_get(host: str, port: int, path: str, *, netns: str | None = None,
                   timeout: float = 5.0) -> tuple[int, bytes]:
    """GET http://host:port/path (inside `netns` when given): (status, body); lab.health.get."""
    return await health.get(netns, f"http://{host}:{port}{path}", timeout=timeout)


class Prometheus:
    """One Prometheus server for the lab, configured from deploy/prometheus."""

    def __init__(self, workdir: Path, targets: Mapping[str, Sequence[str]], *,
                 listen: str = f"127.0.0.1:{ports.PROMETHEUS}", netns: str | None = None,
                 scrape_interval: str | None = None,
                 binary: str = "prometheus", tls: ScrapeTLS | None = None) -> None:
        self.workdir = workdir
        self.tls = tls
        self.targets = {k: list(v) for k, v in targets.items()}
        self.listen = listen
        self.netns = netns
        self.scrape_interval = scrape_interval
        self.binary = binary
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def file_sd_dir(self) -> Path:
        return self.workdir / "file_sd"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def write_config(self) -> None:
        """Config, rules, file_sd (kept if present) and the console library directory into workdir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rules").mkdir(exist_ok=True)
        shutil.copyfile(RULES, self.workdir / "rules" / "alerts.yml")
        cfg = render_config(self.targets, scrape_interval=self.scrape_interval, tls=self.tls)
        if "prometheus" in {j["job_name"] for j in cfg["scrape_configs"]}:
            for job in cfg["scrape_configs"]:
                if job["job_name"] == "prometheus":
                    job["static_configs"] = [{"targets": [self.listen]}]
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        for job in FILE_SD_JOBS:
            if not (self.file_sd_dir / f"{job}.json").exists():
                write_file_sd(self.file_sd_dir, {job: []})
        libs = self.workdir / "console_libraries"
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir()
        for lib in [*system_console_libraries().glob("*.lib"), *LIBRARY_DIR.glob("*.lib")]:
            shutil.copyfile(lib, libs / lib.name)

    def write_file_sd(self, targets_by_job: Mapping[str, Sequence[FileSDGroup]]) -> None:
        write_file_sd(self.file_sd_dir, targets_by_job)

    def command(self) -> list[str]:
        cmd = [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
               f"--web.listen-address={self.listen}", f"--web.console.templates={CONSOLES_DIR}",
               f"--web.console.libraries={self.workdir / 'console_libraries'}", "--web.enable-lifecycle",
               "--log.level=info"]
        return nsenter(self.netns, cmd) if self.netns else cmd

    async def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        with self.log_path.open("ab") as logf:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        log.info("prometheus started pid=%d listen=%s netns=%s", self._proc.pid, self.listen, self.netns or "-")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._proc.returncode is not None:
                raise PrometheusError(f"prometheus exited with {self._proc.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
                status, _ = await http_get(self.host, self.port, "/-/ready", netns=self.netns, timeout=2)
                if status == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise PrometheusError(f"prometheus not ready within {timeout}s: {self._log_tail()}")
            await asyncio.sleep(0.2)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""

    async def reload(self) -> None:
        """Re-read the config (after write_config with new targets); file_sd changes need no reload."""
        self.write_config()
        if self._proc and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGHUP)

    async def stop(self, grace: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path> and return its `data` (PrometheusError on an error status)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = await http_get(self.host, self.port, f"/api/v1/{path}{query}", netns=self.netns)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise PrometheusError(f"{path}: {status} {doc.get('error', body[:200])}")
        return doc["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        data = await self.api("query", query=expr)
        return list(data["result"])


# ---- promtool checks -------------------------------------------------------------------------------

def promtool_checks(promtool: str = "promtool") -> list[tuple[list[str], subprocess.CompletedProcess[str]]]:
    """Run promtool check config, check rules and test rules on the shipped files."""
    cmds = [
        [promtool, "check", "config", str(CONFIG_TEMPLATE)],
        [promtool, "check", "rules", str(RULES)],
        [promtool, "test", "rules", str(RULES_TEST)],
    ]
    return [(cmd, subprocess.run(cmd, capture_output=True, text=True, cwd=DEPLOY_DIR)) for cmd in cmds]


def _check(_: argparse.Namespace) -> int:
    if shutil.which("promtool") is None:
        print("promtool not found (apt-get install -y prometheus)", file=sys.stderr)
        return 2
    failed = 0
    for cmd, res in promtool_checks():
        ok = res.returncode == 0
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {' '.join(cmd)}")
        if not ok:
            print((res.stdout + res.stderr).rstrip())
    return 1 if failed else 0


def _parse_targets(items: Sequence[str]) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for item in items:
        job, sep, addr = item.partition("=")
        if not sep or not addr:
            raise SystemExit(f"--target wants JOB=HOST:PORT, got {item!r}")
        targets.setdefault(job, []).append(addr)
    return targets


async def _run_async(a: argparse.Namespace) -> int:
    targets = _parse_targets(a.target) if a.target else {
        job: [f"127.0.0.1:{port}"] for job, port in DEFAULT_PORTS.items() if job not in FILE_SD_JOBS}
    files = (a.ca_file, a.cert_file, a.key_file)
    if any(files) and not all(files):
        raise SystemExit("--ca-file, --cert-file and --key-file go together (Prometheus' scrape identity)")
    tls = ScrapeTLS(Path(a.ca_file), Path(a.cert_file), Path(a.key_file)) if all(files) else None
    prom = Prometheus(Path(a.workdir), targets, listen=a.listen, netns=a.netns, scrape_interval=a.scrape_interval,
                      tls=tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await prom.start()
    print(f"prometheus at {prom.url} (consoles: {prom.url}/consoles/index.html); Ctrl-C stops it", flush=True)
    sync: asyncio.Task[None] | None = None
    if a.sync_nodes:
        from pybernetes.client import config as client_config
        from pybernetes.client.client import Client

        client = Client.from_config(client_config.load(a.config))
        sync = asyncio.create_task(sync_file_sd(client, prom.file_sd_dir, stop=stop))
    try:
        await stop.wait()
    finally:
        if sync:
            await sync
        await prom.stop()
    return 0


async def _sync_async(a: argparse.Namespace) -> int:
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Client.from_config(client_config.load(a.config)) as client:
        await sync_file_sd(client, Path(a.dir), kubelet_port=a.kubelet_port, proxy_port=a.proxy_port, stop=stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.prometheus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="promtool check config/rules and test rules on deploy/prometheus")
    r = sub.add_parser("run", help="run a Prometheus for the lab until interrupted")
    r.add_argument("--workdir", required=True)
    r.add_argument("--listen", default=f"127.0.0.1:{ports.PROMETHEUS}")
    r.add_argument("--netns", default=None, help="run inside this network namespace (nsenter --net=)")
    r.add_argument("--target", action="append", default=[], metavar="JOB=HOST:PORT",
                   help="static target (repeatable); default: every control-plane component on 127.0.0.1")
    r.add_argument("--scrape-interval", default=None)
    r.add_argument("--sync-nodes", action="store_true", help="also keep file_sd in step with Node objects")
    r.add_argument("--config", "--kubeconfig", dest="config", default=None)
    r.add_argument("--ca-file", default=None, help="scrape SECURE_JOBS over HTTPS trusting this CA")
    r.add_argument("--cert-file", default=None, help="as this client certificate (group system:monitoring)")
    r.add_argument("--key-file", default=None, help="its key")
    s = sub.add_parser("sync-file-sd", help="keep kubelet/proxy file_sd JSON in step with Node objects")
    s.add_argument("--dir", required=True, help="the file_sd directory (next to prometheus.yml)")
    s.add_argument("--config", "--kubeconfig", dest="config", default=None)
    s.add_argument("--kubelet-port", type=int, default=DEFAULT_PORTS["kubelet"])
    s.add_argument("--proxy-port", type=int, default=DEFAULT_PORTS["proxy"])
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if a.cmd == "check":
        return _check(a)
    if a.cmd == "run":
        return asyncio.run(_run_async(a))
    return asyncio.run(_sync_async(a))


if __name__ == "__main__":
    sys.exit(main())
