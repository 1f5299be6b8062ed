"""delete: -f, TYPE NAME..., TYPE/NAME, -l, --all; --grace-period, --now, --cascade, --wait."""

from __future__ import annotations

import argparse
import asyncio
import time

from pbctl import verb
from pbctl.common import (
    CliError,
    Ctx,
    err,
    out,
    parse_duration,
    parse_targets,
    quoted,
    ref,
    report_object_error,
)
from pbctl.manifests import read_manifests, set_namespace
from pybernetes import errors, flags
from pybernetes.api import kinds
from pybernetes.api.objects import meta_of

CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan",
           "true": "Background", "false": "Orphan"}

Target = tuple[kinds.ResourceInfo, str, str, str]  # info, namespace, name, uid


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*")
    verb.files(p)
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="delete all resources of the type in the namespace")
    p.add_argument("--grace-period", type=int, default=-1)
    p.add_argument("--now", action="store_true", help="grace period 1 (immediate shutdown)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--cascade", nargs="?", const="background", default="background",
                   help="background|foreground|orphan")
    p.add_argument("--wait", type=flags.boolean, nargs="?", const=True, default=True)
    p.add_argument("--timeout", default="", help="how long to wait for deletion (0: forever)")
    p.add_argument("--ignore-not-found", action="store_true")
    verb.output_name(p)
    verb.dry_run(p)


async def collect(ctx: Ctx, args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    problems: list[str] = []
    targets: list[Target] = []
    if args.filename:
        if args.resources:
            raise CliError("when paths or URLs are provided, resource types and names are not allowed")
        for _, obj in read_manifests(args.filename, args.recursive):
            set_namespace(ctx, obj)
            info = kinds.for_message(obj)
            md = meta_of(obj)
            targets.append((info, ctx.ns(info, md.namespace), md.name, ""))
        return targets, problems
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                       "   '<resource> <name>'\n   '<resource>'")
    for info, names in parsed:
        if names:
            if args.selector or args.all:
                raise CliError("name cannot be provided when a selector is specified")
            targets.extend((info, ctx.ns(info), n, "") for n in names)
            continue
        if not args.selector and not args.all and not args.field_selector:
            raise CliError("resource(s) were provided, but no name was specified")
        ns = "" if args.all_namespaces else ctx.ns(info)
        res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "",
                                        field_selector=args.field_selector or "")
        for o in res.items:
            md = meta_of(o)
            targets.append((info, md.namespace if info.namespaced else "", md.name, md.uid))
    return targets, problems


async def wait_gone(ctx: Ctx, info: kinds.ResourceInfo, ns: str, name: str, uid: str,
                    timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    told = False
    while True:
        try:
            o = await ctx.client.get(info.cls, name, namespace=ns)
            if uid and meta_of(o).uid != uid:
                return True
        except errors.NotFound:
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        if not told and time.monotonic() - started > 3:
            err(f"waiting for {quoted(info, name)} to be deleted...")
            told = True
        await asyncio.sleep(0.2)


async def run_delete(ctx: Ctx, args: argparse.Namespace) -> int:
    targets, problems = await collect(ctx, args)
    grace: int | None = args.grace_period if args.grace_period is not None and args.grace_period >= 0 else None
    if args.now:
        if grace is not None:
            raise CliError("--now and --grace-period cannot be specified together")
        grace = 1
    if args.force and grace is None:
        grace = 0
    if args.force and grace == 0:
        err("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
            "terminated. The resource may continue to run on the cluster indefinitely.")
    cascade = CASCADE.get(str(args.cascade).lower())
    if cascade is None:
        raise CliError(f"invalid cascade value ({args.cascade}). Must be \"background\", \"foreground\", "
                       "or \"orphan\"")
    if not targets and not problems:
        err("No resources found" if args.all_namespaces else f"No resources found in {ctx.namespace} namespace.")
        return 0
    timeout = None
    if args.timeout:
        timeout = parse_duration(args.timeout) or None
    deleted: list[tuple[kinds.ResourceInfo, str, str, str]] = []
    failed = bool(problems)
    for info, ns, name, uid in targets:
        try:
            obj, _gone = await ctx.client.delete(info.cls, name, namespace=ns, grace_period_seconds=grace,
                                                 propagation_policy=cascade, dry_run=args.dry_run != "none")
        except errors.ApiError as e:
            if args.ignore_not_found and isinstance(e, errors.NotFound):
                continue
            report_object_error(e)
            failed = True
            continue
        suffix = " (dry run)" if args.dry_run != "none" else ""
        out(ref(info, name) if args.output == "name" else f"{quoted(info, name)} deleted{suffix}")
        deleted.append((info, ns, name, meta_of(obj).uid or uid))
    for p in problems:
        err(p)
    if args.wait and args.dry_run == "none":
        for info, ns, name, uid in deleted:
            if not await wait_gone(ctx, info, ns, name, uid, timeout):
                err(f"error: timed out waiting for the condition on {info.plural}/{name}")
                failed = True
    return 1 if failed else 0


VERB = verb.Verb("delete", "Delete resources by file names, stdin, resources and names, or by resources and label "
                           "selector", arguments, run_delete, rank=50)
