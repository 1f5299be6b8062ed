"""port-forward: not supported yet. The apiserver proxies logs and exec to the kubelet over gRPC, but has
no port-forward stream (apiserver -> kubelet -> a TCP connection in the pod's network namespace) to use;
the verb is declared so that it fails with that reason instead of an unknown-command error."""

from __future__ import annotations

import argparse

from pbctl import verb
from pbctl.common import CliError, Ctx


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", default="", metavar="TYPE/NAME")
    p.add_argument("ports", nargs="*", metavar="[LOCAL_PORT:]REMOTE_PORT")
    p.add_argument("--address", default="localhost", help="addresses to listen on (comma separated)")


async def run_port_forward(ctx: Ctx, args: argparse.Namespace) -> int:
    if not args.target or not args.ports:
        raise CliError("TYPE/NAME and list of ports are required for port-forward")
    raise CliError("port-forward is not supported yet: the apiserver has no port-forward stream to the kubelet "
                   "(use a NodePort or LoadBalancer service, or `pbctl exec`)")


VERB = verb.Verb("port-forward", "Forward one or more local ports to a pod", arguments, run_port_forward,
                 rank=145)
