"""attach: join a running container's main process (its output from now on; with -i, its stdin), as kubectl
attach, through the apiserver and the pod's kubelet (the runtime's own attach)."""

from __future__ import annotations

import argparse
import sys

from pbctl import verb
from pbctl.common import Ctx
from pbctl.verbs import exec as exec_verb


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY")
    p.add_argument("-c", "--container", default="")
    p.add_argument("pod")


async def run_attach(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl attach POD [-c CONTAINER] [-i] [-t]"""
    if args.stdin:
        print("If you don't see a command prompt, try pressing enter.", file=sys.stderr, flush=True)
    return await exec_verb.stream(ctx, args, [], attach=True)


VERB = verb.Verb("attach", "Attach to a running container", arguments, run_attach, rank=141)
