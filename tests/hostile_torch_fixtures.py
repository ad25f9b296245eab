"""Hostile TorchScript and torch.export archives beyond hostile_fixtures.py's: genuine archives, built with
torch and cached like model_fixtures', then edited by hand the way an attacker would edit them.

- `TORCHSCRIPT`: type confusion (`unchecked_cast` of one class, tuple or list to another, through Any,
  Optional, Union, in `__setstate__`), the release-unchecked operators, sparse tensors, a zip bomb;
- `EXPORT`: every kind of field of a torch.export program's JSON that torch.export.load interprets
  (expressions, guards, targets, names, treespecs, weights configs, ...), each given code that creates
  hostile_fixtures.CREATED or runs a shell command.

Each case is (name, build, what the refusal must name).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

from hostile_fixtures import CREATED
from model_fixtures import _cached

_VERSION = 1
BIG_ATTRIBUTES = 4096
# Python that creates the target file, as an attacker would put it in a text field.
CREATE = f"open('{CREATED}', 'w')"
SHELL = f"__import__('os').system('touch {CREATED}')"

# The genuine module: classes Small (one attribute) and Big (4,096), and a forward that refines an
# Optional[Big] as TorchScript does (`unchecked_cast` under `is not None`), so that the archive holds
# both classes and a genuine cast to edit.
_CLASSES = '''
from typing import Any, List, Optional, Tuple, Union

import torch


@torch.jit.script
class Small:
    def __init__(self):
        self.a0 = 1


@torch.jit.script
class Big:
    def __init__(self):
{big_attributes}


class Casting(torch.nn.Module):
    maybe: Optional[Big]
    small_or_none: Optional[Small]

    def __init__(self):
        super().__init__()
        self.small = Small()
        self.maybe = None
        self.small_or_none = Small()

    def forward(self, x):
        b = self.maybe
        if b is not None:
            return x + b.a{last}
        return x + self.small.a0


class CastingWithState(Casting):
    def __init__(self):
        super().__init__()
        self.n = 1

    def forward(self, x):
        return x + self.n

    @torch.jit.export
    def __getstate__(self) -> Tuple[int, bool]:
        return (self.n, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[int, bool]) -> None:
        self.n = state[0]
        self.training = state[1]
        self.small = Small()
        self.maybe = None
        self.small_or_none = Small()
'''


def _classes_module():
    """The module above, written to a file (TorchScript compiles classes from their source file)."""
    if "hostile_torch_classes" in sys.modules:
        return sys.modules["hostile_torch_classes"]
    attributes = "".join(f"        self.a{i} = {i}\n" for i in range(BIG_ATTRIBUTES))
    directory = Path(tempfile.mkdtemp(prefix="redisai-hostile-torch-"))
    path = directory / "hostile_torch_classes.py"
    path.write_text(_CLASSES.format(big_attributes=attributes, last=BIG_ATTRIBUTES - 1))
    spec = importlib.util.spec_from_file_location("hostile_torch_classes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostile_torch_classes"] = module
    spec.loader.exec_module(module)
    return module


def _scripted(module) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def casting_genuine() -> bytes:
    return _cached("hostile_torch_casting_genuine", lambda: _scripted(_classes_module().Casting()), version=_VERSION)


def casting_with_state_genuine() -> bytes:
    return _cached("hostile_torch_casting_with_state_genuine",
                   lambda: _scripted(_classes_module().CastingWithState()), version=_VERSION)


_BIG = "__torch__.hostile_torch_classes.Big"
_SMALL = "__torch__.hostile_torch_classes.Small"


def _edited_source(genuine: bytes, edit) -> bytes:
    """`genuine` with `edit(source) -> source` applied to the source file of the classes."""
    archive = zipfile.ZipFile(io.BytesIO(genuine))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as forged:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename.endswith("hostile_torch_classes.py"):
                edited = edit(data.decode())
                assert edited != data.decode(), "the edit changed nothing"
                data = edited.encode()
            forged.writestr(item, data)
    return out.getvalue()


def _forward(body: str, genuine=casting_genuine):
    """The genuine archive with Casting.forward's body replaced by `body` (TorchScript's printed source,
    indented by 4)."""
    def edit(source: str) -> str:
        head = source.index("  def forward(")
        start = source.index(":\n", source.index("-> Tensor", head)) + 2
        end = min(i for i in (source.find("\n  def ", start), source.find("\nclass ", start)) if i >= 0) + 1
        return source[:start] + "".join(f"    {line}\n" for line in body.strip("\n").splitlines()) + source[end:]
    return lambda: _edited_source(genuine(), edit)


def _hostile(name: str, build) -> bytes:
    return _cached(f"hostile_torch2_{name}", build, version=_VERSION)


def _case(name: str, build, expected: str):
    return (name, lambda: _hostile(name, build), expected)


TORCHSCRIPT = [
    # The model: a Small object read as a Big (slot 4,095 of a 1-slot object).
    _case("cast_class", _forward(f"s = self.small\nb = unchecked_cast({_BIG}, s)\nreturn torch.add(x, b.a4095)"),
          "prim::unchecked_cast"),
    _case("cast_through_any", _forward(
        f"a = annotate(Any, self.small)\n_0 = isinstance(a, {_SMALL})\nif _0:\n"
        f"  b = unchecked_cast({_BIG}, a)\n  _1 = torch.add(x, b.a4095)\nelse:\n  _1 = x\nreturn _1"),
        "prim::unchecked_cast"),
    _case("cast_any_else_branch", _forward(
        f"a = annotate(Any, self.small)\n_0 = isinstance(a, Tensor)\nif _0:\n  _1 = x\nelse:\n"
        f"  b = unchecked_cast({_BIG}, a)\n  _1 = torch.add(x, b.a4095)\nreturn _1"),
        "prim::unchecked_cast"),
    _case("cast_through_optional", _forward(
        f"s = self.small_or_none\nif torch.__isnot__(s, None):\n  b = unchecked_cast({_BIG}, s)\n"
        f"  _0 = torch.add(x, b.a4095)\nelse:\n  _0 = x\nreturn _0"),
        "prim::unchecked_cast"),
    _case("cast_union_wrong_branch", _forward(
        f"u = annotate(Union[{_BIG}, {_SMALL}], self.small)\n_0 = isinstance(u, {_BIG})\nif _0:\n  _1 = x\nelse:\n"
        f"  b = unchecked_cast({_BIG}, u)\n  _1 = torch.add(x, b.a4095)\nreturn _1"),
        "prim::unchecked_cast"),
    _case("cast_tuple_arity", _forward(
        "t = (x,)\nt0 = unchecked_cast(Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], t)\n"
        "_0, _1, _2, _3, _4, _5, _6, _7 = t0\nreturn _7"),
        "prim::unchecked_cast"),
    _case("cast_list", _forward("l = [1, 2]\nl0 = unchecked_cast(List[Tensor], l)\nreturn torch.add(x, l0[1])"),
          "prim::unchecked_cast"),
    _case("cast_in_setstate", lambda: _edited_source(casting_with_state_genuine(), lambda source: source.replace(
        "    self.n = (state)[0]\n",
        f"    s = self.small_or_none\n    if torch.__isnot__(s, None):\n      b = unchecked_cast({_BIG}, s)\n"
        f"      self.n = b.a4095\n    else:\n      self.n = (state)[0]\n", 1)), "method __setstate__"),
    _case("unwrap_optional", _forward(
        "b = ops.prim.unchecked_unwrap_optional(self.maybe)\nreturn torch.add(x, b.a4095)"),
        "prim::unchecked_unwrap_optional"),
    _case("sparse_out_of_bounds", _forward(
        "i = torch.tensor([[1000000000]])\nv = torch.ones([1])\n"
        "return torch.add(x, torch.sum(torch.to_dense(torch.sparse_coo_tensor(i, v, [2]))))"),
        "aten::sparse_coo_tensor"),
    _case("sparse_indices_written", _forward(
        "s = torch.to_sparse(torch.ones([4]))\n_0 = torch.fill_(torch._indices(s), 1000000000)\n"
        "return torch.add(x, torch.sum(torch.to_dense(s)))"),
        "aten::to_sparse"),
]


def source_bomb() -> bytes:
    """A ~25 KB archive whose source entry unpacks to 24 MB (each byte costs `ast` ~450 bytes)."""
    def build():
        genuine = zipfile.ZipFile(io.BytesIO(casting_genuine()))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as forged:
            for item in genuine.infolist():
                data = genuine.read(item.filename)
                if item.filename.endswith("hostile_torch_classes.py"):
                    data += b"\n" + b"x = 1\n" * (4 << 20)
                forged.writestr(item.filename, data)
        return out.getvalue()
    return _hostile("source_bomb", build)


TORCHSCRIPT.append(("source_bomb", source_bomb, "too large to check"))

SCRIPTS = [
    ("def f(x):\n    i = torch.tensor([[1000000000]])\n    s = torch.sparse_coo_tensor(i, torch.ones(1), [2])\n"
     "    return x + s.to_dense().sum()\n", "aten::sparse_coo_tensor"),
    ("def f(x):\n    s = x.to_sparse()\n    s._indices().fill_(1000000000)\n    return s.to_dense()\n", "aten::to_sparse"),
]


# --------------------------------------------------------------------------
# torch.export
# --------------------------------------------------------------------------

def exported_dynamic() -> bytes:
    """A legit torch.export program whose shapes are dynamic the hard way: a derived dimension (2 * k), a
    reshape by a size computed from it, a concatenation of two dynamic inputs; torch writes size
    expressions (FloorDiv, Mod, Mul), range constraints of derived symbols and guards for it."""
    def build():
        import torch

        program = torch.export.export(exported_dynamic_module(), (torch.zeros(8, 3), torch.zeros(8, 2)),
                                      dynamic_shapes={"x": {0: 2 * torch.export.Dim("k", min=1, max=512)},
                                                      "y": {0: 2 * torch.export.Dim("k", min=1, max=512)}})
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()
    return _cached("exported_dynamic", build, version=_VERSION)


def exported_dynamic_module():
    import torch

    class Dynamic(torch.nn.Module):
        def forward(self, x, y):
            z = torch.cat([x, y], dim=1)
            half = z.reshape(z.shape[0] // 2, -1)
            return half * 2 + z.shape[0] % 3

    return Dynamic().eval()


def _edited_program(edit, genuine=None) -> bytes:
    """model_fixtures.torch_exported (or `genuine`) with `edit(program)` applied to models/model.json's JSON
    (and `edit_config(config)` to the weights config when given as edit=(program_edit, config_edit))."""
    from model_fixtures import torch_exported

    program_edit, config_edit = edit if isinstance(edit, tuple) else (edit, None)
    archive = zipfile.ZipFile(io.BytesIO((genuine or torch_exported)()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as forged:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename.endswith("models/model.json") and program_edit is not None:
                program = json.loads(data)
                program_edit(program)
                data = json.dumps(program).encode()
            if item.filename.endswith("model_weights_config.json") and config_edit is not None:
                config = json.loads(data)
                config_edit(config)
                data = json.dumps(config).encode()
            forged.writestr(item, data)
    return out.getvalue()


def _graph(program):
    return program["graph_module"]["graph"]


def _size_of_x(program):
    return _graph(program)["tensor_values"]["x"]["sizes"][0]["as_expr"]


def _set_expr(text):
    def edit(program):
        _size_of_x(program)["expr_str"] = text
    return edit


def _node(program, target="torch.ops.aten.relu.default"):
    return next(node for node in _graph(program)["nodes"] if node["target"] == target)


def _set(path_and_value):
    """An edit that sets program[path...] = value (path: keys and indices)."""
    *path, value = path_and_value

    def edit(program):
        item = program
        for key in path[:-1]:
            item = item[key]
        item[path[-1]] = value
    return edit


def _in_spec(program):
    return program["graph_module"]["module_call_graph"][0]["signature"]


SYMBOL = "Symbol('s77', positive=True, integer=True)"


def _rename_input(name):
    """Every use of input x renamed: the placeholder, tensor_values, the user input spec."""
    def edit(program):
        text = json.dumps(program).replace('"name": "x"', json.dumps({"name": name})[1:-1])
        text = text.replace('"x": {"dtype"', json.dumps({name: 0})[1:-3] + ' {"dtype"')
        program.clear()
        program.update(json.loads(text))
    return edit


def _export_case(name, edit, expected):
    return (f"export_{name}", lambda: _hostile(f"export_{name}", lambda: _edited_program(edit)), expected)


def _append(key_path, value):
    def edit(program):
        item = program
        for key in key_path:
            item = item[key]
        item.append(value)
    return edit


def _defaultdict_spec():
    context = {"default_factory_module": "os", "default_factory_name": "system", "dict_context": []}
    return json.dumps([1, {"type": "collections.defaultdict", "context": json.dumps(context), "children_spec": []}])


def _enum_spec():
    keys = [{"__enum__": True, "fqn": "os:environ", "name": "HOME"}]
    return json.dumps([1, {"type": "builtins.dict", "context": json.dumps(keys), "children_spec": []}])


def _weights(edit):
    return (None, edit)


def _all_payloads(edit):
    def apply(config):
        for payload in config["config"].values():
            edit(payload)
    return apply


EXPORT = [
    # size expressions: sympify is eval
    _export_case("expr_shell", _set_expr(f"{SYMBOL} + {SHELL}"), "expr_str"),
    _export_case("expr_issue", _set_expr(f"s0 + {SHELL}"), "expr_str"),
    _export_case("expr_open", _set_expr(f"Add({SYMBOL}, Integer(len(str({CREATE}))))"), "expr_str"),
    _export_case("expr_lambda", _set_expr(f"(lambda: {CREATE})()"), "expr_str"),
    _export_case("expr_getattr", _set_expr(f"getattr(__builtins__, 'open')('{CREATED}', 'w')"), "expr_str"),
    _export_case("expr_dunder", _set_expr(f"Symbol.__init__.__globals__['__builtins__']['open']('{CREATED}', 'w')"),
                 "expr_str"),
    _export_case("expr_string_arg", _set_expr(f"Symbol('{CREATED}', positive=True)"), "expr_str"),
    _export_case("expr_keyword_code", _set_expr(f"Symbol('s77', positive={CREATE})"), "expr_str"),
    _export_case("expr_function_in_sympy", _set_expr(f"Function('f')({SYMBOL})"), "expr_str"),
    _export_case("expr_nested", _set_expr("Add(" * 5000 + SYMBOL + ", Integer(1))" * 5000), "expr_str"),
    _export_case("expr_parens", _set_expr("(" * 100000 + SYMBOL + ")" * 100000), "expr_str"),
    _export_case("expr_sym_float", _set(["graph_module", "graph", "sym_float_values", "f0",
                                         {"as_expr": {"expr_str": f"Float('1.0') + {SHELL}"}}]), "expr_str"),
    _export_case("range_key", _set(["range_constraints", f"s77 + {CREATE}", {"min_val": 1, "max_val": 4}]),
                 "range_constraints"),
    _export_case("range_unbacked_count", _set(["range_constraints", "u" + "9" * 12, {"min_val": 1, "max_val": 4}]),
                 "range_constraints"),
    # guards_code: exec'd by program.module() when sample inputs are present
    _export_case("guards_open", _set(["guards_code", [CREATE]]), "guards_code"),
    _export_case("guards_shell", _set(["guards_code", [f"L['x'].size()[0] >= 0 and {SHELL}"]]), "guards_code"),
    _export_case("guards_attribute", _set(["guards_code", ["L['x'].__class__.__init__.__globals__ is None"]]),
                 "guards_code"),
    # operator targets: getattr walks over _operator, math, torch
    _export_case("target_attrgetter", lambda p: _node(p).update(target="_operator.attrgetter"),
                 "Operator _operator.attrgetter"),
    _export_case("target_methodcaller", lambda p: _node(p).update(target="_operator.methodcaller"),
                 "Operator _operator.methodcaller"),
    _export_case("target_call", lambda p: _node(p).update(target="_operator.call"), "Operator _operator.call"),
    _export_case("target_torch_load", lambda p: _node(p).update(target="torch.load"), "Operator torch.load"),
    _export_case("target_math", lambda p: _node(p).update(target="math.fsum"), "Operator math.fsum"),
    _export_case("target_torch_save_op", lambda p: _node(p).update(target="torch.ops.aten.save.default"),
                 "aten::save"),
    _export_case("target_extension", lambda p: _node(p).update(target="#os:system"), "Operator #os:system"),
    _export_case("target_hop", lambda p: _node(p).update(target="torch.ops.higher_order.run_const_graph"),
                 "higher_order::run_const_graph"),
    _export_case("target_sparse", lambda p: _node(p).update(target="torch.ops.aten.to_sparse.default"),
                 "aten::to_sparse"),
    _export_case("as_operator", lambda p: _node(p)["inputs"].append(
        {"name": "other", "arg": {"as_operator": "_operator.attrgetter"}, "kind": 2}), "Operator _operator.attrgetter"),
    # names that FX prints into the code it exec's
    _export_case("placeholder_name", _rename_input(f"x={CREATE}"), "name"),
    _export_case("node_name", lambda p: _node(p).update(name=f"relu = {CREATE}"), "name"),
    _export_case("forward_arg_names", lambda p: _in_spec(p).update(forward_arg_names=[f"x={CREATE}"]),
                 "forward_arg_names"),
    _export_case("keyword_name", lambda p: _node(p).update(name="lambda"), "name"),
    _export_case("parameter_dunder", _set(["graph_module", "signature", "input_specs", 0, "parameter",
                                           "parameter_name", "__class__"]), "parameter_name"),
    _export_case("module_call_fqn", lambda p: p["graph_module"]["module_call_graph"][1].update(fqn="a;b"), "fqn"),
    # treespecs: pytree imports by name
    _export_case("treespec_defaultdict", lambda p: _in_spec(p).update(in_spec=_defaultdict_spec()), "in_spec"),
    _export_case("treespec_enum", lambda p: _in_spec(p).update(out_spec=_enum_spec()), "out_spec"),
    # the rest of the program
    _export_case("verifier", _set(["verifiers", ["os.system"]]), "verifiers"),
    _export_case("torch_version", _set(["torch_version", f"2.13 {CREATE}"]), "torch_version"),
    _export_case("unknown_field", _set(["graph_module", "evil", CREATE]), "evil"),
    _export_case("as_string_control", lambda p: _node(p)["inputs"].append(
        {"name": "other", "arg": {"as_string": "a\rimport os"}, "kind": 2}), "as_string"),
    _export_case("device_type", _set(["graph_module", "graph", "tensor_values", "x", "device", "type", "/etc/passwd"]),
                 "device"),
    _export_case("custom_object", _set(["graph_module", "graph", "custom_obj_values",
                                        {"obj": {"name": "obj", "class_fqn": "__torch__.torch.classes.c10d.Work"}}]),
                 "Custom objects"),
    _export_case("integer_type", _set(["graph_module", "graph", "tensor_values", "x", "sizes", 1, "as_int", "4"]),
                 "as_int"),
    _export_case("namedtuple_fields", _set(["graph_module", "treespec_namedtuple_fields",
                                            {"os.system": {"field_names": [CREATE]}}]), "treespec_namedtuple_fields"),
    # weights: what they are read from, and how
    _export_case("path_opaque", _weights(_all_payloads(lambda p: p.update(path_name="opaque_obj_0"))), "path_name"),
    _export_case("path_traversal", _weights(_all_payloads(lambda p: p.update(path_name="../../models/model.json"))),
                 "path_name"),
    _export_case("weight_past_record", _weights(_all_payloads(lambda p: p["tensor_meta"].update(
        sizes=[{"as_int": 1 << 20}, {"as_int": 4}]))), "past its record"),
    _export_case("weight_offset", _weights(_all_payloads(lambda p: p["tensor_meta"].update(
        storage_offset={"as_int": 1 << 40}))), "past its record"),
]


def _metadata(program):
    for node in _graph(program)["nodes"]:
        node["metadata"].update(custom=json.dumps({"__enum__": True, "fqn": "os:system", "name": "x"}),
                                source_fn_stack=f"relu,{CREATE}", stack_trace=f'File "a.py", line 1, in f\n    {CREATE}\r'
                                f"{CREATE}\n", nn_module_stack=f"L__self__,{CREATE},{CREATE}",
                                from_node=json.dumps([{"name": CREATE}]), torch_fn=f"{CREATE};{CREATE}")
    program["graph_module"]["metadata"] = {"custom": json.dumps({"a": CREATE})}


def export_hostile_metadata() -> bytes:
    """Metadata that torch.export.load would resolve or json.loads: dropped before the load (a run needs
    none of it), so the program is served and nothing of it reaches torch."""
    return _hostile("export_metadata", lambda: _edited_program(_metadata))


def _edited_pickle(genuine, edit):
    """`genuine()` with `edit(data.pkl bytes) -> bytes`."""
    def build():
        archive = zipfile.ZipFile(io.BytesIO(genuine()))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as forged:
            for item in archive.infolist():
                data = archive.read(item.filename)
                if item.filename.endswith("/data.pkl"):
                    edited = edit(data)
                    assert edited != data, "the edit changed nothing"
                    data = edited
                forged.writestr(item, data)
        return out.getvalue()
    return build


def _small_as_maybe(data: bytes) -> bytes:
    """The Optional[Big] attribute `maybe` given a new Small object (built as data.pkl builds
    `small_or_none`: the class from the memo, its state {'a0': 1})."""
    import pickletools

    ops = list(pickletools.genops(data))
    small_class = next(arg for op, arg, _ in ops if op.name == "BINPUT" and data[_position(ops, arg) - 40:
                                                                                _position(ops, arg)].endswith(b"Small\n"))
    a0_key = next(arg for op, arg, pos in ops if op.name == "BINPUT" and data[pos - 7:pos].endswith(b"a0"))
    at = data.index(b"maybe") + len("maybe") + 2
    assert data[at:at + 1] == b"N"
    return data[:at] + b"h" + bytes([small_class]) + b")\x81}(h" + bytes([a0_key]) + b"K\x01ub" + data[at + 1:]


def _position(ops, memo_index):
    return next(pos for op, arg, pos in ops if op.name == "BINPUT" and arg == memo_index)


def _short_state(data: bytes) -> bytes:
    """CastingWithState's pickled state (n, training) cut to (n,): __setstate__ reads state[1]."""
    at = data.rindex(b"\x86")  # TUPLE2: the state tuple is the last pair built
    return data[:at] + b"0\x85" + data[at + 1:]  # POP the second item, TUPLE1


TORCHSCRIPT += [
    ("pickled_wrong_class", lambda: _hostile("pickled_wrong_class", _edited_pickle(casting_genuine, _small_as_maybe)),
     "attribute maybe"),
    ("pickled_state_arity", lambda: _hostile("pickled_state_arity",
                                             _edited_pickle(casting_with_state_genuine, _short_state)),
     "the state of"),
]

EXPORT += [
    _export_case("expr_power_bomb", _set_expr(f"Add({SYMBOL}, Pow(Integer(10), Integer(1000000000000)))"), "expr_str"),
    _export_case("expr_shift_bomb", _set_expr(f"Add({SYMBOL}, LShift(Integer(1), Add(Integer(99999999999), "
                                              "Integer(1))))"), "expr_str"),
]
