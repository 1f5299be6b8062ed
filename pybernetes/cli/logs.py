"""logs: placeholder until the kubelet's log stream is reachable through the apiserver."""

from __future__ import annotations

import argparse

from pybernetes.cli.common import err


async def run_logs(args: argparse.Namespace) -> int:
    """pbctl logs [-f] [--previous] [-c CONTAINER] [--tail N] POD (args.pod, .container, .follow, ...)."""
    err("error: logs are not available yet")
    return 1
