"""VoidRunner in-job interface: talk to the service from a running job step.

Dependency-free (standard library only). Inside a job, `import voidrunner_job`:

    import voidrunner_job as vr
    vr.register_secret("token-from-a-vault")   # masked from now on, everywhere
    vr.set_output("version", "1.2.3")          # read by later steps and the job result
    print(vr.get_output("version"))
    vr.attach_artifact("src/build/app")        # path relative to /job

In a workflow (see docs/JOBS.md, "Follow-up jobs"):

    vr.trigger_job("deploy", env={"TARGET": "eu"}, depends_on=["build"])
    vr.trigger_jobs([{"job_name": "a"}, {"job_name": "b"}])
    vr.is_job_running("deploy"); vr.get_job_result("deploy")
    vr.write_triggers([{"job_name": "notify"}])  # applied when the job ends
    vr.get_output("build.version")             # outputs of finished nodes

The socket path and the job token come from VOIDRUNNER_JOB_SOCKET and VOIDRUNNER_JOB_TOKEN.
Wire format: 4-byte big-endian length + JSON, both ways.
"""

import json
import os
import socket
import struct
import uuid

__all__ = ["register_secret", "set_output", "get_output", "outputs", "attach_artifact",
           "ping", "trigger_job", "trigger_jobs", "is_job_running", "get_job_result",
           "write_triggers", "workflow", "JobError"]


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


def _job_entry(name, env=None, depends_on=None, condition=None, job=None, job_file=None):
    entry = {"job_name": name}
    if env:
        entry["env"] = {str(k): str(v) for k, v in env.items()}
    if depends_on:
        entry["depends_on"] = list(depends_on)
    if condition is not None:
        entry["condition"] = condition
    if job is not None:
        entry["job"] = job
    if job_file is not None:
        entry["job_file"] = job_file
    return entry


def _payload(jobs, operation_id):
    return {"type": "trigger_job", "operation_id": operation_id or str(uuid.uuid4()),
            "trigger_type": "runnerlib", "jobs": list(jobs)}


def trigger_jobs(jobs, operation_id=None):
    """Adds follow-up jobs to this job's workflow now. `jobs` are entries like
    {"job_name": …, "env": {…}, "depends_on": […], "condition": …, "job": {…} | "job_file": …}.
    The same operation_id again adds nothing (answer["duplicate"] is then True).
    Answers {"nodes": [...], "duplicate": bool}."""
    answer = _call("trigger_jobs", payload=_payload(jobs, operation_id))
    return {"nodes": answer["nodes"], "duplicate": answer["duplicate"]}


def trigger_job(name, env=None, depends_on=None, condition=None, job=None, job_file=None,
                operation_id=None):
    """Adds one follow-up job (see trigger_jobs)."""
    return trigger_jobs([_job_entry(name, env, depends_on, condition, job, job_file)],
                        operation_id)


def is_job_running(name):
    """True while the workflow's node `name` has not finished (pending, queued or running)."""
    return _call("is_job_running", job_name=name)["running"]


def get_job_result(name):
    """The node `name` as {"status", "job_id", "outputs"}, or None when there is none."""
    answer = _call("get_job_result", job_name=name)
    if not answer["found"]:
        return None
    return {"status": answer["status"], "job_id": answer["job_id"], "outputs": answer["outputs"]}


def write_triggers(jobs, operation_id=None, path="/job/triggers.json"):
    """Writes follow-up jobs to the trigger file, applied when the job ends; appends to the
    jobs of an existing file (keeping its operation id). Entries may be names or dicts."""
    jobs = [_job_entry(j) if isinstance(j, str) else dict(j) for j in jobs]
    payload = None
    if os.path.exists(path):
        with open(path) as f:
            payload = json.load(f)
        payload.setdefault("jobs", []).extend(jobs)
    else:
        payload = _payload(jobs, operation_id)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f)
    os.replace(tmp, path)
    return payload


def workflow():
    """This job's workflow facts ({"workflow_id", "node", "vars", "outputs", "trusted"}) from
    /job/workflow.json, or None outside a workflow."""
    try:
        with open("/job/workflow.json") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
