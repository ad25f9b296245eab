"""Commands from RedisAI's grammar, valid and mutated, for the fuzz test and bench/fuzz.py.

Driven by a `random.Random`, so hypothesis (through `st.randoms()`) and a plain loop share it.
"""

from __future__ import annotations

import random

import model_fixtures as mf

TYPES = [b"FLOAT", b"DOUBLE", b"INT8", b"INT16", b"INT32", b"INT64", b"UINT8", b"UINT16", b"BOOL", b"STRING"]
SIZES = {b"FLOAT": 4, b"DOUBLE": 8, b"INT8": 1, b"INT16": 2, b"INT32": 4, b"INT64": 8, b"UINT8": 1, b"UINT16": 2,
         b"BOOL": 1, b"STRING": 2}
TENSORS = [b"t1", b"t2", b"t3", b"{t}4", b"str", b"missing", b"m_onnx", b"s"]
SCRIPT = ("def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] + 1.0\n\n"
          "def g(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0], tensors[-1]\n")
# RedisAI's own error texts that have no ERR prefix.
BARE_ERRORS = (b"Number of keys given as", b"Invalid argument: ", b"Unsupported command within DAG",
               b"Deprecated AI.", b"AI.MODELEXECUTE cannot", b"AI.SCRIPTEXECUTE cannot")


