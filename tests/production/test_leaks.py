"""No leaks: RSS stays flat over tensor cycles and model runs after a warm-up (bench/leaks.py runs
100,000 cycles and 10,000 runs)."""

import leak_check


def test_rss_stays_flat(new_server):
    server = new_server()
    points = leak_check.run(server.client(), cycles=20_000, executes=2_000, samples=4)
    for phase in ("tensor cycles", "MODELEXECUTE"):
        assert leak_check.growth(points, phase) < 0.10, points
