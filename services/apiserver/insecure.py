"""The bench/test-only plaintext listeners: --insecure-grpc-port (gRPC) and --insecure-port (REST over HTTP) on
--insecure-bind-address, which must be a loopback address.

Kubernetes removed its insecure port (1.20 to 1.24) because it skipped authentication and authorization; these
do not bring that back. They serve the same gRPC server and the same aiohttp application as the secure ports,
so every request still goes through the configured authenticators and authorizers; only TLS is missing, and
with it the client certificate. A plaintext request therefore needs a bearer token, or --anonymous-auth=true
(then it is system:anonymous, allowed only what the authorizers allow that user). Turning security off
entirely is the three flags together, as bench/security.py measures its baseline:
`--insecure-grpc-port=P --anonymous-auth=true --authorization-mode=AlwaysAllow`.

Anything else than a loopback IP is refused at start (a ConfigError naming the flag, before anything
starts), and each listener logs a warning when it opens. Never in a real cluster: the lab and deploy/ leave
both ports at 0 (off).
"""

from __future__ import annotations

import ipaddress
import logging

import grpc

from pybernetes import errors, rpc

from .http.app import HttpServer

log = logging.getLogger("pybernetes.apiserver")


def check_bind_address(address: str, grpc_port: int, http_port: int) -> None:
    """A ConfigError unless both ports are off or `address` is a loopback IP (127.0.0.0/8, ::1)."""
    if not grpc_port and not http_port:
        return
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise errors.ConfigError(
            f"--insecure-bind-address: {address!r} is not a loopback IP address; the plaintext ports "
            "(--insecure-grpc-port, --insecure-port) are for benches and tests on this host only (use 127.0.0.1)")


def _warn(kind: str, address: str) -> None:
    log.warning("INSECURE: serving the %s API without TLS address=%s (bench/test only: no client certificates, "
                "traffic in clear text; never in a real cluster)", kind, address)


def bind_grpc(server: grpc.aio.Server, address: str, port: int) -> int:
    """Add a plaintext port to `server` (before it starts); the bound port."""
    host = f"[{address}]" if ":" in address else address  # ::1
    bound = rpc.bind(server, f"{host}:{port}")
    _warn("gRPC", f"{host}:{bound}")
    return bound


async def start_http(https: HttpServer, address: str, port: int) -> None:
    """Serve `https`'s application over plain HTTP on `port` too (after https.start)."""
    await https.start_plaintext(address, port)
    _warn("REST", f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}")
