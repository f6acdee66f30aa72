"""Load YAML into plain Python values and remember the line of every value.

The course loader reports errors as `course.yml:LINE: field.path: problem`; PyYAML's node
tree has the marks, so we build the values from it ourselves and keep a path -> line map.
"""

import yaml


class YamlError(ValueError):
    def __init__(self, line, path, message):
        self.line, self.path = line, path
        super().__init__(message)


def load(text):
    """Return (data, lines) where lines maps a path tuple like ("sections", 0, "id") to a
    1-based line number. Raises YamlError on syntax errors and duplicate keys."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(line, (), f"YAML syntax error: {problem}") from None
    lines: dict[tuple, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines), lines


def _build(node, path, lines):
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in result:
                raise YamlError(key_node.start_mark.line + 1, path, f"duplicate key {key!r}")
            result[key] = _build(value_node, path + (key,), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node):
    if not isinstance(node, yaml.ScalarNode):
        raise YamlError(node.start_mark.line + 1, (), "expected a plain value here")
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()
