"""course.yml: the real outline loads, and every kind of mistake gets a one-line error with
the file, the line and the field."""

import textwrap

import pytest

from grader import course
from grader.course import CourseError

ROOT = course.find_root(__file__)


TOPIC_IDS = ["attention", "gpt3", "llama", "survey", "scaling", "instructgpt", "alpaca", "minigpt4", "deepspeed_chat"]

GOOD = """\
format_version: 1
title: T
sections:
  - id: s
    title: S
    topics:
      - id: a
        title: A
        exercises:
          - id: e
            goal: do e
      - id: b
        title: B
        prerequisites: [a]
        exercises:
          - id: f
            goal: do f
"""


def parse(text, root):
    return course.parse(textwrap.dedent(text), root, "course.yml")


def test_the_real_outline_has_every_topic_of_the_seed():
    loaded = course.load(ROOT)
    assert sorted(t.id for t in loaded.topics) == sorted(TOPIC_IDS)
    assert [s.title for s in loaded.sections][:1] == ["Transformers and attention"]
    assert "scaling" in loaded.topic("llama").prerequisites  # the seed: Scaling Law before LLaMA
    assert loaded.topic("survey").optional
    for topic in loaded.topics:
        assert topic.material and topic.exercises, topic.id
        for exercise in topic.exercises:
            assert exercise.goal
    assert loaded.available("attention")


def test_root_is_found_from_a_subfolder():
    assert course.find_root(ROOT / "tests" / "checks") == ROOT


def test_no_course_anywhere_is_a_clear_error(tmp_path):
    with pytest.raises(CourseError, match="no course.yml in .* or any folder above"):
        course.find_root(tmp_path)


def test_good_minimal_course(tmp_path):
    loaded = parse(GOOD, tmp_path)
    assert [t.id for t in loaded.topics] == ["a", "b"]
    assert loaded.topic("b").prerequisites == ("a",)
    assert not loaded.available("a")  # no module yet: shown as not yet available, not an error


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("title: T\n", "title: T\nauthor: me\n", r"course.yml:3: author: unknown key in course"),
        (
            "            goal: do e\n",
            "",
            r"course.yml:10: sections\[0\].topics\[0\].exercises\[0\]: missing field 'goal'",
        ),
        ("      - id: b\n", "      - id: a\n", r"course.yml:12: sections\[0\].topics\[1\].id: duplicate topic id 'a'"),
        ("[a]", "[zz]", r"course.yml:14: sections\[0\].topics\[1\].prerequisites\[0\]: unknown topic 'zz'"),
        (
            "format_version: 1",
            "format_version: 7",
            r"course.yml:1: format_version: this fmgrade reads format_version 1",
        ),
        ("title: T\n", "title: [T\n", r"course.yml:\d+: YAML syntax error"),
        ("title: T\n", "title: T\ntitle: U\n", r"course.yml:3: duplicate key 'title'"),
        ("        title: A\n", "        title: A\n        optional: maybe\n", r"optional: expected true or false"),
        ("            goal: do e\n", "            goal: do e\n            hints: nope\n", r"hints: expected a list"),
    ],
)
def test_mistakes_name_file_line_and_field(tmp_path, old, new, expected):
    assert old in GOOD
    with pytest.raises(CourseError, match=expected):
        parse(GOOD.replace(old, new, 1), tmp_path)


def test_cyclic_prerequisites(tmp_path):
    text = GOOD.replace("        title: A\n", "        title: A\n        prerequisites: [b]\n", 1)
    with pytest.raises(CourseError, match=r"course.yml:\d+: .*prerequisites: prerequisites form a cycle: a -> b -> a"):
        parse(text, tmp_path)


def test_duplicate_exercise_id(tmp_path):
    text = GOOD.replace(
        "            goal: do e\n", "            goal: do e\n          - id: e\n            goal: again\n", 1
    )
    with pytest.raises(CourseError, match=r"course.yml:12: .*exercises\[1\].id: duplicate exercise id 'e'"):
        parse(text, tmp_path)


def test_exercise_without_checks(tmp_path):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "a.py").write_text("")
    checks = tmp_path / "tests" / "checks" / "a"
    checks.mkdir(parents=True)
    (checks / "test_a.py").write_text("import pytest\n\n@pytest.mark.exercise('other')\ndef test_x(impl):\n    pass\n")
    with pytest.raises(
        CourseError, match=r"course.yml:10: .*exercises\[0\]: exercise 'e' has no checks in tests/checks/a/"
    ):
        parse(GOOD, tmp_path)


def test_unreadable_file_names_it(tmp_path):
    (tmp_path / "course.yml").write_bytes(b"\xff\xfe bad")
    with pytest.raises(CourseError, match=r"course.yml: not UTF-8"):
        course.load(tmp_path)
