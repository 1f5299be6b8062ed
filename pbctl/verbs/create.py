"""create: every object of -f manifests (an existing one is an AlreadyExists error), or one object from a
generator subcommand (`create namespace|deployment|service ...|configmap|secret generic|serviceaccount`,
in pbctl.generate)."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from pbctl import generate, verb
from pbctl.common import CliError, Ctx, ref
from pbctl.manifests import each_object, set_namespace
from pybernetes.api import kinds
from pybernetes.api.objects import meta_of


def arguments(p: argparse.ArgumentParser) -> None:
    verb.files(p)
    verb.output_name(p)
    verb.dry_run(p)
    generate.add_create_subcommands(p)


async def create_one(ctx: Ctx, obj: Message, dry_run: bool) -> str:
    info = kinds.for_message(obj)
    set_namespace(ctx, obj)
    created = await ctx.client.create(obj, dry_run=dry_run, field_manager="pbctl")
    return f"{ref(info, meta_of(created).name)} created" + (" (dry run)" if dry_run else "")


async def run_create(ctx: Ctx, args: argparse.Namespace) -> int:
    if getattr(args, "generator", None):
        if args.filename:
            raise CliError("cannot use -f with a create subcommand")
        return await generate.send(ctx, args, generate.generate(ctx, args))
    return await each_object(ctx, args, "creating", create_one)


VERB = verb.Verb("create", "Create a resource from a file or from stdin", arguments, run_create, rank=20)
