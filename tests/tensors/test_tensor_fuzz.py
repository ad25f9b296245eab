"""Random argument lists to AI.TENSORSET / AI.TENSORGET: every reply is a value or a clean error,
and the server keeps answering."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resp import Error

KEYWORDS = [b"BLOB", b"VALUES", b"META", b"blob", b"values", b"meta"]
TYPES = [b"FLOAT", b"DOUBLE", b"INT8", b"INT16", b"INT32", b"INT64", b"UINT8", b"UINT16", b"BOOL", b"STRING",
         b"float", b"UINT32", b"FLOAT16"]
token = st.one_of(
    st.sampled_from(KEYWORDS + TYPES),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.integers(min_value=0, max_value=6).map(lambda n: str(n).encode()),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.binary(max_size=40),
    st.sampled_from([b"k", b"other", b"str"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from([b"AI.TENSORSET", b"AI.TENSORGET"]), args=st.lists(token, max_size=12))
def test_random_tensor_commands_never_break_the_server(raw, command, args):
    raw.call("SET", "str", "x")
    reply = raw.call(command, *args)
    if isinstance(reply, Error):
        assert reply.startswith((b"ERR ", b"WRONGTYPE ")), reply
        assert b"Traceback" not in reply and b"internal error" not in reply, reply
    assert raw.call("PING") == b"PONG"
