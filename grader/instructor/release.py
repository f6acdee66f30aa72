"""`fmgrade release OUT [--kit KIT]`: the student release and the grading kit.

Small single-purpose transforms (in the spirit of nbgrader's preprocessors):
  strip_hidden      a check file without its hidden checks and the private code only they used
  find_leaks        lines of solution text that would give an answer away, wherever they appear,
                    and solution code with its names changed (grader.instructor.leaks)
  learner_package   the grader as learners run it: no instructor modules
  write_archive     a folder as a byte-for-byte reproducible .tar.gz

The student release: course.yml, the grader, stubs, visible checks (and their helpers), a
learner README and a CI template; no solutions, hidden checks, mutants or caches.
The kit: everything `fmgrade grade --kit KIT` needs (and installs), hidden checks and solutions.
"""

import ast
import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

from grader import stubgen
from grader.instructor import kit as kit_mod
from grader.instructor import leaks
from grader.judge import recordings as recording_store
from grader.learner import reset

TEMPLATES = Path(__file__).parent / "templates"
ENGINE_TEMPLATES = ("grade-slurm.sh", "grade-kubernetes.yaml", "Dockerfile")  # copied to the kit's top
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# The grader's instructor side (grader/instructor/: proving the course, releasing, grading
# batches, gradebooks, class reports, grading platforms). Learners run none of it, so the
# release ships the package without it; tests/test_layers.py keeps the rest from needing it.
INSTRUCTOR_PACKAGE = "instructor"
LEAK_RUN = 3  # consecutive solution lines that count as a leak
MIN_LEAK_CHARS = 40  # a shorter region ("return x * 2") is not evidence


class ReleaseError(Exception):
    pass


# --- transforms ---------------------------------------------------------------------------


def _is_hidden(decorators):
    for node in decorators:
        node = node.func if isinstance(node, ast.Call) else node
        if isinstance(node, ast.Attribute) and node.attr == "hidden" and getattr(node.value, "attr", None) == "mark":
            return True
    return False


