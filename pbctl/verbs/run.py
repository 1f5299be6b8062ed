"""run: create one Pod from an image (`run NAME --image=IMG [--port] [--env] [--labels] [--restart] [--command]
[-- ARGS...]`), labelled run=NAME as kubectl's generator does; objects built by pbctl.generators."""

from __future__ import annotations

import argparse

from pbctl import generate, generators, verb
from pbctl.common import CliError, Ctx


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--image", default="", help="the image for the container to run")
    p.add_argument("--port", type=int, default=-1, help="the port the container exposes")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE environment variable (repeatable)")
    p.add_argument("-l", "--labels", default="", help="comma-separated labels (default run=NAME)")
    p.add_argument("--restart", default="Always", help="the pod's restart policy: Always, OnFailure or Never")
    p.add_argument("--command", dest="as_command", action="store_true",
                   help="the arguments after -- are the command instead of the image's entrypoint arguments")
    generate.output_flags(p)
    p.add_argument("args", nargs="*", default=[], help=argparse.SUPPRESS)


async def run_run(ctx: Ctx, args: argparse.Namespace) -> int:
    if not args.name:
        raise CliError("NAME is required for run\nSee 'pbctl run -h' for help and examples")
    if not args.image:
        raise CliError("required flag(s) \"image\" not set")
    ns = ctx.namespace if ctx.explicit_namespace else ""
    pod = generators.run_pod(args.name, ns, args.image, port=args.port, env=args.env, labels=args.labels,
                             restart=args.restart, command=args.as_command, args=args.args)
    return await generate.send(ctx, args, pod)


VERB = verb.Verb("run", "Run a particular image on the cluster", arguments, run_run, rank=25, after_dashes="args")
