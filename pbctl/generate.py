"""The generator subcommands of `create` (namespace, deployment, service ..., configmap, secret generic,
serviceaccount) and `run`: their flags, and sending or printing what `pbctl.generators` builds.

`--dry-run=client` prints the generated object (kubectl's exact YAML/JSON) without a request;
`--dry-run=server` and none create it and print what the apiserver returned (`-o`) or `TYPE/NAME created`.
"""

from __future__ import annotations

import argparse

from pbctl import generators, verb
from pbctl.common import CliError, Ctx, dump, out, ref
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of


def output_flags(p: argparse.ArgumentParser) -> None:
    """--dry-run=none|client|server (bare: client, as kubectl's generators since 1.18 warn of) and -o."""
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("-o", "--output", default="", choices=("", "yaml", "json", "name"))


def _name(args: argparse.Namespace, what: str) -> str:
    if not args.name:
        raise CliError(f"exactly one NAME is required, got 0\nSee 'pbctl create {what} -h' for help and examples")
    return str(args.name)


def add_create_subcommands(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="generator", metavar="SUBCOMMAND", parser_class=verb.Parser)
    ns = verb.subcommand(sub, "namespace", "Create a namespace with the specified name", aliases=["ns"])
    dep = verb.subcommand(sub, "deployment", "Create a deployment with the specified name", aliases=["deploy"])
    dep.add_argument("--image", action="append", default=[], help="image for the containers (repeatable)")
    dep.add_argument("--port", type=int, default=-1, help="the containerPort the containers expose")
    dep.add_argument("-r", "--replicas", type=int, default=1)
    svc = verb.subcommand(sub, "service", "Create a service using a specified subcommand", aliases=["svc"])
    kinds_ = verb.subcommands(svc, "service_type")
    for name in generators.SERVICE_TYPES:
        sp = verb.subcommand(kinds_, name, f"Create a {generators.SERVICE_TYPES[name]} service")
        sp.add_argument("name", nargs="?", default="")
        sp.add_argument("--tcp", action="append", default=[], help="PORT[:TARGET_PORT] (repeatable)")
        if name == "clusterip":
            sp.add_argument("--clusterip", default="", help="assign your own ClusterIP or 'None' (headless)")
        if name == "nodeport":
            sp.add_argument("--node-port", type=int, default=0)
        output_flags(sp)
    cm = verb.subcommand(sub, "configmap", "Create a config map from a local file, directory or literal value",
                         aliases=["cm"])
    sec = verb.subcommand(sub, "secret", "Create a secret using a specified subcommand")
    gen = verb.subcommand(verb.subcommands(sec, "secret_type"), "generic",
                          "Create a secret from a local file, directory, or literal value")
    gen.add_argument("--type", default="", help="the type of secret to create")
    sa = verb.subcommand(sub, "serviceaccount", "Create a service account with the specified name", aliases=["sa"])
    tok = verb.subcommand(sub, "token", "Request a service account token (TokenRequest; the token is printed)")
    tok.add_argument("name", help="the ServiceAccount")
    tok.add_argument("--duration", default="", help="requested lifetime (e.g. 10m, 1h; the server's default 1h)")
    tok.add_argument("--audience", action="append", default=[], help="audience of the token (repeatable; default "
                     "the API server's)")
    tok.add_argument("--bound-object-kind", default="", help="kind of the object to bind the token to (Pod)")
    tok.add_argument("--bound-object-name", default="", help="name of the object to bind the token to")
    tok.add_argument("--bound-object-uid", default="", help="uid of the object to bind the token to")
    for sp in (cm, gen):
        sp.add_argument("--from-literal", action="append", default=[], help="KEY=VALUE (repeatable)")
        sp.add_argument("--from-file", action="append", default=[], help="[KEY=]PATH (repeatable)")
    for sp in (ns, dep, cm, gen, sa):
        sp.add_argument("name", nargs="?", default="")
        output_flags(sp)


def generate(ctx: Ctx, args: argparse.Namespace) -> generators.Obj:
    """The object `create <generator>` builds from its flags."""
    kind = args.generator
    ns = ctx.namespace if ctx.explicit_namespace else ""
    if kind in ("namespace", "ns"):
        return generators.namespace(_name(args, "namespace"))
    if kind in ("serviceaccount", "sa"):
        return generators.serviceaccount(_name(args, "serviceaccount"), ns)
    if kind in ("deployment", "deploy"):
        name = _name(args, "deployment")
        if not args.image:
            raise CliError("required flag(s) \"image\" not set")
        return generators.deployment(name, ns, args.image, args.replicas, args.port)
    if kind in ("service", "svc"):
        name = _name(args, f"service {args.service_type}")
        return generators.service(args.service_type, name, ns, args.tcp, getattr(args, "clusterip", ""),
                                  getattr(args, "node_port", 0))
    if kind in ("configmap", "cm"):
        return generators.configmap(_name(args, "configmap"), ns, args.from_literal, args.from_file)
    return generators.secret_generic(_name(args, "secret generic"), ns, args.from_literal, args.from_file, args.type)


async def send(ctx: Ctx, args: argparse.Namespace, obj: generators.Obj) -> int:
    """Print (--dry-run=client) or create the generated object, then report as kubectl does."""
    msg = generators.to_message(obj)
    info = kinds.for_message(msg)
    if args.dry_run == "client":
        if args.output in ("yaml", "json"):
            out(generators.render(obj, args.output))
        else:
            name = ref(info, meta_of(msg).name)
            out(name if args.output == "name" else f"{name} created (dry run)")
        return 0
    md = meta_of(msg)
    if info.namespaced and not md.namespace:
        md.namespace = ctx.namespace
    created = await ctx.client.create(msg, dry_run=args.dry_run == "server", field_manager="pbctl-create")
    name = ref(info, meta_of(created).name)
    if args.output in ("yaml", "json"):
        out(dump(codec.to_dict(created), args.output))
    elif args.output == "name":
        out(name)
    else:
        out(f"{name} created" + (" (server dry run)" if args.dry_run == "server" else ""))
    return 0
