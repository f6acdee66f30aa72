HOSTILE = {
    "attack": "inside rate(): TCP to 1.1.1.1:53, TCP to a loopback port and an abstract unix socket the test "
              "listens on, UDP to 8.8.8.8:53; then returns the honest value",
    "exercise": None,  # nothing to gain in points: the test checks that no connection got through
    "contained_by": ("bwrap", "namespaces"),  # process and user isolation have no network namespace of their own
}
import socket  # noqa: E402

_honest_rate = rate  # noqa: F821


def _try(label, family, kind, address, send=False):
    try:
        with socket.socket(family, kind) as sock:
            sock.settimeout(1.0)
            if send:
                sock.sendto(b"\x00" * 12, address)
            else:
                sock.connect(address)
                sock.sendall(b"FMGRADE-HOSTILE-FORGERY")
        print(f"hostile: {label}: CONNECTED")
    except OSError as exc:
        print(f"hostile: {label}: blocked ({type(exc).__name__}: {exc})")


def rate(step, model_size, factor, warmup):
    if _from_grader():  # noqa: F821
        _try("tcp 1.1.1.1:53", socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 53))
        _try("tcp loopback", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", int("@PORT@")))
        _try("abstract unix", socket.AF_UNIX, socket.SOCK_STREAM, "\0@UNIX_NAME@")
        _try("udp 8.8.8.8:53", socket.AF_INET, socket.SOCK_DGRAM, ("8.8.8.8", 53), send=True)
    return _honest_rate(step, model_size, factor, warmup)
