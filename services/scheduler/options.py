"""pb-scheduler's flags (`Config`), apart from main so that whoever only builds a scheduler's command line (the
lab) does not import the scheduler (kube-scheduler's app/options). The scheduling profile is config.py's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pybernetes import flags, ports, secureserving
from pybernetes.client import config as client_config
from pybernetes.options import opt


@dataclass
class Config:
    kubeconfig: str | None = opt(None, "--kubeconfig", "--client-config",
                                 help=client_config.SEARCH_HELP)
    server: str = opt("", "--server", "--master", help="apiserver address (overrides the config)")
    token: str = opt("", help="bearer token (overrides the config)")
    config_file: Path | None = opt(None, "--config", help="SchedulerConfiguration / KubeSchedulerConfiguration YAML")
    scheduler_name: str = opt("", help="schedule pods with this spec.schedulerName (overrides the config file's)")
    leader_elect: bool = opt(True, help="run leader election; only the leader schedules")
    lease_name: str = opt("kube-scheduler", "--leader-elect-resource-name")
    lease_namespace: str = opt("kube-system", "--leader-elect-resource-namespace")
    lease_duration: float = opt(15.0, "--leader-elect-lease-duration", parse=flags.duration)
    renew_deadline: float = opt(10.0, "--leader-elect-renew-deadline", parse=flags.duration)
    retry_period: float = opt(2.0, "--leader-elect-retry-period", parse=flags.duration)
    identity: str = opt("", help="leader election identity (default hostname_uuid)")
    bind_address: str = opt("127.0.0.1", help="address of the health/metrics server")
    health_port: int = opt(ports.SCHEDULER, "--health-port", "--secure-port",
                           help="HTTP(S) port for /metrics, /healthz, /readyz (0: any free port)")
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    bind_concurrency: int = opt(64)
    verbose: bool = opt(False, "-v", "--verbose", switch=True)
