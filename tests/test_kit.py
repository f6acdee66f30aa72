"""The grading kit is its owner's only (0700/0600, its archive too), and its fingerprint sees
every change grading could be fooled by: content, permissions, an added conftest.py or .pyc,
a removed file, a link."""

import io
import os
import stat
import tarfile

import pytest

from grader import course
from grader.instructor import kit, release

ROOT = course.find_root(__file__)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return release.build_kit(course.load(ROOT), tmp_path_factory.mktemp("k") / "kit")


def test_the_kit_is_readable_by_its_owner_only(built):
    assert stat.S_IMODE(built.stat().st_mode) == 0o700
    for path in built.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode in ((0o700,) if path.is_dir() else (0o600, 0o700)), f"{path}: {mode:o}"


def test_the_kit_archive_is_private_too(built, tmp_path):
    archive = release.write_archive(built, tmp_path / "kit.tar.gz", private=True)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(fileobj=io.BytesIO(archive.read_bytes())) as tar:
        modes = {m.mode for m in tar.getmembers()}
    assert modes <= {0o600, 0o700} and 0o600 in modes


def test_the_student_release_archive_stays_readable(built, tmp_path):
    archive = release.write_archive(built, tmp_path / "release.tar.gz")
    with tarfile.open(archive) as tar:
        assert {m.mode for m in tar.getmembers()} <= {0o644, 0o755}


@pytest.fixture
def small_kit(tmp_path):
    root = tmp_path / "kit"
    for name in (
        "course.yml",
        "solutions/attention.py",
        "tests/checks/attention/test_a.py",
        "tests/checks/attention/helpers.py",
        "grader/cli/__init__.py",
        "README.md",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    return root


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda r: (r / "tests/checks/attention/conftest.py").write_text("x"),
            "tests/checks/attention/conftest.py (added)",
        ),
        (lambda r: (r / "tests/conftest.py").write_text("x"), "tests/conftest.py (added)"),
        (
            lambda r: (
                (r / "tests/checks/attention/__pycache__").mkdir()
                or (r / "tests/checks/attention/__pycache__/test_a.cpython-311-pytest-8.pyc").write_bytes(b"\0")
            ),
            "tests/checks/attention/__pycache__/test_a.cpython-311-pytest-8.pyc (added)",
        ),
        (lambda r: (r / "solutions/attention.py").write_text("# changed\n"), "solutions/attention.py (changed)"),
        (
            lambda r: os.chmod(r / "tests/checks/attention/helpers.py", 0o666),
            "tests/checks/attention/helpers.py (changed)",
        ),
        (lambda r: (r / "course.yml").unlink(), "course.yml (removed)"),
        (lambda r: (r / "solutions/link.py").symlink_to("/etc/hostname"), "solutions/link.py (added)"),
        (lambda r: (r / "grader/cli/__init__.py").write_text("# hijacked\n"), "grader/cli/__init__.py (changed)"),
    ],
)
def test_the_fingerprint_sees_every_change(small_kit, change, expected):
    guard = kit.Guard(small_kit)
    guard.check()
    change(small_kit)
    with pytest.raises(kit.KitChanged) as caught:
        guard.check()
    assert caught.value.changed == [expected]


def test_what_grading_never_reads_and_the_output_folder_are_left_out(small_kit):
    out = small_kit / "tests" / "checks" / "results"
    guard = kit.Guard(small_kit, skip=[out])
    (small_kit / "README.md").write_text("edited\n")
    (small_kit / "notes.txt").write_text("new\n")
    out.mkdir()
    (out / "alice.json").write_text("{}")
    guard.check()
