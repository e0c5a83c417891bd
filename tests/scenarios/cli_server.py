"""Runs `openstack` commands for the scenario tests, each in a fresh forked process.

Starting the `openstack` program costs one to three seconds of imports on a busy test machine,
and the scenarios type a few hundred commands. This process imports the CLI
once (``openstackclient.shell``, the module the `openstack` console script
runs) and then, per command, forks a child that sets the command's
environment, points stdin/stdout/stderr where it is told and calls
``openstackclient.shell.main(argv)`` — the same code, arguments, output and
exit code as the `openstack` program, without the start-up.

Protocol (JSON lines): the request ``{"argv": [...], "env": {...}, "stdin":
path or null, "stdout": path, "stderr": path}`` on stdin; the answers
``{"pid": n}`` at once and then ``{"rc": n}`` when the command has finished.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from typing import Any

from openstackclient import shell


def _warm_up() -> None:
    """Load the command plugins once so each child starts with them loaded."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            shell.main(["module", "list"])
        except SystemExit:
            pass


def _child(request: dict[str, Any]) -> None:
    rc = 1
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        # No controlling terminal: a prompt (getpass) reads the answer from stdin.
        os.setsid()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        stdin = request.get("stdin") or os.devnull
        for fd, path, mode in ((0, stdin, os.O_RDONLY), (1, request["stdout"], flags),
                               (2, request["stderr"], flags)):
            new = os.open(path, mode, 0o600)
            os.dup2(new, fd)
            os.close(new)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the child exits, never closes)
        sys.argv = ["openstack", *request["argv"]]
        rc = shell.main(request["argv"]) or 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        rc = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(rc)


def _reply(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> None:
    # Answers go to a private copy of stdout: the children's fd 1 is theirs.
    answers = os.fdopen(os.dup(1), "w")
    sys.argv = ["openstack"]  # the program name in usage and error messages
    _warm_up()
    while line := sys.stdin.readline():
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _reply(answers, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _reply(answers, {"rc": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
