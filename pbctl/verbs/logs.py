"""logs: a container's log through the apiserver (which proxies to the pod's kubelet)."""

from __future__ import annotations

import argparse
import sys

from pbctl.common import Ctx


async def run_logs(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl logs [-f] [--previous] [-c CONTAINER] [--tail N] [--timestamps] POD."""
    pod = args.pod.split("/", 1)[1] if args.pod.startswith(("pod/", "pods/")) else args.pod
    async for data in ctx.client.pod_logs(ctx.namespace, pod, container=args.container, follow=args.follow,
                                          previous=args.previous, tail_lines=args.tail,
                                          timestamps=args.timestamps):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
