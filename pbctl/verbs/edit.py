"""edit: open $EDITOR on the object's YAML, send the change as a two-way strategic merge patch.

On an error (unparsable YAML, unknown field, Invalid from the server) the file is re-opened with the
error as a comment at the top, like kubectl; saving it unchanged (or empty) gives up."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import CliError, Ctx, descriptor, err, format_api_error, out, parse_targets, ref
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of
from pybernetes.api.patch import create_two_way_merge_patch

HEADER = """# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
"""


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*")
    verb.output_name(p)


def editor_command() -> list[str]:
    for var in ("PBCTL_EDITOR", "KUBE_EDITOR", "EDITOR"):
        v = os.environ.get(var)
        if v:
            return shlex.split(v)
    return ["vi"]


def strip_comments(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def run_editor(path: Path) -> None:
    cmd = [*editor_command(), str(path)]
    res = subprocess.run(cmd, check=False)
    if res.returncode != 0:
        raise CliError(f"there was a problem with the editor {cmd[0]!r}")


def edit_patch(original: dict[str, Any], edited: Any, cls: type[Message]) -> dict[str, Any]:
    """The patch to send for an edit; validates the edited object first (unknown fields, types)."""
    if not isinstance(edited, dict):
        raise errors.Invalid("expected an object")
    codec.from_dict(edited, cls)
    return create_two_way_merge_patch(original, edited, descriptor(cls))


async def edit_one(ctx: Ctx, info: kinds.ResourceInfo, obj: Message, output: str) -> int:
    original = codec.to_dict(obj)
    md = meta_of(obj)
    body = codec.yaml_dump(original)
    error_note = ""
    last_text = None
    with tempfile.TemporaryDirectory(prefix="pbctl-edit-") as d:
        path = Path(d) / f"{info.plural}-{md.name}.yaml"
        while True:
            path.write_text(HEADER + error_note + body)
            await asyncio.to_thread(run_editor, path)
            text = path.read_text()
            content = strip_comments(text)
            if not content.strip():
                err("Edit cancelled, no changes made.")
                return 0
            if last_text is not None and content == last_text:
                err("error: Edit cancelled, the same errors occurred again.")
                return 1
            try:
                edited = yaml.safe_load(content)
                p = edit_patch(original, edited, type(obj))
                if not p:
                    err("Edit cancelled, no changes made.")
                    return 0
                await ctx.client.patch(type(obj), md.name, p, namespace=md.namespace if info.namespaced else "",
                                       patch_type="strategic")
            except (yaml.YAMLError, errors.Invalid, errors.BadRequest, errors.Conflict) as e:
                msg = format_api_error(e) if isinstance(e, errors.ApiError) else f"error: {e}"
                if isinstance(e, errors.Invalid) and not (e.kind or e.name):
                    msg = f'The edited file failed validation: {"; ".join(map(str, e.causes)) or e}'
                error_note = "".join(f"# {ln}\n" for ln in msg.splitlines()) + "#\n"
                body = content + "\n"
                last_text = content
                continue
            out(ref(info, md.name) if output == "name" else f"{ref(info, md.name)} edited")
            return 0


async def run_edit(ctx: Ctx, args: argparse.Namespace) -> int:
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("you must provide one or more resources by argument or filename")
    rc = 0
    for info, names in parsed:
        if not names:
            raise CliError("resource(s) were provided, but no name was specified")
        for n in names:
            obj = await ctx.client.get(info.cls, n, namespace=ctx.ns(info))
            rc |= await edit_one(ctx, info, obj, args.output or "")
    return rc


VERB = verb.Verb("edit", "Edit a resource on the server", arguments, run_edit, rank=60)
