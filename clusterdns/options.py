"""pb-dns's flags (`Config`), apart from main so that whoever only builds its command line (the lab) does not
import the DNS server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pybernetes import ports, secureserving
from pybernetes.api.endpointslices import ENDPOINTSLICES, SOURCES
from pybernetes.options import opt


@dataclass
class Config:
    kubeconfig: str | None = opt(None, "--kubeconfig", "--client-config",
                                 help="client config (default $PBCONFIG, ~/.pybernetes/config)")
    server: str = opt("", "--server", "--master", help="apiserver address")
    token: str = opt("", help="bearer token")
    cluster_domain: str = opt("cluster.local", help="the zone this server is authoritative for")
    bind_address: str = opt("0.0.0.0", help="address of the DNS listeners (UDP and TCP)")
    port: int = opt(ports.DNS, "--port", "--dns-port", help="DNS port (UDP and TCP)")
    health_bind_address: str = opt("0.0.0.0", "--health-bind-address", "--metrics-bind-address",
                                   help="address of /metrics, /healthz, /readyz")
    health_port: int = opt(ports.DNS_METRICS, "--health-port", "--metrics-port",
                           help="/metrics, /healthz, /readyz (CoreDNS' metrics port)")
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    endpoint_source: str = opt(ENDPOINTSLICES, choices=SOURCES,
                               help="read endpoints from EndpointSlices (the default, as CoreDNS does: selectorless "
                                    "Services' Endpoints reach them through the endpointslicemirroring controller) "
                                    "or Endpoints")
    upstream: list[str] = opt([], help="nameservers (IP[:PORT],...) for names outside the cluster domain; "
                                       "none: those get SERVFAIL at once")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)
