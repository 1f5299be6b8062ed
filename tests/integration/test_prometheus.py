"""A real Prometheus (deploy/prometheus config, rules, consoles) scraping a real apiserver and etcd."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.prometheus import Prometheus, http_get, sync_file_sd
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from tests.helpers import eventually
from tests.integration.conftest import ApiServer, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="prometheus not installed (apt-get install -y prometheus; deploy/install-deps.sh)"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CONSOLES = ["index.html", "pybernetes-overview.html", "pybernetes-apiserver.html", "pybernetes-scheduler.html",
            "pybernetes-kubelet.html", "pybernetes-kubelet.html?node=node-1", "pybernetes-proxy.html"]


@pytest.fixture
async def prom(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[Prometheus]:
    etcd = apiserver.etcd.endpoint.removeprefix("http://")
    server = Prometheus(tmp_path / "prometheus",
                        {"apiserver": [f"127.0.0.1:{apiserver.cfg.health_port}"], "etcd": [etcd], "prometheus": []},
                        listen=f"127.0.0.1:{free_port()}", scrape_interval="1s")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def value(prom: Prometheus, expr: str) -> float | None:
    result = await prom.query(expr)
    return float(result[0]["value"][1]) if result else None


async def test_scrapes_apiserver_and_etcd(apiserver: ApiServer, prom: Prometheus) -> None:
    for job in ("apiserver", "etcd", "prometheus"):
        async def is_up(job: str = job) -> bool:
            return await value(prom, f'up{{job="{job}"}}') == 1.0
        await eventually(is_up, timeout=30, interval=0.5, what=f"up{{job={job!r}}} == 1")

    # etcd's own metrics come through its client URL.
    assert await value(prom, 'sum(etcd_server_has_leader{job="etcd"})') == 1.0

    total = 'sum(apiserver_request_total{job="apiserver"})'
    await apiserver.client.list(core.Namespace)  # a labelled counter has no series before its first request

    async def scraped() -> bool:
        return await value(prom, total) is not None
    await eventually(scraped, timeout=30, interval=0.5, what="apiserver_request_total scraped")
    before = await value(prom, total)
    assert before is not None
    for _ in range(5):
        await apiserver.client.list(core.Namespace)

    async def moved() -> bool:
        now = await value(prom, total)
        return now is not None and now >= before + 5
    await eventually(moved, timeout=30, interval=0.5, what="apiserver_request_total moved by 5")
    assert await value(prom, 'sum(apiserver_request_total{job="apiserver",verb="list",resource="namespaces"})')

    # The rules are loaded, and nothing fires for a healthy apiserver/etcd.
    groups = (await prom.api("rules"))["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} >= {"ComponentDown", "NodeNotReady",
                                                               "HighApiserverErrorRate", "PodCrashLooping"}
    assert not await prom.query('ALERTS{alertstate="firing"}')

    # Every console renders (template errors come back as 500 with the message).
    for page in CONSOLES:
        status, body = await http_get(prom.host, prom.port, f"/consoles/{page}")
        assert status == 200, (page, body[:500])
        assert b"error executing template" not in body, page
    status, body = await http_get(prom.host, prom.port, "/consoles/pybernetes-overview.html")
    assert b"pybernetes cluster" in body

    await screenshot(f"{prom.url}/consoles/pybernetes-overview.html", ARTIFACTS / "prometheus-overview.png")
    await screenshot(f"{prom.url}/consoles/pybernetes-apiserver.html", ARTIFACTS / "prometheus-apiserver.png")


async def test_file_sd_follows_nodes(apiserver: ApiServer, prom: Prometheus) -> None:
    """A new Node appears as kubelet/proxy targets without touching the config (file_sd from the watch).

    The kubelet "port" is the apiserver's health port here, so the new target really answers."""
    stop = asyncio.Event()
    sync = asyncio.create_task(sync_file_sd(apiserver.client, prom.file_sd_dir,
                                            kubelet_port=apiserver.cfg.health_port, proxy_port=free_port(),
                                            stop=stop))
    try:
        node = await apiserver.client.create(codec.from_dict({"metadata": {"name": "node-1"}}, core.Node))
        node.status.addresses.add(type="InternalIP", address="127.0.0.1")
        await apiserver.client.update_status(node)

        async def kubelet_up() -> bool:
            return await value(prom, 'up{job="kubelet",node="node-1"}') == 1.0
        await eventually(kubelet_up, timeout=40, interval=0.5, what="kubelet target for node-1 up")

        async def proxy_down() -> bool:  # nothing listens on the proxy port: scraped, and down
            return await value(prom, 'up{job="proxy",node="node-1"}') == 0.0
        await eventually(proxy_down, timeout=40, interval=0.5, what="proxy target for node-1 scraped")

        await apiserver.client.delete(core.Node, "node-1")

        async def gone() -> bool:
            return '"node-1"' not in (prom.file_sd_dir / "kubelet.json").read_text()
        await eventually(gone, timeout=20, what="node-1 removed from file_sd")
    finally:
        stop.set()
        await asyncio.wait_for(sync, 10)


async def screenshot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install -y chromium) for the console screenshot")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000", f"--screenshot={out}",
            "--window-size=1400,1000", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), 90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert out.is_file(), output.decode(errors="replace")[-2000:]
    assert out.stat().st_size > 20_000, f"{out} is only {out.stat().st_size} bytes"
