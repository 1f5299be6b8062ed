"""A component's options declared once, on its Config dataclass; the parser, the defaults and the
command line are derived from that one declaration (every component's main.py; the lab builds its
command lines with `to_argv`).

    @dataclass
    class Config:
        port: int = opt(ports.APISERVER, "--secure-port", "--port", help="the API")
        sync_period: float = opt(30.0, parse=flags.duration)   # flag name from the field: --sync-period
        pleg_period: float = 1.0                                 # a plain field has no flag

    cfg = options.parse_args(Config, argv, prog="pb-x")   # argparse: a bad value exits 2 naming the flag
    argv = options.to_argv(cfg)                          # ["--secure-port=7443"]: what differs from Config()

A field's annotation gives its parser: bool -> `--flag[=BOOL]` (flags.boolean; `switch=True`: a bare
store_true flag), int, float, Path, str, list[str] -> comma separated (flags.string_list), dict[str, str]
-> key=value,... (flags.key_values); `parse=` overrides it (flags.duration, a validator raising
argparse.ArgumentTypeError). `append=True` collects a repeated flag into a list. `keyed={key: flag}`
gives every key of a dict field a flag of its own (--concurrent-X-syncs); unset keys keep the default.
An option with `file=loader` names a config file: the loader maps it to field values, and flags given
explicitly win over them. Parsing starts from the dataclass defaults and applies only what was given.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pybernetes import flags

C = TypeVar("C")

_META = "pybernetes.option"


@dataclasses.dataclass(frozen=True)
class Option:
    """How one Config field appears on the command line (see `opt`)."""

    names: tuple[str, ...]
    help: str = ""
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False
    append: bool = False
    keyed: Mapping[str, str] | None = None
    file: Callable[[Any], Mapping[str, Any]] | None = None

    @property
    def flag(self) -> str:
        """The canonical spelling, used by `to_argv`: the first long name."""
        return next(n for n in self.names if n.startswith("--"))


def opt(default: Any, *names: str, help: str = "", parse: Callable[[str], Any] | None = None,
        metavar: str | None = None, choices: Sequence[str] | None = None, switch: bool = False,
        append: bool = False, keyed: Mapping[str, str] | None = None,
        file: Callable[[Any], Mapping[str, Any]] | None = None) -> Any:
    """A dataclass field that is also a flag. `names` default to `--field-name`; a callable default is a
    factory (as dataclasses' default_factory), and list/dict defaults are copied for every instance."""
    meta = {_META: Option(tuple(names), help, parse, metavar, tuple(choices) if choices else None, switch,
                          append, keyed, file)}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    if isinstance(default, list | dict | set):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def options_of(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Option, Any]]:
    """(field, option, resolved annotation) for every flag-bearing field of a Config class, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        o = f.metadata.get(_META)
        if o is not None:
            if not o.names:
                o = dataclasses.replace(o, names=("--" + f.name.replace("_", "-"),))
            out.append((f, o, hints[f.name]))
    return out


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _base(hint: Any) -> Any:
    """`X | None` -> X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return hint


def _parser_for_type(hint: Any) -> Callable[[str], Any]:
    base = _base(hint)
    origin = typing.get_origin(base)
    if origin is list:
        return flags.string_list
    if origin is dict:
        return flags.key_values
    if base in (int, float, Path):
        return base  # type: ignore[no-any-return]  # the class is its own parser
    return str


def _metavar(o: Option, hint: Any) -> str | None:
    """What --help shows for a value: the option's own, else one by type (argparse's DEST for strings)."""
    if o.metavar or o.choices:
        return o.metavar
    base = _base(hint)
    if o.parse is flags.duration:
        return "DURATION"
    if base is int:
        return "N"
    if base is Path:
        return "PATH"
    return {list: "A,B,...", dict: "K=V,..."}.get(typing.get_origin(base))


def _shown(default: Any, o: Option) -> str:
    """A default as --help shows it ("" when there is nothing worth showing)."""
    if default is None or default == "" or default == [] or default == {}:
        return ""
    return format_value(default, o).replace("%", "%%")


