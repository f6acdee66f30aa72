"""Learner text made safe once, where it enters the grader.

Every string that comes from learner code (an exception's message, what it printed, a function
name in a timeout's traceback) or from a submission (a student id, a file name) passes through
`safe_text` before it reaches a message: afterwards it is encodable as UTF-8, valid in XML 1.0,
inert on a terminal (no escape sequence, no carriage return redrawing a row, no bidirectional
override reordering one) and of bounded length. What is not safe is shown, not dropped, so an
instructor still sees what the submission did: ESC becomes the four characters `\\x1b`, a lone
surrogate `\\ud800`. NUL is removed (C strings, XML and CSV all stop or break at it).

`safe_tree` does the same for every string of a results file read back from disk.

`safe_repr` is the bounded repr for learner values in messages: it never builds the whole repr
of a value (a 10 MB string referenced a thousand times would take 10 GB) and never raises.
(A cell of a CSV file is kept from running as a formula by grader.spreadsheet, its one writer.)
"""

import hashlib
import re
import reprlib

MAX_TEXT = 20_000  # characters of one learner string kept in a message or an output
MAX_ID = 120  # characters of a student id or file name (file systems allow 255 bytes)
MAX_REPR = 200  # characters of a learner value shown in a message

# C0 controls but tab and newline, DEL and the C1 controls (0x9b is a one-byte CSI), lone
# surrogates, line/paragraph separators, bidirectional embeddings/overrides/isolates (they can
# make a row read differently from what it says), the byte order mark, and XML's non-characters.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)


def _shown(match):
    char = match.group()
    if char == "\x00":
        return ""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text, limit=MAX_TEXT):
    """`text` with every unsafe character shown visibly (`\\x1b`, `\\ud800`), NUL removed, and
    cut to `limit` characters with a note of how many more there were. Not a str: its str(),
    or its type's name when that fails."""
    if not isinstance(text, str):
        text = _as_str(text)
    used = min(len(text), limit)
    shown = text[:used]
    if _UNSAFE.search(shown):
        shown = _UNSAFE.sub(_shown, shown)
        if len(shown) > limit:  # escapes take up to six characters each: cut again, at a whole one
            used = _fitting(text, limit)
            shown = _UNSAFE.sub(_shown, text[:used])
    if len(text) > used:
        shown += f"... ({len(text) - used} more characters not shown)"
    return shown


def _fitting(text, limit):
    """How many characters of `text` fit in `limit` characters once made safe."""
    size = 0
    for count, char in enumerate(text):
        size += len(_UNSAFE.sub(_shown, char))
        if size > limit:
            return count
    return len(text)


def _as_str(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[: MAX_TEXT * 4]).decode("utf-8", "backslashreplace")
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a learner object's __str__ may raise anything
        return f"<{type(value).__name__} that cannot be shown>"
    return text if type(text) is str else str.__str__(text)


def safe_id(text, limit=MAX_ID):
    """A student id or file name as text: on one line, at most `limit` characters, never
    empty. A longer one keeps its start and a hash of the whole, so two stay two."""
    if not isinstance(text, str):
        text = _as_str(text)
    shown = safe_text(text[: 4 * limit], 8 * limit).replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > limit or len(text) > 4 * limit:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        shown = f"{shown[: limit - 9]}~{digest}"
    return shown or "(empty)"


def safe_tree(value):
    """Decoded JSON with every string in it, keys included, made safe by `safe_text`: for
    results files written before the grader made text safe (or edited by hand), read back by
    `report`, `gradebook import` or `--resume`."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [safe_tree(v) for v in value]
    if isinstance(value, dict):
        return {safe_text(k): safe_tree(v) for k, v in value.items()}
    return value


class _BoundedRepr(reprlib.Repr):
    """reprlib cuts strings before calling repr; this also bounds ints, bytes and whatever
    falls through to an object's own repr."""

    def __init__(self, limit):
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = limit
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 8, 8, 6, 6

    def repr_int(self, x, level):
        if x.bit_length() > 4 * self.maxlong:  # str(int) is quadratic and refused past 4300 digits
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x, level):
        return self.repr_str(bytes(x[: self.maxstring]), level) + ("..." if len(x) > self.maxstring else "")

    repr_bytearray = repr_bytes


def safe_repr(value, limit=MAX_REPR):
    """A repr of `value` of at most about `limit` characters, built without the whole repr of
    any large string, bytes or container inside it, and safe as text. Never raises."""
    try:
        text = _BoundedRepr(limit).repr(value)
    except Exception:  # noqa: BLE001 - learner objects may raise from __repr__
        text = f"<{type(value).__name__} that cannot be shown>"
    return safe_text(text, limit + 40)
