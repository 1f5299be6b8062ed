"""explain TYPE[.field.path]: fields, JSON names, types and docs, read from the message descriptors."""

from __future__ import annotations

import argparse

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pbctl import verb
from pbctl.common import CliError, Ctx, descriptor, out, resolve_type
from pybernetes.api import kinds
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.meta.v1 import options_pb2


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TYPE[.FIELD...]")
    p.add_argument("--recursive", action="store_true")

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_BYTES: "string", FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_DOUBLE: "number",
}
_SPECIAL = {
    meta.Time.DESCRIPTOR.full_name: "string",
    meta.Quantity.DESCRIPTOR.full_name: "Quantity",
    meta.IntOrString.DESCRIPTOR.full_name: "IntOrString",
    meta.RawExtension.DESCRIPTOR.full_name: "Object",
}


def _is_repeated(fd: FieldDescriptor) -> bool:
    rep = getattr(fd, "is_repeated", None)
    return bool(rep) if rep is not None else getattr(fd, "label", 0) == FieldDescriptor.LABEL_REPEATED


def _msg(fd: FieldDescriptor) -> Descriptor:
    m = fd.message_type
    assert m is not None
    return m


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and bool(_msg(fd).GetOptions().map_entry)


def _single_type(fd: FieldDescriptor) -> str:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return _SPECIAL.get(_msg(fd).full_name, _msg(fd).name)
    return _SCALARS.get(fd.type, "integer")


def type_name(fd: FieldDescriptor) -> str:
    if _is_map(fd):
        return f"map[string]{_single_type(_msg(fd).fields_by_name['value'])}"
    if _is_repeated(fd):
        return f"[]{_single_type(fd)}"
    return _single_type(fd)


def doc(fd: FieldDescriptor) -> str:
    return str(fd.GetOptions().Extensions[options_pb2.doc])


def required(fd: FieldDescriptor) -> bool:
    return bool(fd.GetOptions().Extensions[options_pb2.required])


def _fields(desc: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in desc.fields}


def _message_of(fd: FieldDescriptor) -> Descriptor | None:
    if _is_map(fd):
        fd = _msg(fd).fields_by_name["value"]
    if fd.type == FieldDescriptor.TYPE_MESSAGE and _msg(fd).full_name not in _SPECIAL:
        return _msg(fd)
    return None


def _field_lines(desc: Descriptor, top_level: bool, indent: str = "  ") -> list[str]:
    rows: list[tuple[str, str, bool, str]] = []
    if top_level:
        rows.append(("apiVersion", "string", False, "APIVersion defines the versioned schema of this "
                     "representation of an object."))
        rows.append(("kind", "string", False, "Kind is a string value representing the REST resource this "
                     "object represents."))
    for name, fd in _fields(desc).items():
        rows.append((name, type_name(fd), required(fd), doc(fd)))
    lines: list[str] = []
    for name, t, req, d in sorted(rows, key=lambda r: r[0]):
        lines.append(f"{indent}{name}\t<{t}>" + (" -required-" if req else ""))
        lines.append(f"{indent}  {d or '<no description>'}")
        lines.append("")
    return lines


def explain(target: str, *, recursive: bool = False) -> str:
    type_part, _, path = target.partition(".")
    info = resolve_type(type_part)
    desc: Descriptor | None = descriptor(info.cls)
    lines = [f"KIND:       {info.kind}"]
    if info.group:
        lines.append(f"GROUP:      {info.group}")
    lines += [f"VERSION:    {info.version}", ""]
    fd: FieldDescriptor | None = None
    walked: list[str] = []
    for part in [p for p in path.split(".") if p]:
        if desc is None:
            raise CliError(f'field "{part}" does not exist')
        fields = _fields(desc)
        if part not in fields:
            raise CliError(f'field "{part}" does not exist')
        fd = fields[part]
        walked.append(part)
        desc = _message_of(fd)
    if fd is not None:
        lines += [f"FIELD: {fd.json_name} <{type_name(fd)}>" + (" -required-" if required(fd) else ""), ""]
        lines += ["DESCRIPTION:", f"    {doc(fd) or '<empty>'}"]
    else:
        lines += ["DESCRIPTION:", f"    {info.kind} is a {info.group or 'core'}/{info.version} API object."]
    if desc is not None:
        lines += ["", "FIELDS:"]
        lines += _recursive_lines(desc, "  ", set()) if recursive else _field_lines(desc, fd is None)
    return "\n".join(lines).rstrip("\n") + "\n"


def _recursive_lines(desc: Descriptor, indent: str, seen: set[str]) -> list[str]:
    lines: list[str] = []
    for name, fd in sorted(_fields(desc).items()):
        lines.append(f"{indent}{name}\t<{type_name(fd)}>" + (" -required-" if required(fd) else ""))
        sub = _message_of(fd)
        if sub is not None and sub.full_name not in seen:
            lines += _recursive_lines(sub, indent + "  ", seen | {sub.full_name})
    return lines


async def run_explain(ctx: Ctx, args: argparse.Namespace) -> int:
    registry_check = kinds.lookup(args.target.partition(".")[0])
    if registry_check is None:
        raise CliError(f'the server doesn\'t have a resource type "{args.target.partition(".")[0]}"')
    out(explain(args.target, recursive=args.recursive).rstrip("\n"))
    return 0


VERB = verb.Verb("explain", "Get documentation for a resource", arguments, run_explain, rank=120)
