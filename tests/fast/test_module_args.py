"""Module-argument errors say which argument and what rule it breaks (the load fails with this in the log)."""

import pytest

from redisai.config import parse_module_args
from redisai.errors import RedisAIError


@pytest.mark.parametrize("args,expected", [
    (("FOO", "1"), "error processing argument: FOO 1: unknown argument FOO (known: BACKENDSPATH,"),
    (("MODEL_EXECUTION_TIMEOUT", "10"), "MODEL_EXECUTION_TIMEOUT 10: MODEL_EXECUTION_TIMEOUT must be at least 1000 (ms)"),
    (("THREADS_PER_QUEUE", "many"), "THREADS_PER_QUEUE many: THREADS_PER_QUEUE must be an integer"),
    (("THREADS_PER_QUEUE",), "THREADS_PER_QUEUE: module arguments are KEY VALUE pairs, and this one has no value"),
    (("SANDBOX", "maybe"), "SANDBOX maybe: SANDBOX must be ON or OFF"),
    (("SCRIPT_UNDECLARED_KEYS", "x"), "SCRIPT_UNDECLARED_KEYS must be DENY or ALLOW"),
    (("BACKEND_MEMORY_LIMIT", "-1"), "BACKEND_MEMORY_LIMIT must be at least 0 (MB)"),
])
def test_an_error_names_the_argument_and_its_rule(args, expected):
    with pytest.raises(RedisAIError) as error:
        parse_module_args([a.encode() for a in args], "/opt/redisai", "/opt/redisai/.venv")
    assert expected in str(error.value)


def test_names_are_case_insensitive_and_valid_values_load():
    config = parse_module_args([b"threads_per_queue", b"2", b"sandbox", b"off"], "/m", "/v")
    assert config.threads_per_queue == 2 and config.sandbox == "OFF"