def _help(o: Option, default: Any, factory: bool) -> str:
    shown = "" if factory or o.switch else _shown(default, o)
    if not shown:
        return o.help
    return f"{o.help} (default {shown})" if o.help else f"default {shown}"


def parser_for(cls: type[Any], *, prog: str, description: str = "") -> argparse.ArgumentParser:
    """The argparse parser of a Config class. Every option defaults to SUPPRESS, so the namespace holds
    only the flags given: `parse_args` lays them over the config file (if any) and the defaults."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    for f, o, hint in options_of(cls):
        default = default_of(f)
        factory = f.default_factory is not dataclasses.MISSING and not isinstance(default, list | dict)
        if o.keyed is not None:
            item = typing.get_args(_base(hint))[1]
            for key, flag in o.keyed.items():
                p.add_argument(flag, dest=f"{f.name}:{key}", type=o.parse or item, metavar=_metavar(o, item),
                               default=argparse.SUPPRESS, help=_help(o, default.get(key), False))
            continue
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(o, default, factory)}
        base = _base(hint)
        if o.switch:
            kw["action"] = "store_true"
        elif base is bool:
            kw.update(type=o.parse or flags.boolean, nargs="?", const=True, metavar=o.metavar or "BOOL")
        elif o.append:
            kw.update(action="append", type=o.parse or str, metavar=o.metavar)
        else:
            kw.update(type=o.parse or _parser_for_type(hint), metavar=_metavar(o, hint), choices=o.choices)
        p.add_argument(*o.names, **kw)
    return p


def parse_args(cls: type[C], argv: Sequence[str] | None = None, *, prog: str, description: str = "",
               check: Callable[[C], None] | None = None) -> C:
    """Parse a component's command line into its Config: defaults, then a config file's values (an option
    with `file=`), then the flags given. Exits 2 with argparse's message on a bad flag or value, or when
    `check(cfg)` raises ValueError (for what only the whole Config can tell)."""
    parser = parser_for(cls, prog=prog, description=description)
    given = vars(parser.parse_args(argv))
    values: dict[str, Any] = {}
    for f, o, _ in options_of(cls):
        if o.file is not None and given.get(f.name) is not None:
            values.update(o.file(given[f.name]))
    for f, o, _ in options_of(cls):
        if o.keyed is not None:
            keys = {k: given[f"{f.name}:{k}"] for k in o.keyed if f"{f.name}:{k}" in given}
            if keys:
                values[f.name] = {**values.get(f.name, default_of(f)), **keys}
        elif f.name in given:
            values[f.name] = given[f.name]
    cfg = cls(**values)
    if check is not None:
        try:
            check(cfg)
        except ValueError as e:
            parser.error(str(e))
    return cfg


def format_value(value: Any, o: Option | None = None) -> str:
    """One value as its flag takes it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if o is not None and o.parse is flags.duration and isinstance(value, int | float):
        return flags.format_duration(value)
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={format_value(v)}" for k, v in value.items())
    return str(value)


def to_argv(cfg: Any) -> list[str]:
    """The flags that make `parse_args` return `cfg` again: `--flag=value` for every option that differs
    from the default (all of them when a config file is named, since its values would win over defaults)."""
    fields = options_of(type(cfg))
    every = any(o.file is not None and getattr(cfg, f.name) is not None for f, o, _ in fields)
    out: list[str] = []
    for f, o, _ in fields:
        value, default = getattr(cfg, f.name), default_of(f)
        if o.keyed is not None:
            out += [f"{flag}={format_value(value[k], o)}" for k, flag in o.keyed.items()
                    if k in value and (every or value[k] != default.get(k))]
            continue
        if value is None and default is not None:
            raise ValueError(f"{o.flag}: None has no command line (the default is {default!r})")
        if value is None or (value == default and not every):
            continue
        if o.switch:
            out += [o.flag] if value else []
        elif o.append:
            out += [f"{o.flag}={format_value(v, o)}" for v in value]
        else:
            out.append(f"{o.flag}={format_value(value, o)}")
    return out
