"""The shipped Prometheus files (deploy/prometheus) pass promtool, and the lab helper renders valid configs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import prometheus as lab

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install -y prometheus; "
                                                          "deploy/install-deps.sh installs it)")


def promtool(*args: str, cwd: Path = lab.DEPLOY_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def assert_ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
def test_shipped_config_is_valid() -> None:
    assert_ok(promtool("check", "config", str(lab.CONFIG_TEMPLATE)))


@needs_promtool
def test_shipped_rules_are_valid() -> None:
    res = promtool("check", "rules", str(lab.RULES))
    assert_ok(res)
    names = {r["alert"] for g in yaml.safe_load(lab.RULES.read_text())["groups"] for r in g["rules"]}
    assert {"ComponentDown", "NodeNotReady", "HighApiserverErrorRate", "PodCrashLooping"} <= names


@needs_promtool
def test_alert_unit_tests_pass() -> None:
    assert_ok(promtool("test", "rules", str(lab.RULES_TEST)))


@needs_promtool
def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(lab.RULES.read_text())["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load(lab.RULES_TEST.read_text())["tests"]
              for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts == tested


@needs_promtool
def test_lab_check_command() -> None:
    assert lab.main(["check"]) == 0


def test_scrape_jobs_cover_every_component() -> None:
    cfg = yaml.safe_load(lab.CONFIG_TEMPLATE.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert {"apiserver", "scheduler", "controller-manager", "etcd", "kubelet", "proxy"} <= set(jobs)
    assert jobs["apiserver"]["static_configs"][0]["targets"] == ["127.0.0.1:6444"]
    assert jobs["etcd"]["static_configs"][0]["targets"] == ["127.0.0.1:2381"]
    for node_job in ("kubelet", "proxy"):
        assert "static_configs" not in jobs[node_job]
        assert jobs[node_job]["file_sd_configs"][0]["files"] == [f"file_sd/{node_job}.json"]


@needs_promtool
def test_rendered_config_is_valid(tmp_path: Path) -> None:
    prom = lab.Prometheus(tmp_path, {"apiserver": ["127.0.0.1:16444"], "etcd": ["127.0.0.1:12379"],
                                     "prometheus": []}, listen="127.0.0.1:19999", scrape_interval="2s")
    prom.write_config()
    cfg = yaml.safe_load(prom.config_path.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == {"apiserver", "etcd", "kubelet", "proxy", "prometheus"}
    assert jobs["apiserver"]["static_configs"] == [{"targets": ["127.0.0.1:16444"]}]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:19999"]}]
    assert cfg["global"]["scrape_interval"] == "2s"
    assert (tmp_path / "console_libraries" / "prom.lib").is_file()
    assert (tmp_path / "console_libraries" / "pybernetes.lib").is_file()
    assert_ok(promtool("check", "config", str(prom.config_path), cwd=tmp_path))


@needs_promtool
def test_rendered_config_scrapes_secure_jobs_with_its_identity(tmp_path: Path) -> None:
    """With the cluster's PKI every component but etcd (and Prometheus itself) is scraped over HTTPS with the
    Prometheus client certificate; promtool accepts it (it checks that the files exist)."""
    from pybernetes import pkiutil as pki

    ca_dir = tmp_path / "pki"
    pair = pki.ensure_client_cert(ca_dir, "prometheus", lab.PROMETHEUS_USER, [lab.MONITORING_GROUP])
    scrape = lab.ScrapeTLS(ca_dir / "ca.crt", pair.cert, pair.key)
    prom = lab.Prometheus(tmp_path / "prom", {"apiserver": ["127.0.0.1:6444"], "scheduler": ["127.0.0.1:10259"],
                                              "etcd": ["127.0.0.1:2381"], "prometheus": []}, tls=scrape)
    prom.write_config()
    cfg = yaml.safe_load(prom.config_path.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    for name in ("apiserver", "scheduler", "kubelet", "proxy"):
        assert jobs[name]["scheme"] == "https", name
        assert jobs[name]["tls_config"] == {"ca_file": str(ca_dir / "ca.crt"), "cert_file": str(pair.cert),
                                            "key_file": str(pair.key)}
    for name in ("etcd", "prometheus"):  # etcd: plain HTTP on loopback, never an etcd-CA certificate
        assert "scheme" not in jobs[name] and "tls_config" not in jobs[name], name
    assert_ok(promtool("check", "config", str(prom.config_path), cwd=tmp_path))


class _Addr:
    def __init__(self, type: str, address: str) -> None:
        self.type, self.address = type, address


class _Node:
    def __init__(self, name: str, *addrs: tuple[str, str]) -> None:
        self.metadata = type("M", (), {"name": name})()
        self.status = type("S", (), {"addresses": [_Addr(t, a) for t, a in addrs]})()


def test_node_targets_and_file_sd(tmp_path: Path) -> None:
    nodes: list[Any] = [_Node("node-b", ("Hostname", "node-b"), ("InternalIP", "172.30.0.12")),
                        _Node("node-a", ("InternalIP", "172.30.0.11")),
                        _Node("no-ip", ("Hostname", "no-ip"))]
    groups = lab.node_targets(nodes, kubelet_port=10248, proxy_port=10249)
    assert groups["kubelet"] == [{"targets": ["172.30.0.11:10248"], "labels": {"node": "node-a"}},
                                 {"targets": ["172.30.0.12:10248"], "labels": {"node": "node-b"}}]
    assert groups["proxy"][0] == {"targets": ["172.30.0.11:10249"], "labels": {"node": "node-a"}}
    lab.write_file_sd(tmp_path, groups)
    assert json.loads((tmp_path / "kubelet.json").read_text()) == groups["kubelet"]
    assert not list(tmp_path.glob("*.tmp"))


@needs_promtool
def test_grafana_dashboards_are_current_and_their_queries_parse(tmp_path: Path) -> None:
    """The JSON matches build.py's output, and every panel query is valid PromQL (as recording rules)."""
    gdir = lab.DEPLOY_DIR / "grafana"
    exprs: list[str] = []
    for path in sorted(gdir.glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] and board["panels"], path
        exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(list(gdir.glob("*.json"))) == 5
    out = tmp_path / "build"
    out.mkdir()
    shutil.copy(gdir / "build.py", out / "build.py")
    subprocess.run([sys.executable, str(out / "build.py")], check=True, capture_output=True)
    for path in gdir.glob("*.json"):
        assert (out / path.name).read_text() == path.read_text(), f"{path.name} is stale: run {gdir}/build.py"
    rules = {"groups": [{"name": "grafana", "rules": [
        {"record": f"grafana:expr{i}", "expr": e.replace("$node", "x")} for i, e in enumerate(exprs)]}]}
    (tmp_path / "exprs.yml").write_text(yaml.safe_dump(rules))
    assert_ok(promtool("check", "rules", str(tmp_path / "exprs.yml")))
