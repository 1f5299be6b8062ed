"""apply -f / create -f: manifests from files, directories or stdin; client-side apply like kubectl.

Apply stores the manifest in the `kubectl.kubernetes.io/last-applied-configuration` annotation; on the
next apply it sends `three_way_patch(last_applied, new, live)` as a strategic merge patch, so fields the
file dropped are removed while fields other writers own (status, defaults, extra labels) stay.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from google.protobuf.message import Message

from pbctl.common import (
    LAST_APPLIED,
    CliError,
    Ctx,
    err,
    format_api_error,
    is_connection_error,
    meta_of,
    out,
    ref,
)
from pybernetes import errors
from pybernetes.api import codec, registry
from pybernetes.api.patch import three_way_patch

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


# -- reading manifests -----------------------------------------------------------------------------

def manifest_files(paths: list[str], recursive: bool) -> list[str]:
    """Expand -f arguments: files as given, directories to their .yaml/.yml/.json files (sorted)."""
    files: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(str(f) for f in path.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
            files.extend(found)
        elif path.exists():
            files.append(p)
        else:
            raise CliError(f'the path "{p}" does not exist')
    return files


def read_manifests(paths: list[str], recursive: bool = False) -> list[tuple[str, Message]]:
    """(source, object) for every object; raises ManifestError (names file, document, field path)."""
    if not paths:
        raise CliError("must specify one of -f and -k")
    objs: list[tuple[str, Message]] = []
    for f in manifest_files(paths, recursive):
        text = sys.stdin.read() if f == "-" else Path(f).read_text()
        objs.extend((f, o) for o in codec.load_manifests(text, f))
    if not objs:
        raise CliError("no objects passed to apply")
    return objs


def set_namespace(ctx: Ctx, obj: Message) -> None:
    """Default the object's namespace; a conflicting -n is an error, as in kubectl."""
    info = registry.for_message(obj)
    md = meta_of(obj)
    if not info.namespaced:
        md.namespace = ""
        return
    if md.namespace and ctx.explicit_namespace and md.namespace != ctx.namespace:
        raise CliError(f'the namespace from the provided object "{md.namespace}" does not match the namespace '
                       f'"{ctx.namespace}". You must pass \'--namespace={md.namespace}\' to perform this operation.')
    if not md.namespace:
        md.namespace = ctx.namespace


# -- apply's decision ------------------------------------------------------------------------------

Action = Literal["create", "patch", "unchanged"]


@dataclass
class Plan:
    action: Action
    body: dict[str, Any]  # the object to create, or the strategic merge patch to send


def with_last_applied(modified: dict[str, Any]) -> dict[str, Any]:
    """The manifest plus its own serialization (without the annotation) in last-applied-configuration."""
    md = dict(modified.get("metadata") or {})
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    clean = {**modified, "metadata": {**md, **({"annotations": ann} if ann else {})}}
    if not ann:
        clean["metadata"].pop("annotations", None)
    text = json.dumps(clean, separators=(",", ":"), sort_keys=True) + "\n"
    return {**clean, "metadata": {**clean["metadata"], "annotations": {**ann, LAST_APPLIED: text}}}


def plan_apply(modified: dict[str, Any], live: dict[str, Any] | None, cls: type[Message]) -> Plan:
    """What `apply` does for one object: create it, patch it, or nothing."""
    desired = with_last_applied(modified)
    if live is None:
        return Plan("create", desired)
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    original: dict[str, Any] | None = None
    if raw:
        try:
            loaded = json.loads(raw)
            original = loaded if isinstance(loaded, dict) else None
        except ValueError:
            original = None
    p = three_way_patch(original, desired, live, cls.DESCRIPTOR)  # type: ignore[arg-type]
    return Plan("patch", p) if p else Plan("unchanged", {})


async def apply_one(ctx: Ctx, obj: Message, *, dry_run: bool = False) -> str:
    info = registry.for_message(obj)
    set_namespace(ctx, obj)
    md = meta_of(obj)
    if not md.name:
        if md.generate_name:
            raise CliError(f"cannot use generate name with apply ({info.kind} {md.generate_name!r})")
        raise CliError(f"error when retrieving current configuration of {info.kind}: resource name may not be "
                       "empty")
    cls = type(obj)
    try:
        live_obj: Message | None = await ctx.client.get(cls, md.name, namespace=ctx.ns(info, md.namespace))
    except errors.NotFound:
        live_obj = None
    plan = plan_apply(codec.to_dict(obj), codec.to_dict(live_obj) if live_obj is not None else None, cls)
    suffix = " (dry run)" if dry_run else ""
    if plan.action == "create":
        await ctx.client.create(codec.from_dict(plan.body, cls), dry_run=dry_run, field_manager="pbctl")
        return f"{ref(info, md.name)} created{suffix}"
    if plan.action == "unchanged":
        return f"{ref(info, md.name)} unchanged{suffix}"
    await ctx.client.patch(cls, md.name, plan.body, namespace=ctx.ns(info, md.namespace),
                           patch_type="strategic", dry_run=dry_run, field_manager="pbctl")
    return f"{ref(info, md.name)} configured{suffix}"


async def _each(ctx: Ctx, args: argparse.Namespace, verb: str) -> int:
    objs = read_manifests(list(args.filename or []), args.recursive)
    dry_run = getattr(args, "dry_run", "none") in ("server", "client")
    failed = 0
    what = "applying" if verb == "apply" else "creating"
    for source, obj in objs:
        info = registry.for_message(obj)
        try:
            if verb == "apply":
                line = await apply_one(ctx, obj, dry_run=dry_run)
            else:
                set_namespace(ctx, obj)
                created = await ctx.client.create(obj, dry_run=dry_run, field_manager="pbctl")
                line = f"{ref(info, meta_of(created).name)} created" + (" (dry run)" if dry_run else "")
        except errors.Unavailable as e:
            if is_connection_error(e):
                raise
            failed += 1
            err(f'Error from server ({e.reason}): error when {what} "{source}": {e}')
            continue
        except errors.Invalid as e:
            failed += 1
            err(f'error when {what} "{source}": {format_api_error(e)}')
            continue
        except errors.ApiError as e:
            failed += 1
            err(f'Error from server ({e.reason}): error when {what} "{source}": {e}')
            continue
        out(line.split(" ")[0] if args.output == "name" else line)
    return 1 if failed else 0


async def run_apply(ctx: Ctx, args: argparse.Namespace) -> int:
    return await _each(ctx, args, "apply")


async def run_create(ctx: Ctx, args: argparse.Namespace) -> int:
    return await _each(ctx, args, "create")
