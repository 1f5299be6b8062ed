"""scale: set spec.replicas of deployments, replicasets, statefulsets and replicationcontrollers."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import (
    CliError,
    Ctx,
    err,
    out,
    parse_targets,
    ref,
    report_object_error,
)
from pbctl.manifests import read_manifests, set_namespace
from pybernetes import errors
from pybernetes.api import kinds, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of

SCALABLE = ("deployments", "replicasets", "statefulsets", "replicationcontrollers")


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*")
    verb.files(p)
    p.add_argument("--replicas", type=int, default=None)
    p.add_argument("--current-replicas", type=int, default=None)
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--all", action="store_true")
    verb.output_name(p)
    verb.dry_run(p)


def current_replicas(obj: Message) -> int:
    """spec.replicas of a scalable object (unset means 1)."""
    if not isinstance(obj, apps.Deployment | apps.ReplicaSet | apps.StatefulSet | core.ReplicationController):
        raise CliError(f"{type(obj).__name__} has no replicas")
    return objects.replicas(obj)


async def run_scale(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.replicas is None or args.replicas < 0:
        raise CliError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    targets: list[tuple[kinds.ResourceInfo, str, str]] = []
    if args.filename:
        for _, obj in read_manifests(args.filename, args.recursive):
            set_namespace(ctx, obj)
            info = kinds.for_message(obj)
            targets.append((info, ctx.ns(info, meta_of(obj).namespace), meta_of(obj).name))
    else:
        parsed = parse_targets(list(args.resources))
        if not parsed:
            raise CliError("required resource not specified")
        for info, names in parsed:
            if names:
                targets.extend((info, ctx.ns(info), n) for n in names)
            elif args.selector or args.all:
                res = await ctx.client.list_all(info.cls, namespace=ctx.ns(info), label_selector=args.selector or "")
                targets.extend((info, meta_of(o).namespace, meta_of(o).name) for o in res.items)
            else:
                raise CliError("resource(s) were provided, but no name was specified")
    failed = False
    for info, ns, name in targets:
        if info.plural not in SCALABLE:
            err(f'error: {info.plural} "{name}" cannot be scaled: the server could not find the requested '
                "resource")
            failed = True
            continue
        try:
            if args.current_replicas is not None and args.current_replicas >= 0:
                live = await ctx.client.get(info.cls, name, namespace=ns)
                if current_replicas(live) != args.current_replicas:
                    err(f"error: Expected replicas to be {args.current_replicas}, was {current_replicas(live)}")
                    failed = True
                    continue
            await ctx.client.patch(info.cls, name, {"spec": {"replicas": args.replicas}}, namespace=ns,
                                   patch_type="merge", dry_run=args.dry_run != "none")
        except errors.ApiError as e:
            report_object_error(e)
            failed = True
            continue
        out(ref(info, name) if args.output == "name" else f"{ref(info, name)} scaled")
    return 1 if failed else 0


VERB = verb.Verb("scale", "Set a new size for a deployment, replica set, replication controller, or stateful set",
                 arguments, run_scale, rank=90)
