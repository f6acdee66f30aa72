"""Stub generation: answer regions become TODOs, everything else is kept; exercises/ is in sync."""

import ast

import pytest

from grader import course, stubgen
from grader.instructor import devcheck
from grader.stubgen import StubError

ROOT = course.find_root(__file__)


SOLUTION = '''\
def f(x):
    """Double x."""
    ### BEGIN SOLUTION double
    return 2 * x
    ### END SOLUTION


class A:
    def g(self):
        ### BEGIN SOLUTION other
        return 1
        ### END SOLUTION
'''


def test_regions_become_todos_keeping_signature_docstring_and_indent():
    stub = stubgen.make_stub(SOLUTION, "mod", {"double": "Double it."})
    assert "return 2 * x" not in stub and "return 1" not in stub
    assert (
        '    """Double x."""\n    # TODO(double): Double it.\n    raise NotImplementedError("exercise `double`' in stub
    )
    assert '        # TODO(other)\n        raise NotImplementedError("exercise `other`' in stub
    assert "exercises/mod.py" in stub
    ast.parse(stub)


def test_generation_is_deterministic():
    assert stubgen.make_stub(SOLUTION, "m") == stubgen.make_stub(SOLUTION, "m")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "    ### BEGIN SOLUTION a\n    ### BEGIN SOLUTION b\n",
            r"x.py:2: BEGIN SOLUTION inside the region opened at line 1",
        ),
        ("    ### END SOLUTION\n", r"x.py:1: END SOLUTION without a BEGIN"),
        ("x = 1\n    ### BEGIN SOLUTION a\n", r"x.py:2: BEGIN SOLUTION is never closed"),
        ("    ### BEGIN SOLUTION\n    ### END SOLUTION\n", r"x.py:1: BEGIN SOLUTION must name its exercise"),
        ("x = 1  ### END SOLUTION\n", r"x.py:1: a solution marker must stand alone"),
    ],
)
def test_malformed_markers_name_file_and_line(text, message):
    with pytest.raises(StubError, match=message):
        stubgen.regions(text, "x.py")


def test_committed_stubs_match_the_generator():
    loaded = course.load(ROOT)
    assert stubgen.drifted(loaded) == [], "run `fmgrade dev stubs` to regenerate exercises/"


def test_every_solution_region_names_a_course_exercise():
    loaded = course.load(ROOT)
    for topic in loaded.topics:
        if loaded.solution_path(topic.id).is_file():
            names = {r.exercise for r in stubgen.regions(loaded.solution_path(topic.id).read_text())}
            assert names == {e.id for e in topic.exercises}, topic.id


def test_stubs_keep_the_solutions_signatures():
    loaded = course.load(ROOT)
    for topic in loaded.topics:
        if loaded.solution_path(topic.id).is_file():
            solution = devcheck.signatures(loaded.solution_path(topic.id))
            assert devcheck.signatures(loaded.exercise_path(topic.id)) == solution, topic.id
