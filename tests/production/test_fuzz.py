"""A short fuzz run over every AI.* command, DAGs included, mixed with DEL/RENAME/FLUSHALL
(`bench/fuzz.py` runs 100,000 commands)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_grammar
from resp import RawConnection

DEFAULT_MODEL_CHUNK_SIZE = 511 * 1024 * 1024


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_generated_commands_never_break_the_server(server, rng):
    with RawConnection(server.port) as raw:
        if raw.call("EXISTS", "m_onnx", "m_torch", "s") != 3:
            fuzz_grammar.setup(raw.call)
        grammar = fuzz_grammar.Grammar(rng)
        try:
            for _ in range(10):
                command = grammar.command()
                reply = raw.call(*command)
                assert fuzz_grammar.acceptable(reply), (command, reply)
                assert raw.call("PING") == b"PONG", command
        finally:  # the server is shared: the next test on it expects the default chunk size
            raw.call("AI.CONFIG", "MODEL_CHUNK_SIZE", DEFAULT_MODEL_CHUNK_SIZE)
    assert "Traceback" not in server.log()
