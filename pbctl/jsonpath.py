"""kubectl's JSONPath templates for `-o jsonpath=...` (k8s.io/client-go/util/jsonpath, the common part).

A template is text with `{...}` expressions; an expression is a path of `.field`, `['field']`, `[n]`, `[a:b]`,
`[*]` / `.*`, `..field` (recursive) and `[?(@.path OP value)]` filters (OP: == != < > <= >=, or a bare `@.path`
for "exists"), plus `{range EXPR}...{end}` loops and quoted literals (`{"\\n"}`). Results of one expression are
joined by spaces, as kubectl prints them; maps and lists print as JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pbctl.common import CliError

_TOKEN = re.compile(r"\.\.(?P<rec>[\w$-]+|\*)|\.(?P<field>[\w$-]+|\*)|\[(?P<br>[^\]]*)\]")
_FILTER = re.compile(r"^\?\(@(?P<path>[^ !=<>]*)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<val>.+))?\)$")


def _children(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return list(v.values())
    if isinstance(v, list):
        return list(v)
    return []


def _descendants(v: Any) -> list[Any]:
    out = [v]
    for c in _children(v):
        out += _descendants(c)
    return out


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "==":
        return bool(a == b or str(a) == str(b))
    if op == "!=":
        return not (a == b or str(a) == str(b))
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


def evaluate(data: Any, path: str) -> list[Any]:
    """Every value `path` selects in `data` (a path as inside `{...}`, with or without the leading `$`)."""
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    if p in ("", "@"):
        return [data]
    cur = [data]
    pos = 0
    while pos < len(p):
        m = _TOKEN.match(p, pos)
        if m is None:
            raise CliError(f"error parsing jsonpath {path!r}: unrecognized at {p[pos:]!r}")
        pos = m.end()
        nxt: list[Any] = []
        if m.group("rec") is not None:
            name = m.group("rec")
            for v in cur:
                for d in _descendants(v):
                    if name == "*":
                        nxt += _children(d)
                    elif isinstance(d, dict) and name in d:
                        nxt.append(d[name])
        elif m.group("field") is not None:
            name = m.group("field")
            for v in cur:
                if name == "*":
                    nxt += _children(v)
                elif isinstance(v, dict) and name in v:
                    nxt.append(v[name])
        else:
            nxt = _bracket(cur, m.group("br").strip(), path)
        cur = nxt
    return cur


def _bracket(cur: list[Any], br: str, path: str) -> list[Any]:
    out: list[Any] = []
    if br == "*":
        for v in cur:
            out += _children(v)
        return out
    if br.startswith("?"):
        f = _FILTER.match(br)
        if f is None:
            raise CliError(f"error parsing jsonpath {path!r}: bad filter [{br}]")
        for v in cur:
            for item in _children(v):
                got = evaluate(item, f.group("path"))
                if f.group("op") is None:
                    if got:
                        out.append(item)
                elif got and _compare(got[0], f.group("op"), _literal(f.group("val"))):
                    out.append(item)
        return out
    if br[:1] in "'\"":
        name = _literal(br)
        return [v[name] for v in cur if isinstance(v, dict) and name in v]
    try:
        if ":" in br:
            parts = [int(x) if x.strip() else None for x in br.split(":")]
            sl = slice(*parts[:3])
            for v in cur:
                if isinstance(v, list):
                    out += v[sl]
            return out
        i = int(br)
    except ValueError:
        raise CliError(f"error parsing jsonpath {path!r}: bad index [{br}]") from None
    for v in cur:
        if isinstance(v, list) and -len(v) <= i < len(v):
            out.append(v[i])
    return out


def _text(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _parse(template: str) -> list[tuple[str, str]]:
    """[(kind, text)]: kind is "text", "expr", "range" or "end"."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            out.append(("text", template[pos:]))
            break
        if start > pos:
            out.append(("text", template[pos:start]))
        end = template.find("}", start)
        if end < 0:
            raise CliError(f"error parsing jsonpath {template!r}: unclosed action")
        inner = template[start + 1:end].strip()
        if inner.startswith("range "):
            out.append(("range", inner[len("range "):]))
        elif inner == "end":
            out.append(("end", ""))
        elif inner[:1] in "'\"":
            out.append(("text", str(_literal(inner)).encode().decode("unicode_escape")))
        else:
            out.append(("expr", inner))
        pos = end + 1
    return out


def _render(nodes: list[tuple[str, str]], data: Any) -> str:
    out: list[str] = []
    i = 0
    while i < len(nodes):
        kind, text = nodes[i]
        if kind == "text":
            out.append(text)
        elif kind == "expr":
            out.append(" ".join(_text(v) for v in evaluate(data, text)))
        elif kind == "range":
            depth, j = 1, i + 1
            while j < len(nodes) and depth:
                depth += {"range": 1, "end": -1}.get(nodes[j][0], 0)
                j += 1
            if depth:
                raise CliError("error parsing jsonpath: {range} without {end}")
            body = nodes[i + 1:j - 1]
            for item in evaluate(data, text):
                out.append(_render(body, item))
            i = j
            continue
        elif kind == "end":
            raise CliError("error parsing jsonpath: {end} without {range}")
        i += 1
    return "".join(out)


def render(data: Any, template: str) -> str:
    """The template filled from `data`, as `kubectl get -o jsonpath=TEMPLATE` prints it."""
    if "{" not in template:
        template = "{" + template + "}"
    return _render(_parse(template), data)
