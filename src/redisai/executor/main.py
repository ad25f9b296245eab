"""The executor process: where one device-queue worker's models load and run, apart from redis-server.

    python -m redisai.executor --socket FD --parent PID --backends ONNX,TORCH --memory BYTES ...

Started by its worker (execution/executors.py) as a fresh process of the environment's Python, it:
1. asks the kernel to kill it when the server goes (PR_SET_PDEATHSIG) and checks the server is still there;
2. begins its sandbox while it is one thread (sandbox.begin: memory cgroup, capabilities, no_new_privs,
   Landlock), then imports the frameworks named and warms what they load lazily;
3. closes the sandbox (sandbox.close: rlimits, seccomp) and says READY with what holds;
4. serves the worker's frames (protocol.py) one request at a time until the socket closes.
Everything a client stored (model bytes, script source) reaches a framework only here, after step 3.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server went before the line above took effect
        os._exit(0)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="redisai.executor")
    parser.add_argument("--socket", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--backends", default="")
    parser.add_argument("--budget", type=int, default=0, help="BACKEND_MEMORY_LIMIT in bytes (0: none)")
    parser.add_argument("--budget-source", default="none")
    parser.add_argument("--native-dir", default="")
    parser.add_argument("--intra", type=int, default=0)
    parser.add_argument("--inter", type=int, default=0)
    parser.add_argument("--cgroup", default="")
    parser.add_argument("--sandbox", choices=("on", "off"), default="on")
    parser.add_argument("--exclude", action="append", default=[], help="never readable (the server's directory)")
    parser.add_argument("--extra-readable", action="append", default=[], help="readable beyond the environment")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    _die_with_parent(args.parent)
    from . import sandbox

    # Test-only: a library name that does not exist stands for a machine without libseccomp.
    sandbox.LIBSECCOMP = os.environ.get("REDISAI_TEST_LIBSECCOMP", sandbox.LIBSECCOMP)
    if args.sandbox == "on":
        sandbox.begin(sandbox.default_readable(args.exclude) + args.extra_readable, args.cgroup or None)
    # From here on, imports happen under Landlock (where the kernel has it).
    from .. import backends
    from ..backends import memory
    from . import protocol, serve

    memory.budget.limit_bytes = args.budget
    memory.budget.source = args.budget_source
    memory.budget.native_dir = args.native_dir
    names = [name for name in args.backends.split(",") if name]
    errors = {}
    for name in names:
        try:
            backends.get(name)
        except backends.BackendError as e:
            errors[name] = str(e)
    serve.warm([name for name in names if name not in errors], args.intra, args.inter)
    serve.open_status()
    # The bound: what the executor holds once its frameworks are imported, plus the budget its models may take.
    layers = sandbox.close(sandbox.data_size() + args.budget if args.budget else 0) if args.sandbox == "on" else None
    channel = protocol.Channel(socket.socket(fileno=args.socket))
    executor = serve.Executor(channel, args.intra, args.inter)
    executor.ready(names, errors, layers)
    try:
        executor.serve()
    except protocol.PeerGone:
        pass
    return 0