def _module_hidden(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return _is_hidden(values)
    return False


def strip_hidden(source):
    """The check file without hidden checks and without the private (`_name`) top-level code
    that only they used; None when nothing visible is left."""
    tree = ast.parse(source)
    if _module_hidden(tree):
        return None
    drop = [
        n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_hidden(n.decorator_list)
    ]
    if not drop:
        return source
    kept = [n for n in tree.body if n not in drop]
    if not any(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in kept):
        return None
    while True:  # private helpers only the removed checks used go too
        used = {name for n in kept for name in _names_used(n)}
        unused = [n for n in kept if _defined_private(n) and not (_defined_private(n) & used)]
        if not unused:
            break
        drop += unused
        kept = [n for n in kept if n not in unused]
    return _remove_nodes(source, drop)


def _defined_private(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names = {node.name}
    elif isinstance(node, ast.Assign):
        names = {t.id for t in node.targets if isinstance(t, ast.Name)}
    else:
        return set()
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _names_used(node):
    body = node.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [node]
    extra = node.decorator_list if hasattr(node, "decorator_list") else []
    for part in [*body, *extra]:
        for sub in ast.walk(part):
            if isinstance(sub, ast.Name):
                yield sub.id
            elif isinstance(sub, ast.arg):
                yield sub.arg


def _remove_nodes(source, nodes):
    lines = source.splitlines(keepends=True)
    remove = set()
    for node in nodes:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while first > 1 and lines[first - 2].lstrip().startswith("#"):  # its comment block
            first -= 1
        remove.update(range(first, node.end_lineno + 1))
    kept = [line for number, line in enumerate(lines, start=1) if number not in remove]
    text = "".join(kept)
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text.rstrip("\n") + "\n"


def _code_lines(text):
    """Stripped, non-blank lines with any leading comment marks removed (so solution code
    pasted into a comment still counts)."""
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            out.append(line)
    return out


def solution_snippets(course):
    """What the release must not contain: every run of LEAK_RUN consecutive code lines of an
    answer region (a whole region when shorter). A single generic line such as
    `mean = x.mean(-1, keepdim=True)` may legitimately appear in a check's written-out formula;
    several consecutive ones are the solution."""
    found = {}
    for topic in course.topics:
        path = course.solution_path(topic.id)
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for region in stubgen.regions("\n".join(lines), str(path)):
            body = [line.strip() for line in lines[region.begin : region.end - 1]]
            code = [line for line in body if line and not line.startswith("#")]
            size = min(LEAK_RUN, len(code))
            for start in range(len(code) - size + 1):
                window = code[start : start + size]
                if sum(len(line) for line in window) >= MIN_LEAK_CHARS:
                    found.setdefault("\n".join(window), f"solutions/{topic.id}.py:{region.begin + 1}")
    return found


def find_leaks(course, folder):
    """['path: solution text (from solutions/x.py:N)', ...] for every leak in `folder`."""
    needles = solution_snippets(course)
    secret = _earlier_secret(course.root)  # the instructor's checkout may hold one (`grade` makes it)
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(folder)
        if relative.parts[0] == "solutions" or "__pycache__" in relative.parts:
            found.append(f"{relative}: a solution or cache file")
            continue
        if path.name == kit_mod.SECRET_FILE:
            found.append(f"{relative}: the grading kit's secret (it derives every student's hidden seed)")
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        if secret is not None and secret.decode("ascii") in text:
            found.append(f"{relative}: contains the grading kit's secret")
        if "### BEGIN SOLUTION" in text and relative.parts[0] != "grader":
            found.append(f"{relative}: contains a BEGIN SOLUTION marker")
        haystack = "\n".join(_code_lines(text))
        for needle, origin in needles.items():
            if needle in haystack:
                found.append(f"{relative}: {needle.splitlines()[0]!r}... (from {origin})")
    return found + leaks.find_copies(course, folder)


def write_archive(folder, archive, private=False):
    """A .tar.gz of `folder` that is byte-identical for identical contents: sorted entries,
    no times, owners or permissions beyond 0644/0755, and a gzip header without a time.
    private: entries 0600/0700 and the archive itself 0600 (the grading kit)."""
    folder, buffer = Path(folder), io.BytesIO()
    file_mode, dir_mode = (0o600, 0o700) if private else (0o644, 0o755)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            info = tarfile.TarInfo(str(Path(folder.name) / path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, dir_mode
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), dir_mode if path.stat().st_mode & 0o111 else file_mode
                tar.addfile(info, io.BytesIO(data))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    with (
        open(os.open(archive, flags, 0o600 if private else 0o644), "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        gz.write(buffer.getvalue())
    if private:
        os.chmod(archive, 0o600)  # it may have existed with wider permissions
    return Path(archive)


# --- the two products -------------------------------------------------------------------


def _fresh(folder):
    folder = Path(folder)
    if folder.exists():
        if not (folder / "course.yml").is_file() and any(folder.iterdir()):
            raise ReleaseError(f"{folder} exists and does not look like an earlier release; choose an empty folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def learner_package(source, dest):
    """Copy the grader package without its instructor side (grader/instructor/)."""
    source = Path(source)

    def ignore(folder, names):
        skipped = {INSTRUCTOR_PACKAGE} if Path(folder) == source else set()
        return skipped | IGNORED(folder, names)

    shutil.copytree(source, dest, ignore=ignore)


def _copy_package(course, out, learner=False):
    if learner:
        learner_package(course.root / "grader", out / "grader")
    else:
        shutil.copytree(course.root / "grader", out / "grader", ignore=IGNORED)
    shutil.copy(course.root / "pyproject.toml", out / "pyproject.toml")
    shutil.copy(course.root / "course.yml", out / "course.yml")
    shutil.copytree(course.root / "exercises", out / "exercises", ignore=IGNORED)


def build_release(course, out):
    """Write the student release into `out`; returns the leak report (empty when clean)."""
    out = _fresh(out)
    _copy_package(course, out, learner=True)
    for topic in course.topics:
        source_dir = course.checks_dir(topic.id)
        if not source_dir.is_dir():
            continue
        dest = out / "tests" / "checks" / topic.id
        dest.mkdir(parents=True)
        for path in sorted(source_dir.iterdir()):
            if path.name == recording_store.FILE_NAME:
                text = recording_store.load(source_dir, topic.id).for_learners().to_text()
                (dest / path.name).write_text(text, encoding="utf-8")
            elif path.suffix != ".py" and not path.is_dir():
                shutil.copy(path, dest / path.name)  # data files the checks read
            elif path.name.startswith("test_"):
                visible = strip_hidden(path.read_text(encoding="utf-8"))
                if visible is not None:
                    (dest / path.name).write_text(visible, encoding="utf-8")
            elif path.suffix == ".py":
                shutil.copy(path, dest / path.name)
    (out / "README.md").write_text((TEMPLATES / "student_README.md").read_text(encoding="utf-8"), encoding="utf-8")
    workflow = out / ".github" / "workflows"
    workflow.mkdir(parents=True)
    shutil.copy(TEMPLATES / "classroom.yml", workflow / "classroom.yml")  # visible checks only, no secret
    (out / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.fmgrade/\n", encoding="utf-8")
    reset.save_originals(course, out)  # what `fmgrade reset` restores: the release has no solutions
    return find_leaks(course, out)


def build_kit(course, kit):
    """Write the grading kit into `kit`: the installable grader, outline, stubs, every check
    (hidden ones included) and the solutions the hidden checks compare with. Only its owner
    may read or write it (folders 0700, files 0600)."""
    secret = _earlier_secret(kit) or _earlier_secret(course.root)  # grades stay what they were
    kit = _fresh(kit)
    os.chmod(kit, 0o700)  # before anything is copied in: nobody else can reach it even meanwhile
    _write_secret(kit, secret)
    _copy_package(course, kit)
    shutil.copytree(course.root / "solutions", kit / "solutions", ignore=IGNORED)
    shutil.copytree(course.root / "tests" / "checks", kit / "tests" / "checks", ignore=IGNORED)
    if (course.root / "tests" / "mutants").is_dir():  # hidden checks name known mistakes with them
        shutil.copytree(course.root / "tests" / "mutants", kit / "tests" / "mutants", ignore=IGNORED)
    (kit / "README.md").write_text((TEMPLATES / "kit_README.md").read_text(encoding="utf-8"), encoding="utf-8")
    workflows = kit / ".github" / "workflows"  # the instructor's grading of a whole classroom
    workflows.mkdir(parents=True)
    shutil.copy(TEMPLATES / "grade-classroom.yml", workflows / "grade-classroom.yml")
    for name in ENGINE_TEMPLATES:  # a Slurm array, a Kubernetes Indexed Job, and the image they run
        shutil.copy(TEMPLATES / name, kit / name)
    return kit_mod.protect(kit)


def _earlier_secret(kit):
    """The secret of a kit built earlier into the same folder, or of the instructor's checkout
    (`grade` there makes one): kept, so a rebuilt kit gives every student the seed, hence the
    grade, they had. None when there is none."""
    try:
        return kit_mod.read_secret(kit) if Path(kit).is_dir() else None
    except kit_mod.KitError:
        return None


def _write_secret(kit, secret):
    """The kit's secret (grader.instructor.kit.seed_for), 0600: the earlier one, else a new one."""
    if secret is None:
        kit_mod.make_secret(kit)
        return
    path = kit_mod.secret_path(kit)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as handle:
        handle.write(secret.decode("ascii") + "\n")
