"""dashboard: serve the live architecture page (pbctl.dashboard) on loopback until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from urllib.parse import urlsplit

from pbctl import verb
from pbctl.common import Ctx, out
from pbctl.dashboard.server import Dashboard
from pybernetes import ports, tls
from pybernetes.client.config import ClientConfig


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, default=ports.DASHBOARD,
                   help=f"port to serve on (default {ports.DASHBOARD}; a free one when it is taken)")
    p.add_argument("--readyz", default=None, metavar="URL",
                   help="the apiserver's /readyz (default: its health port beside a server on the standard port, "
                        "over HTTPS trusting the kubeconfig's cluster CA; without one, health is judged by the API "
                        "answering)")


def readyz_url(server: str, https: bool = True) -> str:
    """The apiserver's health endpoint, when the (gRPC) server is on the standard port (health is beside it):
    HTTPS, as the apiserver serves it with a client CA (the lab's, kubeadm's); `https` False for a kubeconfig
    naming no CA (a plaintext test server)."""
    parts = urlsplit(f"//{server}")
    if parts.hostname and parts.port == ports.APISERVER_GRPC:
        return f"{'https' if https else 'http'}://{parts.hostname}:{ports.APISERVER_HEALTH}/readyz"
    return ""


def readyz_tls(config: ClientConfig | None) -> ssl.SSLContext | None:
    """The TLS of the /readyz probe: trusting the kubeconfig's cluster CA, as pbctl's gRPC and kubectl's REST do
    (the health port presents the apiserver's serving certificate); None: the system's roots."""
    return tls.client_context(config.ca_pem) if config is not None and config.ca_pem else None


async def run_dashboard(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl dashboard [--port N] [--address A] [--readyz URL]."""
    url = readyz_url(ctx.server, bool(ctx.config and ctx.config.ca_pem)) if args.readyz is None else args.readyz
    dash = Dashboard(ctx.client, host=args.address, port=args.port, readyz_url=url, readyz_tls=readyz_tls(ctx.config))
    page = await dash.start(sync_timeout=5)
    out(f"Dashboard: {page}  (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await dash.stop()
    return 0


VERB = verb.Verb("dashboard", "Serve a live page of the cluster drawn as its architecture", arguments,
                 run_dashboard, rank=165)
