"""Hostile TorchScript and torch.export archives (tests/hostile_torch_fixtures.py) against a real server:
refused at store naming the offender, with the server up, PING answered within 50 ms throughout, other
users' keys intact and no target file read, written or created; kept as bytes but never built when they
arrive by RESTORE or in an RDB. Legit programs with dynamic shapes keep serving."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import redis

import hostile_fixtures as hf
import hostile_torch_fixtures as htf
import rdb_payloads as payloads
from hostile_watch import plant_bystanders, repeat_under_watch
from resp import Error
from server import wait_for

TORCH = 2  # the TORCH backend's code in RedisAI's RDB layout


@pytest.fixture(scope="module")
def targets():
    hf.ensure_target_files()
    yield
    assert hf.untouched(), "a hostile model read, changed or created a server file"


def _refused(reply, expected: str) -> None:
    assert isinstance(reply, Error), reply
    assert expected.encode() in reply, reply
    assert hf.SECRET_TEXT[:24] not in reply, "the refusal quotes the secret"


def _store_refused(server, raw, blob: bytes, expected: str) -> None:
    planted = plant_bystanders(server.port)
    reply = repeat_under_watch(server, lambda: raw.call("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", blob),
                               planted=planted)
    _refused(reply, expected)
    assert raw.call("EXISTS", "m") == 0 and hf.untouched()


@pytest.mark.parametrize("name,build,expected", htf.TORCHSCRIPT, ids=[case[0] for case in htf.TORCHSCRIPT])
def test_hostile_torchscript_is_refused_at_store(server, raw, targets, name, build, expected):
    _store_refused(server, raw, build(), expected)


@pytest.mark.parametrize("name,build,expected", htf.EXPORT, ids=[case[0] for case in htf.EXPORT])
def test_hostile_export_is_refused_at_store(server, raw, targets, name, build, expected):
    _store_refused(server, raw, build(), expected)


@pytest.mark.parametrize("source,expected", htf.SCRIPTS)
def test_hostile_script_is_refused_at_store(server, raw, targets, source, expected):
    planted = plant_bystanders(server.port)
    _refused(repeat_under_watch(server, lambda: raw.call("AI.SCRIPTSET", "s", "CPU", "SOURCE", source),
                                planted=planted), expected)
    _refused(raw.call("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", source), expected)
    assert raw.call("EXISTS", "s") == 0 and hf.untouched()


def _run(client, model: str, *arrays: np.ndarray) -> list[np.ndarray]:
    names = [f"in{i}" for i in range(len(arrays))]
    for key, array in zip(names, arrays):
        client.execute_command("AI.TENSORSET", key, "FLOAT", *array.shape, "BLOB", array.tobytes())
    assert client.execute_command("AI.MODELEXECUTE", model, "INPUTS", len(names), *names, "OUTPUTS", 1, "out") == b"OK"
    meta = client.execute_command("AI.TENSORGET", "out", "META", "BLOB")
    return [np.frombuffer(meta[5], np.float32).reshape(meta[3])]


def test_hostile_metadata_is_dropped_and_the_program_serves(r, targets):
    """Metadata torch.export.load would resolve or json.loads never reaches it: the program runs as before."""
    import torch

    import model_fixtures as mf

    assert r.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", htf.export_hostile_metadata()) == b"OK"
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with torch.no_grad():
        expected = mf.torch_exported_module()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(r, "m", x)[0], expected, rtol=1e-6, atol=1e-6)
    assert hf.untouched()


def test_a_program_with_derived_dynamic_shapes_serves(r):
    """Real size expressions (FloorDiv, Mod, a derived 2*k dimension), range constraints of derived symbols
    and guards pass the grammar; outputs are the module's for several sizes."""
    import torch

    assert r.execute_command("AI.MODELSTORE", "dyn", "TORCH", "CPU", "BLOB", htf.exported_dynamic()) == b"OK"
    rng = np.random.default_rng(3)
    module = htf.exported_dynamic_module()
    for rows in (2, 6, 10, 64):
        x = rng.standard_normal((rows, 3)).astype(np.float32)
        y = rng.standard_normal((rows, 2)).astype(np.float32)
        names = ["x", "y"]
        for key, array in zip(names, (x, y)):
            r.execute_command("AI.TENSORSET", key, "FLOAT", *array.shape, "BLOB", array.tobytes())
        assert r.execute_command("AI.MODELEXECUTE", "dyn", "INPUTS", 2, "x", "y", "OUTPUTS", 1, "out") == b"OK"
        meta = r.execute_command("AI.TENSORGET", "out", "META", "BLOB")
        with torch.no_grad():
            expected = module(torch.from_numpy(x), torch.from_numpy(y)).numpy()
        np.testing.assert_allclose(np.frombuffer(meta[5], np.float32).reshape(meta[3]), expected, rtol=1e-6)


RESTORED = [case for case in htf.TORCHSCRIPT + htf.EXPORT if case[0] in ("cast_class", "export_expr_shell")]


