HOSTILE = {
    "attack": "os._exit(0) at import",
    "exercise": "*",
    "status": ("error",),
    "message": "exit",
    "hidden": True,
}
import os  # noqa: E402

os._exit(0)
