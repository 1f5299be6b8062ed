"""Property tests of label and field selector parsing: any text parses or raises BadRequest; what parses
prints back to text that parses to the same selector; a selector matches as its requirements say."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pybernetes.api import selectors
from pybernetes.errors import BadRequest
from tests.fuzzing import examples

_TOKENS = st.sampled_from(["app", "tier", "a.b/c", "x", "=", "==", "!=", "!", ",", " ", "in", "notin", "(", ")",
                           "web", "db", "-", "_", "/", "\n", "é", "\ud800", "a" * 64])
_SELECTOR_TEXT = st.one_of(st.lists(_TOKENS, max_size=8).map("".join), st.text(max_size=20))
_KEYS = st.sampled_from(["app", "tier", "example.com/role", "a_b.c-d", "x"])
_VALUES = st.sampled_from(["web", "db", "", "v1.2", "a-b_c"])


@examples(300)
@given(_SELECTOR_TEXT)
def test_label_selector_parses_or_raises_bad_request_and_round_trips(text: str) -> None:
    try:
        sel = selectors.parse_label_selector(text)
    except BadRequest:
        return
    assert selectors.parse_label_selector(str(sel)) == sel


@examples(300)
@given(_SELECTOR_TEXT)
@example("a===b")  # printed as "a==b", which parsed back as a=b
@example("a=!b")
@example("a= =b")
@example("! =")  # field "!" printed as "!=", which parsed back as field "" != ""
@example("app==app==")  # the last "==" split it: field "app=app"
def test_field_selector_parses_or_raises_bad_request_and_round_trips(text: str) -> None:
    try:
        sel = selectors.parse_field_selector(text)
    except BadRequest:
        return
    assert selectors.parse_field_selector(str(sel)) == sel


@examples(200)
@given(st.lists(st.tuples(_KEYS, st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]),
                          st.frozensets(_VALUES.filter(bool), min_size=1, max_size=3)), max_size=4),
       st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_built_selectors_round_trip_and_match(reqs: list[tuple[str, str, frozenset[str]]],
                                              labels: dict[str, str]) -> None:
    """Set values are non-empty: the parser drops empty items of `in (a,)`."""
    built = []
    for key, op, values in reqs:
        vals = frozenset([min(values)]) if op in ("=", "!=") else values if op in ("in", "notin") else frozenset()
        built.append(selectors.Requirement(key, op, vals))
    sel = selectors.LabelSelector(tuple(built))
    parsed = selectors.parse_label_selector(str(sel))
    assert parsed == sel
    assert parsed.matches(labels) == all(r.matches(labels) for r in built)
    assert selectors.from_match_labels(labels).matches(labels)
