"""100,000 generated AI.* commands (valid and mutated, DAGs included, mixed with DEL/RENAME/FLUSHALL)
against one server: counts replies by kind, crashes (must be 0) and unacceptable errors."""

from __future__ import annotations

import random
import sys
import time
from collections import Counter

from common import start_server

import fuzz_grammar  # noqa: E402  (tests/ is on sys.path through common)
from resp import Error, RawConnection  # noqa: E402

def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    server = start_server()
    kinds, bad, crashes = Counter(), [], 0
    start = time.perf_counter()
    try:
        with RawConnection(server.port) as raw:
            fuzz_grammar.setup(raw.call)
            grammar = fuzz_grammar.Grammar(random.Random(2026))
            for i in range(count):
                if i % 500 == 0 and raw.call("EXISTS", "m_onnx", "m_torch", "s") != 3:
                    fuzz_grammar.setup(raw.call)
                command = grammar.command()
                try:
                    reply = raw.call(*command)
                    assert raw.call("PING") == b"PONG"
                except (ConnectionError, OSError, AssertionError):
                    crashes += 1
                    break
                kinds["error" if isinstance(reply, Error) else "ok"] += 1
                if not fuzz_grammar.acceptable(reply):
                    bad.append((command[:6], reply))
                if (i + 1) % 10_000 == 0:
                    print(f"{i + 1} commands, {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        alive = server.alive()
        log = server.log()
        server.stop()
    print(f"commands: {sum(kinds.values())} ({kinds['ok']} replies, {kinds['error']} errors), crashes: {crashes}, "
          f"server alive: {alive}, unacceptable errors: {len(bad)}, tracebacks in log: {log.count('Traceback')}")
    for command, reply in bad[:10]:
        print("  ", command, reply)


if __name__ == "__main__":
    main()
