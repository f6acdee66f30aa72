HOSTILE = {
    "attack": "sys.exit(0) at import",
    "exercise": "*",
    "status": ("error",),
    "message": "exit",
    "hidden": True,
}
import sys  # noqa: E402

sys.exit(0)
