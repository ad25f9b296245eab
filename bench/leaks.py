"""RSS of redis-server over 100,000 TENSORSET/TENSORGET/DEL cycles and 10,000 MODELEXECUTE calls.
Target: within +-5% after warm-up."""

from common import start_server

import leak_check  # noqa: E402


def main() -> None:
    server = start_server()
    try:
        points = leak_check.run(server.client(), cycles=100_000, executes=10_000, samples=10,
                                report=lambda phase, done, rss: print(f"{phase:>14} {done:>7} RSS {rss / 2**20:8.1f} MiB",
                                                                       flush=True))
        for phase in ("tensor cycles", "MODELEXECUTE"):
            print(f"{phase}: RSS change after warm-up {leak_check.growth(points, phase):+.1%}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
