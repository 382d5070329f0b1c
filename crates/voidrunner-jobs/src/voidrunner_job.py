"""VoidRunner in-job interface: talk to the service from a running job step.

Dependency-free (standard library only). Inside a job, `import voidrunner_job`:

    import voidrunner_job as vr
    vr.register_secret("token-from-a-vault")   # masked from now on, everywhere
    vr.set_output("version", "1.2.3")          # read by later steps and the job result
    print(vr.get_output("version"))
    vr.attach_artifact("src/build/app")        # path relative to /job

The socket path and the job token come from VOIDRUNNER_JOB_SOCKET and VOIDRUNNER_JOB_TOKEN.
Wire format: 4-byte big-endian length + JSON, both ways.
"""

import json
import os
import socket
import struct

__all__ = ["register_secret", "set_output", "get_output", "outputs", "attach_artifact",
           "ping", "JobError"]


class JobError(RuntimeError):
    """The service refused a request (the message says why)."""


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise JobError("the job socket closed")
        buf += chunk
    return buf


def _call(op, **fields):
    path = os.environ.get("VOIDRUNNER_JOB_SOCKET", "/job/.voidrunner/control.sock")
    token = os.environ.get("VOIDRUNNER_JOB_TOKEN", "")
    body = dict(fields, op=op, token=token)
    data = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(struct.pack(">I", len(data)) + data)
        (length,) = struct.unpack(">I", _recv_exact(sock, 4))
        answer = json.loads(_recv_exact(sock, length))
    if not answer.get("ok"):
        raise JobError(answer.get("error", "request failed"))
    return answer


def ping():
    """True when the service answers."""
    return _call("ping")["ok"]


def register_secret(*values):
    """Masks each value (at least 4 bytes) in everything stored or streamed from now on."""
    return _call("register_secret", values=[str(v) for v in values])["registered"]


def set_output(key, value):
    """Records an output (key: [A-Za-z0-9_.-]{1,128}, value: a string up to 64 KiB)."""
    _call("set_output", key=key, value=str(value))


def get_output(key):
    """An output recorded earlier in this job, or None."""
    return _call("get_output", key=key)["value"]


def outputs():
    """Every output recorded so far."""
    return _call("outputs")["outputs"]


def attach_artifact(path):
    """Keeps a file (relative to /job) as an artifact of the job."""
    return _call("attach_artifact", path=path)["path"]
