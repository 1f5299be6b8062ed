"""Component options declared once (pybernetes.options): every component's flags, aliases and defaults
parse as they always did, and `to_argv` writes a Config back into a command line that parses to it."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import clusterdns.main as clusterdns
import netproxy.main as proxy
import node_agent.main as kubelet
import services.apiserver.main as apiserver
import services.controllers.main as controller_manager
import services.scheduler.main as scheduler
from pybernetes import flags, options, ports
from pybernetes.options import opt

COMPONENTS: dict[str, ModuleType] = {"pb-apiserver": apiserver, "pb-scheduler": scheduler,
                                     "pb-controller-manager": controller_manager, "pb-kubelet": kubelet,
                                     "pb-proxy": proxy, "pb-dns": clusterdns}

# Every flag each component took before its options were declared once (deploy/, the lab, docs use them).
FLAGS = {
    "pb-apiserver": {
        "--client-ca-file", "--max-requests-inflight", "--max-mutating-requests-inflight",
        "--admin-config", "--authorization-mode", "--advertise-address", "--bind-address", "--bookmark-interval",
        "--etcd-compaction-interval", "--data-dir", "--default-not-ready-toleration-seconds",
        "--default-unreachable-toleration-seconds", "--enable-metrics", "--etcd-client-port",
        "--etcd-metrics-port", "--etcd-peer-port", "--etcd-servers", "--health-port",
        "--kubelet-client-token-file", "--restore-from", "--secure-port", "--grpc-port", "--service-cluster-ip-range",
        "--service-node-port-range", "--token-auth-file", "-v", "--verbose", "--watch-cache-size",
        "--cert-dir", "--audit-log-path", "--audit-policy-file", "--audit-log-maxsize", "--audit-log-maxbackup",
        "--audit-log-maxage", "--encryption-provider-config", "--etcd-cafile", "--etcd-certfile", "--etcd-keyfile",
        "--kubelet-client-certificate", "--kubelet-client-key", "--kubelet-certificate-authority",
        "--enable-admission-plugins", "--disable-admission-plugins", "--service-account-issuer", "--api-audiences",
        "--service-account-key-file", "--service-account-signing-key-file", "--anonymous-auth",
        "--insecure-bind-address", "--insecure-grpc-port", "--insecure-port"},
    "pb-scheduler": {
        "--client-ca-file", "--tls-cert-file", "--tls-private-key-file",
        "--bind-address", "--bind-concurrency", "--config", "--health-port", "--secure-port", "--identity",
        "--kubeconfig", "--client-config", "--leader-elect", "--leader-elect-lease-duration",
        "--leader-elect-resource-name", "--leader-elect-resource-namespace", "--leader-elect-renew-deadline",
        "--leader-elect-retry-period", "--scheduler-name", "--server", "--master", "--token", "-v", "--verbose"},
    "pb-controller-manager": {
        "--client-ca-file", "--tls-cert-file", "--tls-private-key-file",
        "--allocate-node-cidrs", "--bind-address", "--cluster-cidr", "--concurrent-deployment-syncs",
        "--concurrent-daemonset-syncs", "--concurrent-statefulset-syncs",
        "--concurrent-endpoint-syncs", "--concurrent-gc-syncs", "--concurrent-namespace-syncs",
        "--concurrent-nodeipam-syncs", "--concurrent-nodelifecycle-syncs", "--concurrent-rc-syncs",
        "--concurrent-replicaset-syncs", "--concurrent-serviceaccount-syncs", "--concurrent-servicelb-syncs",
        "--concurrent-job-syncs", "--concurrent-cron-job-syncs",
        "--concurrent-resource-quota-syncs", "--concurrent-service-endpoint-syncs",
        "--max-endpoints-per-slice", "--mirroring-max-endpoints-subset-size",
        "--config", "--kubeconfig", "--controllers", "--default-not-ready-toleration-seconds",
        "--default-unreachable-toleration-seconds", "--health-port", "--secure-port", "--identity",
        "--large-cluster-size-threshold", "--leader-elect", "--leader-elect-lease-duration",
        "--leader-elect-renew-deadline", "--leader-elect-resource-name", "--leader-elect-resource-namespace",
        "--leader-elect-retry-period", "--loadbalancer-ip-range", "--node-cidr-mask-size",
        "--node-eviction-rate", "--node-monitor-grace-period", "--node-monitor-period",
        "--pod-eviction-timeout", "--secondary-node-eviction-rate", "--server", "--token",
        "--unhealthy-zone-threshold", "--root-ca-file", "-v", "--verbose"},
    "pb-kubelet": {
        "--address", "--authentication-token-file", "--cni-conf-dir", "--cni-data-dir", "--config", "--kubeconfig",
        "--containerd-socket", "--container-runtime-endpoint", "--cpu", "--eviction-hard",
        "--eviction-pressure-transition-period", "--health-host", "--health-port", "--healthz-port",
        "--max-pods", "--memory", "--node-ip", "--node-labels", "--node-lease-duration", "--node-name",
        "--node-status-update-frequency", "--node-status-report-frequency", "--pod-cidr", "--port", "--probe-netns",
        "--register-node",
        "--root-dir", "--server", "--sync-frequency", "--token", "-v", "--verbose",
        "--cluster-dns", "--cluster-domain", "--resolv-conf", "--tls-cert-file", "--tls-private-key-file",
        "--client-ca-file"},
    "pb-proxy": {
        "--client-ca-file", "--tls-cert-file", "--tls-private-key-file", "--metrics-bind-address",
        "--backend", "--proxy-mode", "--bind-address", "--cleanup", "--cluster-cidr", "--config", "--conntrack",
        "--health-port", "--healthz-port", "--hostname-override", "--kubeconfig", "--client-config",
        "--manage-routes", "--masquerade-all", "--metrics-port", "--min-sync-period", "--netns",
        "--nodeport-addresses", "--server", "--master", "--service-cidr", "--service-cluster-ip-range",
        "--sync-period", "--token", "-v", "--verbose", "--endpoint-source"},
    "pb-dns": {
        "--client-ca-file", "--tls-cert-file", "--tls-private-key-file",
        "--kubeconfig", "--client-config", "--server", "--master", "--token", "--cluster-domain", "--bind-address",
        "--port", "--dns-port", "--health-bind-address", "--metrics-bind-address", "--health-port", "--metrics-port",
        "--upstream", "-v", "--verbose", "--endpoint-source"},
}


def parse(prog: str, argv: list[str]) -> Any:
    return options.parse_args(COMPONENTS[prog].Config, argv, prog=prog)


def flag_names(prog: str) -> set[str]:
    p = options.parser_for(COMPONENTS[prog].Config, prog=prog)
    return {s for a in p._actions for s in a.option_strings} - {"-h", "--help"}


@pytest.mark.parametrize("prog", COMPONENTS)
def test_every_flag_and_alias_is_kept(prog: str) -> None:
    assert flag_names(prog) == FLAGS[prog]


@pytest.mark.parametrize("prog", COMPONENTS)
def test_no_flags_give_the_dataclass_defaults(prog: str) -> None:
    cfg = parse(prog, [])
    assert cfg == COMPONENTS[prog].Config()
    assert options.to_argv(cfg) == []


def _other(f: dataclasses.Field[Any], o: options.Option, hint: Any, default: Any) -> Any:
    """A value different from the default that the option can carry."""
    if o.keyed is not None:
        return {k: v + 1 for k, v in default.items()}
    if o.choices:
        return next(c for c in o.choices if c != default)
    base = options._base(hint)
    if base is bool:
        return not default
    if base is int:
        return (default or 0) + 7
    if base is float:
        return (default or 0.0) + (90.0 if o.parse is flags.duration else 1.5)
    if base is Path:
        return Path("/tmp/pb-options") / f.name
    if f.name.endswith("_admission_plugins"):  # names are checked against the plugin table
        return ["NodeRestriction", "PodSecurity"]
    if typing.get_origin(base) is list:
        return ["endpoint", "-nodeipam"] if o.append else ["a", "b"]
    if typing.get_origin(base) is dict:
        return {"a": "1", "b": ""}
    if f.name == "eviction_hard":
        return "memory.available<1Mi"
    return f"x-{f.name}"


@pytest.mark.parametrize("prog", COMPONENTS)
def test_round_trip_of_every_option(prog: str) -> None:
    cls = COMPONENTS[prog].Config
    changed = {f.name: _other(f, o, hint, options.default_of(f))
               for f, o, hint in options.options_of(cls) if o.file is None}
    cfg = cls(**changed)
    argv = options.to_argv(cfg)
    assert parse(prog, argv) == cfg, argv
    assert len(argv) >= len(changed)  # every changed option is on the command line


@pytest.mark.parametrize("prog", COMPONENTS)
def test_only_what_differs_is_written(prog: str) -> None:
    assert options.to_argv(COMPONENTS[prog].Config(health_port=1)) == ["--health-port=1"]


def test_aliases() -> None:
    assert parse("pb-apiserver", ["--secure-port=7443"]).secure_port == 7443  # Kubernetes' meaning: HTTPS
    assert parse("pb-apiserver", ["--grpc-port", "7442"]).grpc_port == 7442
    assert parse("pb-scheduler", ["--client-config", "/c", "--master", "m:1", "--secure-port", "0"]) == \
        scheduler.Config(kubeconfig="/c", server="m:1", health_port=0)
    assert parse("pb-controller-manager", ["--kubeconfig", "/c", "--secure-port=1"]) == \
        controller_manager.Config(config="/c", health_port=1)
    assert parse("pb-kubelet", ["--container-runtime-endpoint", "/s", "--healthz-port", "1"]) == \
        kubelet.Config(containerd_socket="/s", health_port=1)
    assert parse("pb-proxy", ["--proxy-mode", "iptables", "--service-cluster-ip-range", "10.9.0.0/16",
                              "--healthz-port", "1", "--client-config", "/c", "--master", "m"]) == \
        proxy.Config(backend="iptables", service_cidr="10.9.0.0/16", health_port=1, kubeconfig="/c", server="m")


def test_port_defaults_are_the_named_ports() -> None:
    a = apiserver.Config()
    assert (a.secure_port, a.grpc_port) == (ports.APISERVER, ports.APISERVER_GRPC)
    # A standalone apiserver's other ports are picked (0) unless given: two of them, or tests and a lab, coexist.
    assert (a.health_port, a.etcd_client_port, a.etcd_peer_port, a.etcd_metrics_port) == (0, 0, 0, 0)
    assert apiserver.health_port(a) == ports.APISERVER_HEALTH  # beside the default API port: Kubernetes' pair
    other = apiserver.health_port(apiserver.Config(secure_port=7443))
    assert other != ports.APISERVER_HEALTH and ports.PORT_RANGE[0] <= other <= ports.PORT_RANGE[1]
    assert apiserver.health_port(apiserver.Config(secure_port=7443, health_port=7444)) == 7444
    assert scheduler.Config().health_port == ports.SCHEDULER
    assert controller_manager.Config().health_port == ports.CONTROLLER_MANAGER
    assert (kubelet.Config().port, kubelet.Config().health_port) == (ports.KUBELET, ports.KUBELET_HEALTH)
    assert (proxy.Config().health_port, proxy.Config().metrics_port) == (ports.PROXY_HEALTH, ports.PROXY_METRICS)


def test_bool_flags_take_a_value_or_none() -> None:
    assert parse("pb-apiserver", ["--enable-metrics=false"]).enable_metrics is False
    assert parse("pb-apiserver", ["--enable-metrics"]).enable_metrics is True
    assert parse("pb-kubelet", ["--register-node", "false"]).register_node is False
    assert options.to_argv(kubelet.Config(register_node=False, node_name="n")) == \
        ["--node-name=n", "--register-node=false"]
    assert options.to_argv(proxy.Config(cleanup=True, verbose=True)) == ["--cleanup", "--verbose"]


def test_appended_and_keyed_flags() -> None:
    cm = parse("pb-controller-manager", ["--controllers=*,-nodeipam", "--controllers", "servicelb",
                                         "--concurrent-gc-syncs=3", "--concurrent-rc-syncs", "2"])
    assert cm.controllers == ["*,-nodeipam", "servicelb"]
    assert cm.concurrency["garbagecollector"] == 3 and cm.concurrency["replicationcontroller"] == 2
    assert cm.concurrency["endpoint"] == 5  # unset keys keep the table's default
    assert options.to_argv(cm) == ["--controllers=*,-nodeipam", "--controllers=servicelb",
                                   "--concurrent-rc-syncs=2", "--concurrent-gc-syncs=3"]


def test_kubelet_command_line() -> None:
    cfg = kubelet.Config(node_name="node-1", node_ip="172.30.0.11", pod_cidr="10.244.1.0/24",
                         node_status_update_frequency=2.0, sync_frequency=90.0, node_labels={"zone": "a"},
                         health_host="0.0.0.0")
    assert options.to_argv(cfg) == [
        "--node-name=node-1", "--pod-cidr=10.244.1.0/24", "--node-ip=172.30.0.11",
        "--node-status-update-frequency=2s", "--health-host=0.0.0.0", "--node-labels=zone=a",
        "--sync-frequency=1m30s"]


@pytest.mark.parametrize(("prog", "argv", "message"), [
    ("pb-controller-manager", ["--controllers=bogus"], "argument --controllers: unknown controllers: bogus"),
    ("pb-kubelet", ["--eviction-hard=memory.available<lots"], "argument --eviction-hard:"),
    ("pb-kubelet", ["--sync-frequency=5x"], "argument --sync-frequency: invalid duration '5x'"),
    ("pb-proxy", ["--backend=ipvs"], "argument --backend/--proxy-mode: invalid choice: 'ipvs'"),
    ("pb-scheduler", ["--leader-elect=maybe"], "argument --leader-elect: invalid boolean 'maybe'"),
])
def test_bad_values_exit_2_naming_the_flag(prog: str, argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        COMPONENTS[prog].parse_args(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_proxy_config_file_under_explicit_flags(tmp_path: Path) -> None:
    conf = tmp_path / "proxy.yaml"
    conf.write_text("mode: iptables\nclusterCIDR: 10.1.0.0/16\niptables:\n  minSyncPeriod: 2s\n  syncPeriod: 1m\n"
                    "healthzBindAddress: 0.0.0.0:1234\nclientConnection:\n  kubeconfig: /k\n")
    cfg = parse("pb-proxy", ["--config", str(conf), "--min-sync-period=3s", "--backend", "nftables"])
    assert cfg.config_file == conf and cfg.cluster_cidr == "10.1.0.0/16" and cfg.sync_period == 60
    assert cfg.health_port == 1234 and cfg.kubeconfig == "/k"
    assert cfg.min_sync_period == 3 and cfg.backend == "nftables"  # flags given explicitly win
    # With a file named, every option is written: a default left out would lose to the file's value.
    argv = options.to_argv(cfg)
    assert f"--config={conf}" in argv and "--backend=nftables" in argv
    assert parse("pb-proxy", argv) == cfg


def test_proxy_config_file_mode_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "proxy.yaml"
    conf.write_text("mode: ipvs\n")
    with pytest.raises(SystemExit) as e:
        proxy.parse_args(["--config", str(conf)])
    assert e.value.code == 2 and "--backend must be one of nftables, iptables" in capsys.readouterr().err


def test_the_mechanism_on_its_own() -> None:
    @dataclass
    class Config:
        name: str = opt("x", "--name", "-n", help="a name")
        period: float = opt(30.0, parse=flags.duration)
        tags: list[str] = opt([])
        on: bool = opt(True)
        plain: int = 3  # not a flag

    p = options.parser_for(Config, prog="pb-test")
    assert {s for a in p._actions for s in a.option_strings} == {"-h", "--help", "--name", "-n", "--period",
                                                                  "--tags", "--on"}
    assert "a name (default x)" in p.format_help() and "default 30s" in p.format_help()
    cfg = options.parse_args(Config, ["-n", "y", "--period", "1m30s", "--tags", "a, b", "--on=false"], prog="t")
    assert cfg == Config(name="y", period=90.0, tags=["a", "b"], on=False)
    assert options.to_argv(cfg) == ["--name=y", "--period=1m30s", "--tags=a,b", "--on=false"]
    assert Config().tags is not Config().tags  # list defaults are copied
    with pytest.raises(ValueError, match="--name: None has no command line"):
        options.to_argv(Config(name=None))  # type: ignore[arg-type]  # what a caller's mistake looks like
    with pytest.raises(SystemExit):  # a plain field has no flag
        options.parse_args(Config, ["--plain", "4"], prog="t")
