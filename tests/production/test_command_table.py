"""Every AI.* command is registered with its flags, and Redis sees exactly the keys it touches
(what ACL and Cluster check)."""

import pytest

NAMES = ["ai.tensorset", "ai.tensorget", "ai.modelset", "ai.modelstore", "ai.modelget", "ai.modeldel",
         "ai.modelrun", "ai.modelexecute", "ai._modelscan", "ai.scriptset", "ai.scriptstore", "ai.scriptget",
         "ai.scriptdel", "ai.scriptrun", "ai.scriptexecute", "ai._scriptscan", "ai.info", "ai.config",
         "ai.dagrun", "ai.dagexecute", "ai.dagrun_ro", "ai.dagexecute_ro"]


def test_every_command_is_registered_with_its_flags(raw):
    replies = raw.call("COMMAND", "INFO", *NAMES)
    flags = {reply[0].decode(): {f.decode() for f in reply[2]} for reply in replies}
    assert set(flags) == set(NAMES)
    for name in ("ai.tensorset", "ai.modelstore", "ai.modelexecute", "ai.scriptexecute", "ai.dagexecute"):
        assert {"write", "denyoom"} <= flags[name], name
    for name in ("ai.tensorget", "ai.modelget", "ai.scriptget", "ai.info", "ai.dagexecute_ro", "ai.dagrun_ro"):
        assert "readonly" in flags[name] and "write" not in flags[name], name
    for name in ("ai.modelexecute", "ai.scriptexecute", "ai.dagexecute", "ai.modelrun", "ai.scriptrun"):
        assert "movablekeys" in flags[name], name


KEYS = [
    (("AI.TENSORSET", "t", "FLOAT", 1), ["t"]),
    (("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c", "TIMEOUT", 5), ["m", "a", "b", "c"]),
    (("AI.MODELRUN", "m", "TIMEOUT", 5, "INPUTS", "a", "b", "OUTPUTS", "c"), ["m", "a", "b", "c"]),
    (("AI.SCRIPTEXECUTE", "s", "f", "KEYS", 1, "k", "INPUTS", 1, "a", "ARGS", 2, "x", "y", "OUTPUTS", 1, "o"),
     ["s", "k", "a", "o"]),
    (("AI.SCRIPTRUN", "s", "f", "INPUTS", "a", "$", "b", "OUTPUTS", "o"), ["s", "a", "b", "o"]),
    (("AI.DAGEXECUTE", "LOAD", 2, "a", "b", "PERSIST", 1, "p", "ROUTING", "r", "|>",
      "AI.MODELEXECUTE", "m", "INPUTS", 1, "a", "OUTPUTS", 1, "p", "|>",
      "AI.SCRIPTEXECUTE", "s", "f", "INPUTS", 1, "p", "OUTPUTS", 1, "q"), ["a", "b", "p", "r", "m", "s"]),
    (("AI.DAGRUN_RO", "LOAD", 1, "a", "|>", "AI.TENSORGET", "a"), ["a"]),
]


@pytest.mark.parametrize("command, keys", KEYS, ids=[k[0][0] for k in KEYS])
def test_key_positions(raw, command, keys):
    assert [k.decode() for k in raw.call("COMMAND", "GETKEYS", *command)] == keys
