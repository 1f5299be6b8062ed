"""label (and annotate's engine): `key=value` sets, `key-` removes; changing a value needs --overwrite."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import (
    CliError,
    Ctx,
    err,
    format_api_error,
    out,
    parse_targets,
    ref,
    report_object_error,
)
from pbctl.manifests import read_manifests, set_namespace
from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.objects import meta_of


def arguments(p: argparse.ArgumentParser) -> None:
    """label's and annotate's flags (the same)."""
    p.add_argument("args", nargs="*", metavar="TYPE NAME KEY=VAL|KEY-")
    verb.files(p)
    p.add_argument("--overwrite", action="store_true", help="allow changing existing values")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--all", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("--resource-version", default="")
    verb.output_name(p)
    verb.dry_run(p)


@dataclass
class Changes:
    set: dict[str, str]
    remove: list[str]


def split_args(args: list[str]) -> tuple[list[str], Changes]:
    """Separate resource arguments from `k=v` / `k-` changes (changes come last, as in kubectl)."""
    resources: list[str] = []
    changes = Changes({}, [])
    for a in args:
        if "=" in a:
            k, _, v = a.partition("=")
            if not k:
                raise CliError(f"invalid label spec: {a}")
            changes.set[k] = v
        elif a.endswith("-") and len(a) > 1:
            changes.remove.append(a[:-1])
        else:
            if changes.set or changes.remove:
                raise CliError(f"all resources must be specified before label changes: {a}")
            resources.append(a)
    both = set(changes.set) & set(changes.remove)
    if both:
        raise CliError(f"can not both modify and remove the same key: {sorted(both)[0]}")
    return resources, changes


def compute_patch(current: dict[str, str], changes: Changes, overwrite: bool,
                  what: str = "label") -> tuple[dict[str, str | None], list[str]]:
    """(merge patch of the map, warnings); an existing key changed without --overwrite is an error."""
    patch: dict[str, str | None] = {}
    warnings: list[str] = []
    for k, v in changes.set.items():
        if k in current and current[k] != v and not overwrite:
            raise CliError(f"'{k}' already has a value ({current[k]}), and --overwrite is false")
        if current.get(k) != v:
            patch[k] = v
    for k in changes.remove:
        if k in current:
            patch[k] = None
        else:
            warnings.append(f'{what} "{k}" not found.')
    return patch, warnings


async def _targets(ctx: Ctx, args: argparse.Namespace, resources: list[str]
                   ) -> list[tuple[kinds.ResourceInfo, Message]]:
    found: list[tuple[kinds.ResourceInfo, Message]] = []
    if args.filename:
        for _, obj in read_manifests(args.filename, args.recursive):
            set_namespace(ctx, obj)
            info = kinds.for_message(obj)
            md = meta_of(obj)
            found.append((info, await ctx.client.get(info.cls, md.name, namespace=ctx.ns(info, md.namespace))))
        return found
    parsed = parse_targets(resources)
    if not parsed:
        raise CliError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    for info, names in parsed:
        if names:
            for n in names:
                found.append((info, await ctx.client.get(info.cls, n, namespace=ctx.ns(info))))
        elif args.selector or args.all:
            ns = "" if args.all_namespaces else ctx.ns(info)
            res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "")
            found.extend((info, o) for o in res.items)
        else:
            raise CliError("resource(s) were provided, but no name was specified")
    return found


async def run_label(ctx: Ctx, args: argparse.Namespace, field: str = "labels") -> int:
    what = "label" if field == "labels" else "annotation"
    resources, changes = split_args(list(args.args))
    if not changes.set and not changes.remove and not args.list:
        raise CliError(f"at least one {what} update is required")
    try:
        targets = await _targets(ctx, args, resources)
    except errors.NotFound as e:
        err(format_api_error(e))
        return 1
    failed = False
    for info, obj in targets:
        md = meta_of(obj)
        current = dict(md.labels if field == "labels" else md.annotations)
        if args.list:
            for k, v in sorted(current.items()):
                out(f"{k}={v}")
            continue
        patch, warnings = compute_patch(current, changes, args.overwrite, what)
        for w in warnings:
            err(w)
        name = ref(info, md.name)
        if patch:
            body: dict[str, object] = {"metadata": {field: patch}}
            if args.resource_version:
                body["metadata"] = {field: patch, "resourceVersion": args.resource_version}
            try:
                await ctx.client.patch(info.cls, md.name, body, namespace=md.namespace if info.namespaced else "",
                                       patch_type="merge", dry_run=args.dry_run != "none")
            except errors.ApiError as e:
                report_object_error(e)
                failed = True
                continue
        if args.output == "name":
            out(name)
        elif field == "annotations":
            out(f"{name} annotated")
        elif not patch:
            out(f"{name} not labeled")
        elif all(v is None for v in patch.values()):
            out(f"{name} unlabeled")
        else:
            out(f"{name} labeled")
    return 1 if failed else 0


VERB = verb.Verb("label", "Update the labels on a resource", arguments, run_label, rank=70)
