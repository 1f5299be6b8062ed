"""pbctl's terminal rendering of tables: Go-tabwriter alignment, and `get`'s rows as kubectl prints them.

Which columns each kind has and what their cells say is the library's (pybernetes/api/printing.py, the same
table the apiserver serves kubectl); this module keeps kubectl's client-side part: upper-cased headers, wide
columns only with -o wide, NAMESPACE and LABELS columns, and the kind prefix when several kinds are printed.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from pbctl.common import ref
from pybernetes.api import cells, kinds, printing
from pybernetes.api.objects import meta_of

# -- text/tabwriter --------------------------------------------------------------------------------

def tabwrite(text: str, *, minwidth: int = 6, padding: int = 3) -> str:
    """Go's text/tabwriter (padchar ' ', no flags): tab-terminated cells aligned per column block."""
    trailing_nl = text.endswith("\n")
    lines = [ln.split("\t") for ln in (text[:-1] if trailing_nl else text).split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(a: int, b: int) -> None:
        for i in range(a, b):
            cells = lines[i]
            parts = []
            for j, c in enumerate(cells):
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(c.ljust(widths[j]))
                else:
                    parts.append(c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out) + ("\n" if trailing_nl else "")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, no_headers: bool = False) -> str:
    lines = [] if no_headers else ["\t".join(headers)]
    lines += ["\t".join(r) for r in rows]
    return tabwrite("\n".join(lines) + "\n") if lines else ""


# -- kubectl get -----------------------------------------------------------------------------------

def _shown(info: kinds.ResourceInfo, wide: bool) -> list[printing.Column]:
    return [c for c in printing.columns(info.plural) if wide or c.priority == 0]


def headers_for(info: kinds.ResourceInfo, *, wide: bool = False, show_labels: bool = False,
                all_namespaces: bool = False) -> list[str]:
    h = [c.name.upper() for c in _shown(info, wide)]
    if show_labels:
        h.append("LABELS")
    if all_namespaces and info.namespaced:
        h.insert(0, "NAMESPACE")
    return h


def row_for(info: kinds.ResourceInfo, obj: Message, now: float, *, wide: bool = False,
            show_labels: bool = False, all_namespaces: bool = False, with_kind: bool = False) -> list[str]:
    cols = printing.columns(info.plural)
    md = meta_of(obj)
    row = [cell for col, cell in zip(cols, printing.cells(info.plural, obj, now), strict=True)
           if wide or col.priority == 0]
    if with_kind and cols[0] is printing.NAME:
        row[0] = ref(info, md.name)
    if show_labels:
        row.append(cells.format_labels(md.labels))
    if all_namespaces and info.namespaced:
        row.insert(0, md.namespace)
    return row


def table(info: kinds.ResourceInfo, objs: Sequence[Message], now: float, *, wide: bool = False,
          show_labels: bool = False, all_namespaces: bool = False, with_kind: bool = False,
          no_headers: bool = False) -> str:
    headers = headers_for(info, wide=wide, show_labels=show_labels, all_namespaces=all_namespaces)
    rows = [row_for(info, o, now, wide=wide, show_labels=show_labels, all_namespaces=all_namespaces,
                    with_kind=with_kind) for o in objs]
    return render_table(headers, rows, no_headers=no_headers)
