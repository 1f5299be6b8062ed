"""dashboard: serve the live architecture page (pbctl.dashboard) on loopback until interrupted."""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit

from pbctl import verb
from pbctl.common import Ctx, out
from pbctl.dashboard.server import Dashboard
from pybernetes import ports


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, default=ports.DASHBOARD,
                   help=f"port to serve on (default {ports.DASHBOARD}; a free one when it is taken)")
    p.add_argument("--readyz", default=None, metavar="URL",
                   help="the apiserver's /readyz (default: its health port beside a server on the standard port; "
                        "without one, health is judged by the API answering)")


def readyz_url(server: str) -> str:
    """The apiserver's health endpoint, when the (gRPC) server is on the standard port (health is beside it)."""
    parts = urlsplit(f"//{server}")
    if parts.hostname and parts.port == ports.APISERVER_GRPC:
        return f"http://{parts.hostname}:{ports.APISERVER_HEALTH}/readyz"
    return ""


async def run_dashboard(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl dashboard [--port N] [--address A] [--readyz URL]."""
    url = readyz_url(ctx.server) if args.readyz is None else args.readyz
    dash = Dashboard(ctx.client, host=args.address, port=args.port, readyz_url=url)
    page = await dash.start(sync_timeout=5)
    out(f"Dashboard: {page}  (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await dash.stop()
    return 0


VERB = verb.Verb("dashboard", "Serve a live page of the cluster drawn as its architecture", arguments,
                 run_dashboard, rank=165)
