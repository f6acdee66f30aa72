HOSTILE = {
    "attack": "builtins.isinstance always True and builtins.len always 0 at import (breaks the worker itself)",
    "exercise": "*",
    "status": ("error",),
    "message": "your module does not import",
}
import builtins  # noqa: E402

builtins.isinstance = lambda obj, cls: True
builtins.len = lambda obj: 0
