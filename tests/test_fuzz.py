"""A short fuzz run over every AI.* command, DAGs included, mixed with DEL/RENAME/FLUSHALL
(`bench/fuzz.py` runs 100,000 commands)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_grammar
from resp import RawConnection


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_generated_commands_never_break_the_server(server, rng):
    with RawConnection(server.port) as raw:
        if raw.call("EXISTS", "m_onnx", "m_torch", "s") != 3:
            fuzz_grammar.setup(raw.call)
        grammar = fuzz_grammar.Grammar(rng)
        for _ in range(10):
            command = grammar.command()
            reply = raw.call(*command)
            assert fuzz_grammar.acceptable(reply), (command, reply)
            assert raw.call("PING") == b"PONG", command
    assert "Traceback" not in server.log()
