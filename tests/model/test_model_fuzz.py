"""Robustness: whatever the file holds, parse() returns a topology or raises TopologyError
with located errors, and whatever it accepts compiles and renders. Never a traceback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from topogen import doc, text, topology_docs
from wgbgp.compile import compile_topology
from wgbgp.model import TopologyError, parse
from wgbgp.render import render_machine

BASE = text({**doc(3), "peerings": [["n1", "n2"], ["n2", "n3"]]})
NOISE = st.text(alphabet=st.sampled_from(list("abz019:/.-_ []{}#&*!|>'\"\t\n,?=%@`~")),
                max_size=12)


@st.composite
def mutated(draw) -> str:
    lines = BASE.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "splice", "indent", "dedent"]))
        line = lines[i]
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "splice":
            a = draw(st.integers(0, len(line)))
            b = draw(st.integers(a, len(line)))
            lines[i] = line[:a] + draw(NOISE) + line[b:]
        elif op == "indent":
            lines[i] = " " + line
        elif op == "dedent":
            lines[i] = line[1:]
    return "".join(lines)


def _check(source: str) -> None:
    try:
        topology, warnings = parse(source, "fuzz.yaml")
    except TopologyError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.level == "error" and issue.file == "fuzz.yaml"
            assert issue.message and issue.fix and issue.line, issue.format()
        return
    assert all(w.level == "warning" for w in warnings)
    plans = compile_topology(topology)
    for plan in plans.values():
        render_machine(plan)


@settings(max_examples=500)
@given(mutated())
def test_mutated_files_never_crash(source):
    _check(source)


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(source):
    _check(source)


@given(topology_docs())
def test_generated_topologies_are_valid(d):
    _, warnings = parse(text(d), "gen.yaml")
    assert not [w for w in warnings if w.level == "error"]
    _check(text(d))
