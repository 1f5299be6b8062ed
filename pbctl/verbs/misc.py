"""api-resources, version, config view / current-context."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from pbctl import printers
from pbctl.common import VERSION, CliError, Ctx, out
from pybernetes.client import config as client_config


async def run_api_resources(ctx: Ctx, args: argparse.Namespace) -> int:
    disc = await ctx.client.discovery()
    rows = []
    resources = [r for r in disc.resources if "/" not in r.name]
    if args.namespaced is not None:
        resources = [r for r in resources if r.namespaced == (args.namespaced == "true")]
    if args.api_group is not None:
        resources = [r for r in resources if r.group == args.api_group]
    resources.sort(key=lambda r: (r.group, r.name))
    for r in resources:
        api_version = f"{r.group}/{r.version}" if r.group else r.version
        if args.output == "name":
            out(f"{r.name}.{r.group}" if r.group else r.name)
            continue
        row = [r.name, ",".join(r.short_names), api_version, "true" if r.namespaced else "false", r.kind]
        if args.output == "wide":
            row += [f"[{' '.join(r.verbs)}]", ",".join(r.categories)]
        rows.append(row)
    if args.output == "name":
        return 0
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if args.output == "wide":
        headers += ["VERBS", "CATEGORIES"]
    out(printers.render_table(headers, rows, no_headers=args.no_headers).rstrip("\n"))
    return 0


async def run_version(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.output in ("json", "yaml"):
        data: dict[str, Any] = {"clientVersion": {"gitVersion": VERSION}}
        if not args.client:
            data["serverAddress"] = ctx.server
        import json

        out(json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data).rstrip("\n"))
        return 0
    out(f"Client Version: {VERSION}")
    if not args.client:
        if ctx.config is None:
            raise CliError("no server configured: pass --server or --config")
        out(f"Server Address: {ctx.server}")
        await ctx.client.discovery()  # reachability: a refused connection is reported like kubectl's
        out("Server Status: reachable")
    return 0


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    for u in doc.get("users") or []:
        user = u.get("user") if isinstance(u, dict) else None
        if isinstance(user, dict):
            for k in ("token", "client-key-data", "password"):
                if k in user:
                    user[k] = "REDACTED"
    return doc


async def run_config(args: argparse.Namespace) -> int:
    path = Path(client_config.config_path(args.config))
    if args.config_cmd == "view":
        if not path.exists():
            out(yaml.safe_dump({"apiVersion": "v1", "clusters": None, "contexts": None, "current-context": "",
                                "kind": "Config", "preferences": {}, "users": None}, sort_keys=False).rstrip())
            return 0
        doc = yaml.safe_load(path.read_text()) or {}
        if args.minify:
            cur = doc.get("current-context")
            ctxs = [c for c in doc.get("contexts") or [] if c.get("name") == cur]
            ctx_body = ctxs[0].get("context", {}) if ctxs else {}
            doc["contexts"] = ctxs
            doc["clusters"] = [c for c in doc.get("clusters") or [] if c.get("name") == ctx_body.get("cluster")]
            doc["users"] = [u for u in doc.get("users") or [] if u.get("name") == ctx_body.get("user")]
        if not args.raw:
            doc = _redact(doc)
        if args.output == "json":
            import json

            out(json.dumps(doc, indent=4))
        else:
            out(yaml.safe_dump(doc, sort_keys=False).rstrip("\n"))
        return 0
    if not path.exists():
        raise CliError("current-context is not set")
    doc = yaml.safe_load(path.read_text()) or {}
    if args.config_cmd == "current-context":
        cur = doc.get("current-context")
        if not cur:
            raise CliError("current-context is not set")
        out(str(cur))
        return 0
    if args.config_cmd == "get-contexts":
        cur = doc.get("current-context")
        rows = []
        for c in doc.get("contexts") or []:
            body = c.get("context") or {}
            rows.append(["*" if c.get("name") == cur else "", str(c.get("name", "")), str(body.get("cluster", "")),
                         str(body.get("user", "")), str(body.get("namespace", ""))])
        out(printers.render_table(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"], rows).rstrip("\n"))
        return 0
    raise CliError(f"unknown config command {args.config_cmd!r}")