def setup(call) -> None:
    """Keys the generated commands refer to; `call(*args)` sends one command."""
    call("AI.TENSORSET", "t1", "FLOAT", 2, "VALUES", 1, 2)
    call("AI.TENSORSET", "t2", "FLOAT", 2, "VALUES", 3, 4)
    call("AI.TENSORSET", "t3", "INT32", 1, 2, "VALUES", 5, 6)
    call("SET", "str", "text")
    call("AI.MODELSTORE", "m_onnx", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    call("AI.MODELSTORE", "m_torch", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    call("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 2, "f", "g", "SOURCE", SCRIPT)


class Grammar:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, items):
        return self.rng.choice(items)

    def number(self) -> bytes:
        return str(self.pick([0, 1, 2, 3, -1, 2**31, 2**63, 2**64 + 5, 10**30, self.rng.randint(-9, 9)])).encode()

    def junk(self) -> bytes:
        return self.pick([b"", b"\xff\xfe\x00", b"|>", b"BLOB", b"VALUES", b"INPUTS", b"OUTPUTS", b"x" * 1000,
                          self.rng.randbytes(self.rng.randint(0, 24)), b"nan", b"-inf", b"1e999", b"$"])

    def token(self) -> bytes:
        return self.pick([self.number, self.junk, lambda: self.pick(TENSORS)])()

    def tensorset(self) -> list:
        dtype = self.pick(TYPES)
        shape = [self.rng.randint(1, 3) for _ in range(self.rng.randint(0, 3))]
        count = 1
        for d in shape:
            count *= d
        args = [b"AI.TENSORSET", self.pick(TENSORS), dtype, *(str(d).encode() for d in shape)]
        form = self.rng.random()
        if form < 0.4:
            args += [b"VALUES"] + [str(self.rng.randint(0, 1)).encode() for _ in range(count)]
        elif form < 0.8:
            args += [b"BLOB", self.rng.randbytes(count * SIZES[dtype])]
        return args

    def tensorget(self) -> list:
        return [b"AI.TENSORGET", self.pick(TENSORS)] + self.rng.sample([b"META", b"BLOB", b"VALUES"], self.rng.randint(0, 2))

    def modelexecute(self) -> list:
        model = self.pick([b"m_onnx", b"m_torch", b"t1", b"missing"])
        inputs = [self.pick(TENSORS) for _ in range(self.rng.randint(1, 3))]
        args = [b"AI.MODELEXECUTE", model, b"INPUTS", str(len(inputs)).encode(), *inputs, b"OUTPUTS", b"1",
                self.pick([b"out", b"t1", b"str"])]
        if self.rng.random() < 0.2:
            args += [b"TIMEOUT", self.number()]
        return args

    def modelrun(self) -> list:
        return [b"AI.MODELRUN", self.pick([b"m_onnx", b"m_torch"]), b"INPUTS", self.pick(TENSORS), self.pick(TENSORS),
                b"OUTPUTS", b"out"]

    def modelstore(self) -> list:
        backend = self.pick([b"ONNX", b"TORCH", b"TF", b"TFLITE", b"CAFFE"])
        blob = self.pick([mf.onnx_mul(), mf.torch_add_mul(), self.rng.randbytes(64), b""])
        args = [self.pick([b"AI.MODELSTORE", b"AI.MODELSET"]), b"m_new", backend, self.pick([b"CPU", b"GPU", b"CPU:1", b"xpu"])]
        if self.rng.random() < 0.3:
            args += [b"BATCHSIZE", self.number()]
        if backend == b"TF":
            args += [b"INPUTS", b"2", b"a", b"b", b"OUTPUTS", b"1", b"c"]
        return args + [b"BLOB", blob]

    def scriptexecute(self) -> list:
        scopes = [[b"INPUTS", b"1", self.pick(TENSORS)], [b"KEYS", b"1", b"k"], [b"ARGS", b"2", b"a", b"b"],
                  [b"OUTPUTS", b"1", b"sout"]]
        self.rng.shuffle(scopes)
        return [b"AI.SCRIPTEXECUTE", self.pick([b"s", b"missing", b"t1"]), self.pick([b"f", b"g", b"h"])] + \
            [t for scope in scopes[: self.rng.randint(0, 4)] for t in scope]

    def scriptstore(self) -> list:
        source = self.pick([SCRIPT.encode(), b"def f(:", b"import os\n", self.rng.randbytes(30)])
        return [b"AI.SCRIPTSTORE", b"s_new", b"CPU", b"ENTRY_POINTS", b"1", b"f", b"SOURCE", source]

    def dag(self) -> list:
        head = [self.pick([b"AI.DAGEXECUTE", b"AI.DAGEXECUTE_RO", b"AI.DAGRUN", b"AI.DAGRUN_RO"])]
        if self.rng.random() < 0.7:
            head += [b"LOAD", b"1", self.pick(TENSORS)]
        if self.rng.random() < 0.4:
            head += [b"PERSIST", b"1", self.pick([b"t1", b"p"])]
        if self.rng.random() < 0.2:
            head += [b"TIMEOUT", self.number()]
        ops = []
        for _ in range(self.rng.randint(0, 4)):
            op = self.pick([self.tensorset, self.tensorget, self.modelexecute, self.modelrun, self.scriptexecute])()
            ops += [b"|>"] + op
        return head + ops

    def other(self) -> list:
        return self.pick([
            [b"AI.MODELGET", self.pick(TENSORS + [b"m_torch"]), self.pick([b"META", b"BLOB", b"X"])],
            [b"AI.MODELDEL", self.pick([b"m_new", b"t1", b"missing"])],
            [b"AI.SCRIPTGET", self.pick([b"s", b"t1"])],
            [b"AI.SCRIPTDEL", self.pick([b"s_new", b"missing"])],
            [b"AI.INFO", self.pick([b"m_onnx", b"s", b"t1"]), self.pick([b"RESETSTAT", b"X"])],
            [b"AI.CONFIG", self.pick([b"GET", b"MODEL_CHUNK_SIZE", b"BACKENDSPATH"]), self.token()],
            [b"AI._MODELSCAN"], [b"AI._SCRIPTSCAN"],
            [b"DEL", self.pick(TENSORS)], [b"RENAME", self.pick(TENSORS), self.pick(TENSORS)], [b"FLUSHALL"],
        ])

    def mutate(self, args: list) -> list:
        args = list(args)
        for _ in range(self.rng.randint(1, 3)):
            if len(args) < 2:
                break
            i = self.rng.randrange(1, len(args))
            kind = self.rng.random()
            if kind < 0.25:
                del args[i]
            elif kind < 0.45:
                args.insert(i, args[i])
            elif kind < 0.6:
                j = self.rng.randrange(1, len(args))
                args[i], args[j] = args[j], args[i]
            elif kind < 0.75:
                args = args[:i]
            else:
                args[i] = self.token()
        return args

    def command(self) -> list:
        make = self.pick([self.tensorset, self.tensorget, self.modelexecute, self.modelrun, self.modelstore,
                          self.scriptexecute, self.scriptstore, self.dag, self.dag, self.other])
        args = make()
        if args[0] == b"AI.CONFIG" and args[1] == b"MODEL_CHUNK_SIZE" and not args[2].isdigit():
            args[2] = b"1000000"
        if args[0] == b"AI.CONFIG" and args[1] == b"MODEL_CHUNK_SIZE" and int(args[2] or 0) < 1000:
            args[2] = b"1000"  # tiny chunks only make replies slow
        return self.mutate(args) if self.rng.random() < 0.6 else args


def acceptable(reply) -> bool:
    """A reply is fine unless it is an error that is not one of Redis's or RedisAI's own."""
    if not isinstance(reply, bytes) or type(reply).__name__ != "Error":
        return True
    if b"internal error" in reply or b"Traceback" in reply:
        return False
    return reply.startswith((b"ERR ", b"WRONGTYPE ", b"NOPERM ")) or reply.startswith(BARE_ERRORS)
