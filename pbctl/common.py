"""What every pbctl verb shares: the invocation context, resource/argument resolution, output."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from pybernetes import flags
from pybernetes.api import codec, kinds
from pybernetes.client.client import Client
from pybernetes.client.config import ClientConfig

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CHANGE_CAUSE = "kubernetes.io/change-cause"
VERSION = "v0.1.0"


class CliError(Exception):
    """A user-facing error; printed as `error: <message>` with exit code 1."""


@dataclass
class Ctx:
    """One invocation: the resolved config, namespace flags and a lazily opened client."""

    config: ClientConfig | None
    namespace: str = "default"
    explicit_namespace: bool = False
    all_namespaces: bool = False
    verbosity: int = 0
    config_error: str = ""
    as_user: str = ""
    as_groups: tuple[str, ...] = ()
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            if self.config is None:
                raise CliError(self.config_error or "no server configured: pass --server or --config")
            self._client = Client.from_config(self.config, user_agent="pbctl", impersonate_user=self.as_user,
                                              impersonate_groups=self.as_groups)
        return self._client

    @property
    def server(self) -> str:
        return self.config.server if self.config is not None else ""

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def ns(self, info: kinds.ResourceInfo, obj_ns: str = "") -> str:
        """The namespace a request for `info` goes to ("" for cluster-scoped kinds)."""
        if not info.namespaced:
            return ""
        return obj_ns or self.namespace


def out(text: str = "") -> None:
    print(text, file=sys.stdout, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def dump(data: Any, fmt: str) -> str:
    """-o json (indented as kubectl's) or -o yaml."""
    if fmt == "json":
        return json.dumps(data, indent=4)
    return codec.yaml_dump(data).rstrip("\n")


def list_dict(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as one -o json|yaml document: kubectl's `kind: List`."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


# -- resources -------------------------------------------------------------------------------------

GETTABLE = tuple(r for r in kinds.RESOURCES if "get" in r.verbs)


def resolve_type(name: str) -> kinds.ResourceInfo:
    info = kinds.lookup(name)
    if info is None or "get" not in info.verbs:
        raise CliError(f'the server doesn\'t have a resource type "{name}"')
    return info


def resolve_types(spec: str) -> list[kinds.ResourceInfo]:
    """`pods,svc` or `all` (every kind in the `all` category)."""
    out_: list[kinds.ResourceInfo] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part == "all":
            out_.extend(r for r in GETTABLE if "all" in r.categories)
        else:
            out_.append(resolve_type(part))
    seen: list[kinds.ResourceInfo] = []
    for r in out_:
        if r not in seen:
            seen.append(r)
    return seen


def type_name(info: kinds.ResourceInfo) -> str:
    """As kubectl names a kind in messages: `pod`, `deployment.apps`."""
    return f"{info.singular}.{info.group}" if info.group else info.singular


def ref(info: kinds.ResourceInfo, name: str) -> str:
    return f"{type_name(info)}/{name}"


def quoted(info: kinds.ResourceInfo, name: str) -> str:
    return f'{type_name(info)} "{name}"'


def parse_targets(args: list[str]) -> list[tuple[kinds.ResourceInfo, list[str]]]:
    """kubectl's argument forms: `TYPE[,TYPE] [NAME...]` or `TYPE/NAME [TYPE/NAME...]`."""
    if not args:
        return []
    if "/" in args[0]:
        groups: list[tuple[kinds.ResourceInfo, list[str]]] = []
        for a in args:
            kind, sep, name = a.partition("/")
            if not sep or not name or not kind:
                raise CliError("there is no need to specify a resource type as a separate argument when "
                               "passing arguments in resource/name form (e.g. 'pbctl get resource/<resource_name>' "
                               "instead of 'pbctl get resource resource/<resource_name>'")
            info = resolve_type(kind)
            for g in groups:
                if g[0] == info:
                    g[1].append(name)
                    break
            else:
                groups.append((info, [name]))
        return groups
    infos = resolve_types(args[0])
    names = args[1:]
    if any("/" in n for n in names):
        raise CliError("there is no need to specify a resource type as a separate argument when passing "
                       "arguments in resource/name form (e.g. 'pbctl get resource/<resource_name>' instead of "
                       "'pbctl get resource resource/<resource_name>'")
    if names and len(infos) > 1:
        raise CliError("you must specify only one resource type when passing names")
    return [(i, list(names)) for i in infos]


def descriptor(cls: type[Message]) -> Descriptor:
    """The kind's message descriptor (protobuf's stubs also admit upb's class, the same object at runtime)."""
    return cast(Descriptor, cls.DESCRIPTOR)


def parse_duration(text: str) -> float:
    """`30`, `30s`, `2m`, `1h` -> seconds; a CliError (exit 1 with the message) otherwise."""
    try:
        return flags.duration(text)
    except ValueError as e:
        raise CliError(str(e)) from None


def now() -> float:
    return time.time()


def get_path(data: Any, path: str) -> Any:
    """A minimal JSONPath: `.metadata.name`, `{.spec.replicas}`, `.items[0].x`."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    cur = data
    for part in [x for x in p.lstrip(".").split(".") if x]:
        key, _, idx = part.partition("[")
        if key:
            cur = cur.get(key) if isinstance(cur, dict) else None
        if idx:
            try:
                i = int(idx.rstrip("]"))
                cur = cur[i] if isinstance(cur, list) and -len(cur) <= i < len(cur) else None
            except ValueError:
                cur = None
        if cur is None:
            return None
    return cur


def format_api_error(e: Exception, server: str = "") -> str:
    """kubectl's wording for an API error (cmdutil.CheckErr / StandardErrorMessage)."""
    from pybernetes import errors

    if isinstance(e, errors.Unavailable) and is_connection_error(e):
        return f"The connection to the server {server} was refused - did you specify the right host or port?"
    if isinstance(e, errors.Invalid) and e.causes and (e.kind or e.name):
        head = f'The {e.kind} "{e.name}" is invalid'
        if len(e.causes) == 1:
            return f"{head}: {e.causes[0]}"
        return head + ": \n" + "\n".join(f"* {c}" for c in e.causes)
    if isinstance(e, errors.Unauthorized):
        return f"error: You must be logged in to the server ({e})"
    if isinstance(e, errors.ApiError):
        return f"Error from server ({e.reason}): {e}" if e.reason else f"Error from server: {e}"
    return f"error: {e}"


def report_object_error(e: Exception) -> None:
    """Print one object's API error and let the verb go on with the others, as kubectl does; a lost
    connection (Unavailable) is not about the object and propagates to end the command."""
    from pybernetes import errors

    if isinstance(e, errors.Unavailable):
        raise e
    err(format_api_error(e))


def is_connection_error(e: Exception) -> bool:
    """The apiserver itself could not be reached. Not the server's own 503s: "the pod's kubelet is unreachable"
    from exec or logs is the server's answer, and kubectl prints it as `Error from server`."""
    from pybernetes import errors

    return isinstance(e, errors.Unreachable)