@pytest.mark.parametrize("name,build,expected", RESTORED, ids=[case[0] for case in RESTORED])
def test_hostile_archive_in_restore_and_rdb_is_kept_but_never_built(new_server, targets, name, build, expected):
    blob = build()
    server = new_server()
    client = server.client()
    client.set("unsaved", "intact")
    client.restore("evil", 0, payloads.model_v4(TORCH, blob))
    for reload in (False, True):
        if reload:
            client.execute_command("DEBUG", "RELOAD")  # a dump.rdb holding it
        client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
        with pytest.raises(redis.ResponseError) as refusal:
            client.execute_command("AI.MODELEXECUTE", "evil", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        assert expected in str(refusal.value)
        assert client.execute_command("AI.MODELGET", "evil", "BLOB") == blob
        wait_for(lambda: "model 'evil' could not be rebuilt" in server.log(), message="log line naming the key")
        assert server.alive() and client.get("unsaved") == b"intact" and client.exists("y") == 0
    assert hf.untouched()


# ---------------------------------------------------------------- the corpus is real, and the rules are torch's

def _bare_torch(code: str, tmp_path) -> subprocess.CompletedProcess:
    """`code` in a Python of its own with torch and no check of ours."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_unchecked_torch_loads_the_type_confusion(tmp_path):
    """torch alone loads the issue's archive and keeps its cast of a Small (one slot) to a Big (4,096):
    nothing in torch checks it, and a run reads slot 4,095 of a one-slot object (SIGSEGV, a garbage
    value or an error, by what lies past the object: not asserted, it is undefined)."""
    (tmp_path / "model.pt").write_bytes(htf.TORCHSCRIPT[0][1]())
    done = _bare_torch("""
        import torch
        module = torch.jit.load("model.pt")
        casts = [n for n in module.forward.graph.nodes() if n.kind() == "prim::unchecked_cast"]
        print([(str(n.inputsAt(0).type()), str(n.outputsAt(0).type())) for n in casts])
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "('__torch__.hostile_torch_classes.Small', '__torch__.hostile_torch_classes.Big')" in done.stdout


def test_unchecked_torch_export_load_runs_a_size_expression(tmp_path):
    """The issue's expression, loaded by torch.export.load alone, runs its Python (here: creates a file)."""
    import json
    import zipfile

    import model_fixtures as mf

    marker = tmp_path / "created"
    genuine = zipfile.ZipFile(io.BytesIO(mf.torch_exported()))
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as out:
        for item in genuine.infolist():
            data = genuine.read(item.filename)
            if item.filename.endswith("models/model.json"):
                program = json.loads(data)
                htf._size_of_x(program)["expr_str"] = f"{htf.SYMBOL} + 0*len(str(open('{marker}', 'w')))"
                data = json.dumps(program).encode()
            out.writestr(item, data)
    (tmp_path / "model.pt2").write_bytes(forged.getvalue())
    _bare_torch("""
        import torch
        torch.export.load("model.pt2")
    """, tmp_path)
    assert marker.exists()


def test_python_targets_are_the_ones_torch_serializes():
    """PYTHON_TARGETS is torch's serializer's `_SYM_OPS`, named as it writes them: a torch that adds one is
    noticed here (and refused until it is reviewed)."""
    from torch._export.serde import serialize

    from redisai.backends import torch_export_ops

    assert torch_export_ops.PYTHON_TARGETS == {f"{op.__module__}.{op.__name__}" for op in serialize._SYM_OPS}


def test_every_string_field_of_torchs_schema_has_a_grammar():
    """Every field of torch's export schema holding text (a string, a list of them, or a dict's keys) is
    given a grammar or dropped: a field a later torch adds is noticed here."""
    import dataclasses
    import typing

    from torch._export.serde import schema

    from redisai.backends import torch_export_ops

    def holds_text(kind) -> bool:
        if typing.get_origin(kind) is typing.Annotated:
            kind = typing.get_args(kind)[0]
        if kind is str:
            return True
        if typing.get_origin(kind) is dict:
            return True  # keys are strings
        return any(holds_text(k) for k in typing.get_args(kind) if k is not type(None)) \
            if typing.get_origin(kind) is not None and typing.get_origin(kind) is not dict else False

    seen, missing, stack = set(), [], [schema.ExportedProgram, schema.PayloadConfig]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for field in dataclasses.fields(cls):
            kind = typing.get_type_hints(cls, include_extras=True)[field.name]
            if holds_text(kind) and (cls.__name__, field.name) not in torch_export_ops.STRING_FIELDS \
                    and (cls.__name__, field.name) != ("PayloadMeta", "path_name"):
                missing.append(f"{cls.__name__}.{field.name}")
            for inner in typing.get_args(kind) + (kind,):
                for part in (inner, *typing.get_args(inner)):
                    for candidate in (part, *typing.get_args(part)):
                        if isinstance(candidate, str):
                            candidate = getattr(schema, candidate, None)
                        if isinstance(candidate, typing.ForwardRef):
                            candidate = getattr(schema, candidate.__forward_arg__, None)
                        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
                            stack.append(candidate)
    assert not missing, missing


def test_size_expressions_are_printed_again_by_the_grammar():
    """What the loader reads is the grammar's own print of what torch wrote."""
    from redisai.backends import torch_export_ops

    written = "Add(FloorDiv(Mul(Integer(2), Symbol('s77', integer=True, positive=True)), Integer(-1)), Float('1.5', precision=53))"
    assert torch_export_ops.expression(written, "here") == written
    assert torch_export_ops.expression(written.replace(", ", ",  "), "here") == written
    for hostile in ("Symbol('s0').__class__", "Integer(1) + Integer(2)", "Symbol(\"s0\")", "Integer(1)\nimport os",
                    "Max(Integer(1), )", "Symbol('s0', evaluate=Integer(1))", "true()"):
        with pytest.raises(Exception, match="not a size expression"):
            torch_export_ops.expression(hostile, "here")
