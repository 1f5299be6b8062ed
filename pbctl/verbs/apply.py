"""apply -f: client-side apply like kubectl, over the manifests pbctl.manifests reads.

Apply stores the manifest in the `kubectl.kubernetes.io/last-applied-configuration` annotation; on the
next apply it sends `three_way_patch(last_applied, new, live)` as a strategic merge patch, so fields the
file dropped are removed while fields other writers own (status, defaults, extra labels) stay.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import LAST_APPLIED, CliError, Ctx, descriptor, ref
from pbctl.manifests import each_object, set_namespace
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of
from pybernetes.api.patch import three_way_patch


def arguments(p: argparse.ArgumentParser) -> None:
    verb.files(p)
    verb.output_name(p)
    verb.dry_run(p)


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
    p = three_way_patch(original, desired, live, descriptor(cls))
    return Plan("patch", p) if p else Plan("unchanged", {})


async def apply_one(ctx: Ctx, obj: Message, *, dry_run: bool = False) -> str:
    info = kinds.for_message(obj)
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


async def run_apply(ctx: Ctx, args: argparse.Namespace) -> int:
    return await each_object(ctx, args, "applying", lambda c, obj, dry: apply_one(c, obj, dry_run=dry))


VERB = verb.Verb("apply", "Apply a configuration to a resource by file name or stdin", arguments, run_apply, rank=10)
