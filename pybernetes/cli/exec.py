"""exec: placeholder until the kubelet's exec stream is reachable through the apiserver."""

from __future__ import annotations

import argparse

from pybernetes.cli.common import err


async def run_exec(args: argparse.Namespace) -> int:
    """pbctl exec [-it] POD [-c CONTAINER] -- CMD... (args.pod, .container, .cmd, .stdin, .tty)."""
    err("error: exec is not available yet")
    return 1
