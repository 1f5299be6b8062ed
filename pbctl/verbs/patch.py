"""patch: change fields of one object with a strategic merge (default), JSON merge or JSON patch
(`patch TYPE NAME -p PATCH [--type strategic|merge|json] [--patch-file F] [--subresource status|scale]`).

The apiserver applies the patch (one rule for gRPC and HTTP); this verb parses the patch (JSON or YAML),
prints `TYPE/NAME patched` or `(no change)` as kubectl does, or the result with -o.
--dry-run=client is served by the apiserver's dry run too: nothing is written either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from pbctl import verb
from pbctl.common import CliError, Ctx, dump, out, parse_targets, ref
from pybernetes.api import codec

SUBRESOURCES = ("status", "scale")


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-p", "--patch", default="", help="the patch to apply, as JSON or YAML")
    p.add_argument("--patch-file", default="", help="a file containing the patch")
    p.add_argument("--type", default="strategic", choices=("strategic", "merge", "json"))
    p.add_argument("--subresource", default="", choices=("", *SUBRESOURCES))
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("-o", "--output", default="", choices=("", "yaml", "json", "name"))


def parse_patch(text: str, patch_type: str) -> dict[str, Any] | list[Any]:
    """The patch document (JSON is YAML): an object, or for a JSON patch a list of operations."""
    try:
        doc = codec.yaml_load_all(text)
        data = next(doc, None)
    except yaml.YAMLError as e:
        raise CliError(f'unable to parse "{text}": {e}') from None
    if patch_type == "json" and isinstance(data, dict | list):
        return data  # the apiserver says what is wrong with a JSON patch that is no list, as kubectl leaves it to
    if not isinstance(data, dict):
        raise CliError(f'unable to parse "{text}": the patch must be a JSON object')
    return data


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    md = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": md}


async def run_patch(ctx: Ctx, args: argparse.Namespace) -> int:
    if bool(args.patch) == bool(args.patch_file):
        raise CliError("must specify --patch or --patch-file containing the contents of the patch")
    text = Path(args.patch_file).read_text() if args.patch_file else args.patch
    patch = parse_patch(text, args.type)
    targets = parse_targets(list(args.resources))
    if not targets or not targets[0][1]:
        raise CliError("you must provide one or more resources by argument or filename")
    if len(targets) > 1 or len(targets[0][1]) > 1:
        raise CliError("patch takes one object")
    info, (name,) = targets[0]
    before = await ctx.client.get(info.cls, name, namespace=ctx.ns(info))
    after = await ctx.client.patch(info.cls, name, patch, namespace=ctx.ns(info), patch_type=args.type,
                                   subresource=args.subresource, dry_run=args.dry_run != "none",
                                   field_manager="kubectl-patch")
    data = codec.to_dict(after)
    if args.output in ("yaml", "json"):
        out(dump(data, args.output))
        return 0
    if args.output == "name":
        out(ref(info, name))
        return 0
    changed = _comparable(codec.to_dict(before)) != _comparable(data)
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(args.dry_run, "")
    out(f"{ref(info, name)} {'patched' if changed else 'patched (no change)'}{suffix}")
    return 0


VERB = verb.Verb("patch", "Update fields of a resource", arguments, run_patch, rank=95)
