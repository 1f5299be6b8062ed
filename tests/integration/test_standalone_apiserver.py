"""Standalone pb-apiservers (the console script, embedded etcd) take no fixed port but the API's: two of them
run side by side with default flags, each on its own picked etcd and health ports."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port

PB_APISERVER = Path(sys.executable).parent / "pb-apiserver"


def wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "apiserver serving" in text:
            return text
        assert proc.poll() is None, f"pb-apiserver exited with {proc.returncode}:\n{text}"
        time.sleep(0.2)
    raise AssertionError(f"pb-apiserver not serving after {timeout}s:\n{log.read_text()}")


async def test_two_standalone_apiservers_side_by_side(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        logs, api_ports = [], []
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"{name}.log"
            with log.open("wb") as f:
                procs.append(subprocess.Popen([str(PB_APISERVER), f"--data-dir={tmp_path / name}",
                                               f"--grpc-port={port}", f"--secure-port={free_port()}"],
                                              stdout=f, stderr=subprocess.STDOUT))
            logs.append(log)
            api_ports.append(port)
        texts = [wait_serving(p, log) for p, log in zip(procs, logs, strict=True)]
        taken = []
        for text in texts:
            m = re.search(r"client_port=(\d+) peer_port=(\d+) metrics_port=(\d+)", text)
            h = re.search(r"health_port=(\d+)", text)
            assert m and h, text
            taken.append({*map(int, m.groups()), int(h.group(1))})
        assert not taken[0] & taken[1], taken  # every picked port differs
        for name, port in zip(("a", "b"), api_ports, strict=True):
            cfg = client_config.load(str(tmp_path / name / "admin.conf"))
            assert cfg.server.endswith(f":{port}")
            async with Client.from_config(cfg, timeout=10) as c:
                names = {n.metadata.name for n in (await c.list(core.Namespace)).items}
                assert {"default", "kube-system"} <= names
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
