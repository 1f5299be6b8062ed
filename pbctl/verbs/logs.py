"""logs: a container's log through the apiserver (which proxies to the pod's kubelet)."""

from __future__ import annotations

import argparse
import sys

from pbctl import verb
from pbctl.common import Ctx


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pod")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-p", "--previous", action="store_true")
    p.add_argument("-c", "--container", default="")
    p.add_argument("--tail", type=int, default=-1)
    p.add_argument("--timestamps", action="store_true")


async def run_logs(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl logs [-f] [--previous] [-c CONTAINER] [--tail N] [--timestamps] POD."""
    pod = args.pod.split("/", 1)[1] if args.pod.startswith(("pod/", "pods/")) else args.pod
    async for data in ctx.client.pod_logs(ctx.namespace, pod, container=args.container, follow=args.follow,
                                          previous=args.previous, tail_lines=args.tail,
                                          timestamps=args.timestamps):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


VERB = verb.Verb("logs", "Print the logs for a container in a pod", arguments, run_logs, rank=130)
