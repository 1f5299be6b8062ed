"""The lab's Prometheus (`lab up`'s last step before the Ready wait): `python -m lab.prometheus run` in
pb-control-plane, scraping every control-plane component on its pybernetes.ports port and the nodes through file_sd
kept in step with the Node objects, every 15 s (deploy/prometheus/prometheus.yml's interval), plus a host relay on
127.0.0.1 for the browser. It scrapes as its own identity: user `prometheus` in group system:monitoring
(lab.control_plane makes the certificate from the cluster CA), over HTTPS; etcd's metrics listener is plain HTTP
on the control plane's loopback.

Skipped, with a note, when the prometheus binary is not installed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lab.health import tcp_ok, wait_for, wait_healthy
from lab.processes import spawn, start_relay
from lab.state import LabState
from lab.topology import CP_NETNS, pki_dir
from pybernetes import ports


async def maybe_prometheus(st: LabState) -> str:
    """Start Prometheus and its relay (the URL lands in st.info["prometheus_url"]); a note for the progress line."""
    if shutil.which("prometheus") is None:
        return "skipped: prometheus is not installed"
    nodes = st.info.get("nodes", [])
    targets = {"apiserver": [f"127.0.0.1:{ports.APISERVER_HEALTH}"], "scheduler": [f"127.0.0.1:{ports.SCHEDULER}"],
               "controller-manager": [f"127.0.0.1:{ports.CONTROLLER_MANAGER}"],
               "etcd": [f"127.0.0.1:{m.get('metrics_port', ports.ETCD_METRICS)}" for m in st.info.get("etcd", [{}])],
               "prometheus": [f"127.0.0.1:{ports.PROMETHEUS}"],
               "dns": [f"127.0.0.1:{ports.DNS_METRICS}"]}
    argv = [sys.executable, "-m", "lab.prometheus", "run", f"--workdir={Path(st.dir) / 'prometheus'}",
            f"--listen=127.0.0.1:{ports.PROMETHEUS}", f"--netns={CP_NETNS}", "--sync-nodes",
            f"--config={Path(st.dir) / 'admin.conf'}"]
    pki = pki_dir(Path(st.dir))
    argv += [f"--ca-file={pki / 'ca.crt'}", f"--cert-file={pki / 'prometheus.crt'}",
             f"--key-file={pki / 'prometheus.key'}"]
    for job, addrs in targets.items():
        argv += [f"--target={job}={a}" for a in addrs]
    rec = spawn(st, "prometheus", "prometheus", argv)
    await wait_healthy(st, rec, "prometheus", timeout=60, interval=0.3)
    relay_rec = start_relay(st, "prometheus-relay", port_key="prometheus_port", want=ports.PROMETHEUS,
                            target=f"127.0.0.1:{ports.PROMETHEUS}")
    port = int(st.info["prometheus_port"])
    await wait_for(lambda: tcp_ok("127.0.0.1", port), "prometheus relay", rec=relay_rec)
    url = f"http://127.0.0.1:{port}"
    st.info["prometheus_url"] = url
    st.save()
    return f"{url} ({len(nodes)} nodes via file_sd)"
