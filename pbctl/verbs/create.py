"""create: every object of -f manifests (an existing one is an AlreadyExists error), or one object from a
generator subcommand (`create namespace|deployment|service ...|configmap|secret generic|serviceaccount`,
in pbctl.generate); `create token SA` asks for a ServiceAccount token (serviceaccounts/token) and prints it, as
kubectl does."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from pbctl import generate, verb
from pbctl.common import CliError, Ctx, parse_duration, ref
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


async def create_token(ctx: Ctx, args: argparse.Namespace) -> int:
    seconds = None
    if args.duration:
        seconds = int(parse_duration(args.duration))
        if seconds < 600:
            raise CliError("--duration must be at least 10m (the API server refuses shorter tokens)")
    bound = None
    if args.bound_object_kind or args.bound_object_name or args.bound_object_uid:
        if args.bound_object_kind != "Pod":
            raise CliError("--bound-object-kind must be Pod (the only kind tokens bind to here)")
        if not args.bound_object_name:
            raise CliError("--bound-object-name is required with --bound-object-kind")
        bound = (args.bound_object_name, args.bound_object_uid)
    tr = await ctx.client.create_token(ctx.namespace, args.name, audiences=args.audience,
                                       expiration_seconds=seconds, bound_pod=bound)
    print(tr.status.token)
    return 0


async def run_create(ctx: Ctx, args: argparse.Namespace) -> int:
    if getattr(args, "generator", None) == "token":
        if args.filename:
            raise CliError("cannot use -f with a create subcommand")
        return await create_token(ctx, args)
    if getattr(args, "generator", None):
        if args.filename:
            raise CliError("cannot use -f with a create subcommand")
        return await generate.send(ctx, args, generate.generate(ctx, args))
    return await each_object(ctx, args, "creating", create_one)


VERB = verb.Verb("create", "Create a resource from a file or from stdin", arguments, run_create, rank=20)
