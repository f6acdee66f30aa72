"""Credit on its own merits: at grade time, an exercise whose prerequisites fail is still
checked on its own code, with each failing prerequisite answered by the reference solution.

The reference never enters the worker. The learner's function (or method) of a failing
prerequisite is replaced there by a stand-in whose calls come back over the pipe
(grader.sandbox.proxy.Session.substitute); `StandIns` answers them here, by running the
reference on the decoded arguments, and only data goes back. A reference method runs with the
learner's object as `self` (a handle: its attributes, submodules and methods are the
learner's, read and called through the worker).

What can stand in: an exercise whose solution regions all lie in module-level functions or in
methods (other than `__init__`, and undecorated) of module-level classes. An exercise with a
region in `__init__` (the object's state is built there) cannot; its dependents stay blocked.
Gradients do not flow through a stand-in's answer (it is data): a dependent that trains
through a failing prerequisite stops at its first backward with an error that says so
(grader.sandbox.worker._no_gradient).
"""

import ast

import torch

from grader import stubgen
from grader.sandbox import proxy


class StandIns:
    """The reference module's answers for stand-ins, by name ("attention", "LayerNorm.forward")."""

    def __init__(self, module, source, filename="<solution>"):
        self._module = module
        try:
            self._names = names_by_exercise(source, filename)
        except (stubgen.StubError, SyntaxError, ValueError):  # regions it cannot read: nothing stands in
            self._names = {}

    def names(self, exercise):
        """The names that stand in for `exercise`, or None when it cannot be stood in for."""
        return self._names.get(exercise)

    def __call__(self, name, args, kwargs):
        owner_name, _, attr = name.rpartition(".")
        if owner_name:
            function = vars(getattr(self._module, owner_name))[attr]
            if not args or not isinstance(args[0], proxy.Handle):
                raise TypeError(f"{name} needs the learner's object as self")
            args = [proxy.writable(args[0]), *args[1:]]
        else:
            function = getattr(self._module, attr)
        with torch.random.fork_rng():  # the checks' own draws stay as they were
            return function(*args, **kwargs)


def names_by_exercise(source, filename="<solution>"):
    """{exercise: tuple of names, or None when some region of it cannot stand in}."""
    tree = ast.parse(source, filename)
    places = []  # (first line, last line, name or None)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            places.append((node.lineno, node.end_lineno, None if node.decorator_list else node.name))
        elif isinstance(node, ast.ClassDef):
            places.append((node.lineno, node.end_lineno, None))  # class body outside any method
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    standable = not item.decorator_list and item.name != "__init__"
                    places.append((item.lineno, item.end_lineno, f"{node.name}.{item.name}" if standable else None))
    found = {}
    for region in stubgen.regions(source, filename):
        inner = [p for p in places if p[0] <= region.begin <= p[1]]
        name = min(inner, key=lambda p: p[1] - p[0])[2] if inner else None  # the innermost place
        names = found.setdefault(region.exercise, ())
        if names is not None:
            found[region.exercise] = None if name is None else tuple(dict.fromkeys((*names, name)))
    return found
