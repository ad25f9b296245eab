"""The Docker files agree with the project: paths, pins, server flags and module arguments.

Static checks only (no Docker engine needed, no server started): the Dockerfile's build stage must
produce the module and the environment the runtime stage loads, at the same absolute paths the module
was compiled with; docker-compose.yml must describe the standalone server and the 3-master cluster
with module arguments the module accepts. docker-compose.yml is read with PyYAML when it is installed,
otherwise with the small reader below (the file keeps to the subset it understands).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from redisai.config import parse_module_args  # noqa: E402
from redisai.errors import RedisAIError  # noqa: E402

BASE_IMAGE = "python:3.11-slim-bookworm"
CLUSTER_NODES = {"node1": 7001, "node2": 7002, "node3": 7003}


# ------------------------------------------------------------------ a reader for a YAML subset

class YamlSubsetError(ValueError):
    pass


def _outside_quotes(text: str):
    """Yields (index, char, quoted) over `text`, tracking '...' and "..." (with backslash escapes)."""
    quote = None
    i = 0
    while i < len(text):
        char = text[i]
        if quote == '"' and char == "\\":
            yield i, char, True
            i += 1
            if i < len(text):
                yield i, text[i], True
            i += 1
            continue
        if quote is None and char in "'\"":
            quote = char
            yield i, char, True
        elif char == quote:
            quote = None
            yield i, char, True
        else:
            yield i, char, quote is not None
        i += 1


def _strip_comment(line: str) -> str:
    for i, char, quoted in _outside_quotes(line):
        if char == "#" and not quoted and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _bracket_depth(text: str) -> int:
    depth = 0
    for _, char, quoted in _outside_quotes(text):
        if not quoted:
            depth += {"[": 1, "]": -1}.get(char, 0)
    return depth


def _key_split(content: str) -> tuple[str, str] | None:
    """`key: value` / `key:` outside quotes, or None when `content` is not a mapping entry."""
    if content[:1] in "[{\"'":
        return None
    for i, char, quoted in _outside_quotes(content):
        if char == ":" and not quoted and (i + 1 == len(content) or content[i + 1] == " "):
            return content[:i].strip(), content[i + 1:].strip()
    return None


_YAML11_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)\Z")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")  # 22:22 is 1342


def _plain(text: str):
    if text.lower() in _YAML11_BOOLS:
        return _YAML11_BOOLS[text.lower()]
    if text in ("null", "Null", "NULL", "~"):
        return None
    if _SEXAGESIMAL.match(text):
        raise YamlSubsetError(f"quote {text!r}: YAML 1.1 reads it as a base-60 number")
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text[:1] in "&*!|>{%@`":
        raise YamlSubsetError(f"unsupported YAML construct: {text!r}")
    return text


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The quoted scalar starting at text[start]; returns (value, index after it)."""
    if text[start] == '"':
        value, end = json.decoder.scanstring(text, start + 1)
        return value, end
    end = start + 1
    while True:
        end = text.find("'", end)
        if end < 0:
            raise YamlSubsetError(f"unterminated quote in {text!r}")
        if text[end + 1:end + 2] == "'":
            end += 2
            continue
        return text[start + 1:end].replace("''", "'"), end + 1


def _flow_list(text: str) -> list:
    items, i = [], 1
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i >= len(text):
            raise YamlSubsetError(f"unterminated list: {text!r}")
        if text[i] == "]":
            if text[i + 1:].strip():
                raise YamlSubsetError(f"text after a list: {text!r}")
            return items
        if text[i] in "\"'":
            value, i = _quoted(text, i)
            items.append(value)
        elif text[i] in "[{":
            raise YamlSubsetError(f"nested flow collections are not supported: {text!r}")
        else:
            end = i
            while end < len(text) and text[end] not in ",]":
                end += 1
            items.append(_plain(text[i:end].strip()))
            i = end


def _scalar(text: str):
    if text.startswith("["):
        return _flow_list(text)
    if text[:1] in "\"'":
        value, end = _quoted(text, 0)
        if text[end:].strip():
            raise YamlSubsetError(f"text after a quoted scalar: {text!r}")
        return value
    return _plain(text)


class YamlSubset:
    """Block mappings and lists, plain and quoted scalars, flow lists of scalars (also spanning lines)."""

    def __init__(self, text: str):
        self.lines: list[tuple[int, str]] = []
        pending: tuple[int, str] | None = None
        for raw in text.splitlines():
            if "\t" in raw[:len(raw) - len(raw.lstrip())]:
                raise YamlSubsetError(f"tab in indentation: {raw!r}")
            content = _strip_comment(raw)
            if pending is not None:
                pending = (pending[0], pending[1] + " " + content.strip())
                if _bracket_depth(pending[1]) == 0:
                    self.lines.append(pending)
                    pending = None
                continue
            if not content.strip() or content.strip() in ("---", "..."):
                continue
            line = (len(content) - len(content.lstrip(" ")), content.strip())
            if _bracket_depth(line[1]) > 0:
                pending = line
            else:
                self.lines.append(line)
        if pending is not None:
            raise YamlSubsetError(f"unterminated list: {pending[1]!r}")
        self.pos = 0

    def parse(self):
        if not self.lines:
            return None
        value = self._block(self.lines[0][0])
        if self.pos != len(self.lines):
            raise YamlSubsetError(f"unexpected line: {self.lines[self.pos][1]!r}")
        return value

    def _block(self, indent: int):
        content = self.lines[self.pos][1]
        return self._list(indent) if content == "-" or content.startswith("- ") else self._mapping(indent)

    def _mapping(self, indent: int) -> dict:
        result: dict = {}
        while self.pos < len(self.lines):
            line_indent, content = self.lines[self.pos]
            if line_indent < indent:
                break
            entry = _key_split(content)
            if line_indent > indent or entry is None:
                raise YamlSubsetError(f"expected `key: value` at indentation {indent}: {content!r}")
            key, value = entry
            key = _scalar(key) if key[:1] in "\"'" else key
            if key in result:
                raise YamlSubsetError(f"duplicate key {key!r}")
            self.pos += 1
            following = self.lines[self.pos] if self.pos < len(self.lines) else (-1, "")
            if value:
                result[key] = _scalar(value)
            elif following[0] > indent:
                result[key] = self._block(following[0])
            elif following[0] == indent and (following[1] == "-" or following[1].startswith("- ")):
                result[key] = self._list(indent)  # a list may sit at its key's indentation
            else:
                result[key] = None
        return result

    def _list(self, indent: int) -> list:
        result = []
        while self.pos < len(self.lines):
            line_indent, content = self.lines[self.pos]
            if line_indent < indent or not (content == "-" or content.startswith("- ")):
                if line_indent > indent:
                    raise YamlSubsetError(f"unexpected indentation: {content!r}")
                break
            if line_indent > indent:
                raise YamlSubsetError(f"unexpected indentation: {content!r}")
            rest = content[1:].lstrip(" ")
            if not rest:
                self.pos += 1
                result.append(self._block(self.lines[self.pos][0]) if self.pos < len(self.lines)
                              and self.lines[self.pos][0] > indent else None)
            elif _key_split(rest) is not None:  # a mapping item: its keys line up after "- "
                self.lines[self.pos] = (indent + len(content) - len(rest), rest)
                result.append(self._mapping(self.lines[self.pos][0]))
            else:
                result.append(_scalar(rest))
                self.pos += 1
        return result


def load_yaml(text: str):
    try:
        import yaml
    except ImportError:
        return YamlSubset(text).parse()
    return yaml.safe_load(text)


# ------------------------------------------------------------------ Dockerfile

@dataclass
class Instruction:
    op: str
    args: str


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [i.args for i in self.instructions if i.op == op]

    def runs(self) -> list[str]:
        return self.all("RUN")


def dockerfile_lines(text: str) -> list[Instruction]:
    """Instructions with continuations joined; comment lines dropped (also inside continuations)."""
    instructions, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        op, _, args = current.partition(" ")
        instructions.append(Instruction(op.upper(), args.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return instructions


def _substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


def dockerfile_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in dockerfile_lines(text):
        if instruction.op == "ARG" and not stages:
            name, _, default = instruction.args.partition("=")
            global_args[name.strip()] = default.strip()
        elif instruction.op == "FROM":
            words = _substitute(instruction.args, global_args).split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{instruction.op} before any FROM"
            stages[-1].instructions.append(instruction)
    return global_args, stages


def shell_commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split at && || ; | and shell keywords), as word lists."""
    lexer = shlex.shlex(run, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            if current:
                commands.append(current)
            current = []
        elif not current and (token in ("if", "then", "else", "elif", "do", "!", "{", "}", "(", ")")
                              or re.match(r"[A-Za-z_][A-Za-z0-9_]*=", token)):
            continue  # shell keywords and VAR=value prefixes before a command's name
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def option_value(words: list[str], option: str) -> str | None:
    """The value of `option value` or `option=value` in a word list."""
    for i, word in enumerate(words):
        if word == option and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(option + "="):
            return word[len(option) + 1:]
    return None


@pytest.fixture(scope="module")
def dockerfile():
    return dockerfile_stages((ROOT / "Dockerfile").read_text())


def _named_stage(dockerfile, name: str) -> Stage:
    _, stages = dockerfile
    named = [s for s in stages if s.name == name]
    assert len(named) == 1, f"one stage named `{name}`"
    return named[0]


@pytest.fixture(scope="module")
def requirements_stage(dockerfile) -> Stage:
    return _named_stage(dockerfile, "requirements")


@pytest.fixture(scope="module")
def deps_stage(dockerfile) -> Stage:
    return _named_stage(dockerfile, "deps")


@pytest.fixture(scope="module")
def build_stage(dockerfile) -> Stage:
    return _named_stage(dockerfile, "build")


@pytest.fixture(scope="module")
def runtime_stage(dockerfile) -> Stage:
    return dockerfile[1][-1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _commands(stage: Stage, program: str) -> list[list[str]]:
    found = []
    for run in stage.runs():
        for words in shell_commands(run):
            if words and PurePosixPath(words[0]).name == program:
                found.append(words)
    return found


def _pip_installs(stage: Stage) -> list[list[str]]:
    return [words[2:] for words in _commands(stage, "pip") if words[1:2] == ["install"]]


def _context_copies(stage: Stage) -> dict[str, str]:
    """COPY from the build context: destination -> source (relative to the repository)."""
    copies = {}
    for args in stage.all("COPY"):
        words = args.split()
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        *sources, destination = words
        for source in sources:
            copies[destination.rstrip("/") or "/"] = source
    return copies


def _stage_copies(stage: Stage) -> list[tuple[str, str, str]]:
    """COPY --from=<stage>: (stage, source, destination)."""
    copies = []
    for args in stage.all("COPY"):
        words = args.split()
        origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
        if origin is not None:
            source, destination = [w for w in words if not w.startswith("--")]
            copies.append((origin, source, destination))
    return copies


def _resolve_args(dockerfile, stage: Stage, text: str) -> str:
    """`text` with ${NAME} replaced by the default of the stage's `ARG NAME=...` (or the global one)."""
    global_args, _ = dockerfile
    values = {}
    for args in stage.all("ARG"):
        name, _, default = args.partition("=")
        values[name.strip()] = default.strip() if default else global_args.get(name.strip(), "")
    return _substitute(text, values)


def _root_image(dockerfile, stage: Stage) -> str:
    """The image a stage finally starts from, through `FROM <earlier stage>`."""
    _, stages = dockerfile
    by_name = {s.name: s for s in stages}
    seen = set()
    while stage.image in by_name and stage.image not in seen:
        seen.add(stage.image)
        stage = by_name[stage.image]
    return stage.image


def _in_repo(stage: Stage, image_path: str) -> Path | None:
    """The repository path that `image_path` comes from, through the stage's COPYs from the context."""
    for destination, source in _context_copies(stage).items():
        if image_path == destination or image_path.startswith(destination + "/"):
            return (ROOT / source / image_path[len(destination):].lstrip("/")).resolve()
    return None


def _venv_path(stage: Stage) -> str:
    venvs = [words[words.index("venv") + 1] for words in _commands(stage, "python3") + _commands(stage, "python")
             if "-m" in words and "venv" in words]
    assert len(venvs) == 1, f"one `python -m venv` in the build stage, found {venvs}"
    return venvs[0]


def _module_build(stage: Stage) -> tuple[str, str, str]:
    """(source dir, build dir, REDISAI_PYTHON_ENV) of the configuring cmake call."""
    configure = [words for words in _commands(stage, "cmake") if "-S" in words and "-B" in words]
    assert len(configure) == 1, "one `cmake -S ... -B ...` in the build stage"
    words = configure[0]
    env = next((w.split("=", 1)[1] for w in words if w.startswith("-DREDISAI_PYTHON_ENV=")), None)
    assert env, "cmake is given -DREDISAI_PYTHON_ENV=<the venv>"
    return option_value(words, "-S"), option_value(words, "-B"), env


def _module_copy(stage: Stage, built: str) -> str:
    copies = [words[-1] for words in _commands(stage, "cp") if built in words[1:-1]]
    assert len(copies) == 1, f"{built} is copied once to its final place"
    destination = copies[0]
    return destination if destination.endswith(".so") else f"{destination.rstrip('/')}/redisai.so"


def _cmd(stage: Stage) -> list[str]:
    cmds = stage.all("CMD")
    assert len(cmds) == 1, "one CMD"
    words = json.loads(cmds[0])  # the exec form: redis-server is PID 1 and gets SIGTERM
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    return words


def _loadmodule(words: list[str]) -> tuple[str, list[str]]:
    """The module path after --loadmodule and the module arguments that follow it."""
    assert "--loadmodule" in words, f"--loadmodule in {words}"
    i = words.index("--loadmodule")
    path, rest = words[i + 1], words[i + 2:]
    end = next((j for j, w in enumerate(rest) if w.startswith("--")), len(rest))
    return path, rest[:end]


def _flag_values(words: list[str]) -> dict[str, str]:
    return {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}


# ------------------------------------------------------------------ Dockerfile tests

def test_every_stage_starts_from_the_same_shared_libpython_base(dockerfile, deps_stage, build_stage, runtime_stage):
    global_args, stages = dockerfile
    assert len(stages) >= 2 and runtime_stage is not build_stage
    assert {_root_image(dockerfile, stage) for stage in stages} == {BASE_IMAGE}
    assert global_args["PYTHON_IMAGE"] == BASE_IMAGE, "the base is a build argument, the official image by default"
    assert build_stage.image == deps_stage.name, "the module is built against the deps stage's venv"
    # The package's requires-python admits the image's Python (3.11, as the project's .venv).
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*3\.(\d+)", requires)
    assert minimum and int(minimum.group(1)) <= 11
    assert any("Py_ENABLE_SHARED" in run for run in deps_stage.runs()), "the build checks for a shared libpython"


def test_build_tools_only_in_the_build_stage(build_stage, deps_stage, runtime_stage):
    def apt_packages(stage):
        return {w for words in _commands(stage, "apt-get") if "install" in words
                for w in words[words.index("install") + 1:] if not w.startswith("-")}

    assert {"cmake", "gcc"} <= apt_packages(build_stage)
    runtime = apt_packages(runtime_stage)
    assert "redis-server" in runtime
    assert not runtime & {"cmake", "gcc", "make", "g++", "build-essential", "libc6-dev"}
    assert not apt_packages(deps_stage), "the venv the runtime copies needs no Debian packages to build"


def test_the_backends_extra_is_every_backends_extra(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    each = [pin for name in ("onnx", "torch", "tf", "tflite") for pin in extras[name]]
    assert sorted(extras["backends"]) == sorted(each)


def test_torch_pin_and_cpu_index_match_pyproject(dockerfile, deps_stage, pyproject):
    pinned = [r for r in pyproject["project"]["optional-dependencies"]["backends"] if r.startswith("torch==")]
    assert len(pinned) == 1
    torch_installs = [words for words in _pip_installs(deps_stage) if any(w.startswith("torch") for w in words)]
    assert torch_installs, "torch is installed on its own, from the CPU index"
    for words in torch_installs:
        assert pinned[0] in words, f"the Dockerfile pins {words}, pyproject.toml {pinned[0]}"
        index = option_value(words, "--index-url")
        assert index == "${TORCH_INDEX_URL}", "the index is the build argument TORCH_INDEX_URL"
        assert _resolve_args(dockerfile, deps_stage, index) == "https://download.pytorch.org/whl/cpu", \
            "TORCH_INDEX_URL defaults to PyTorch's CPU index"
    assert "PIP_INDEX_URL" in deps_stage.all("ARG"), "PIP_INDEX_URL (a PyPI mirror) reaches pip, unset by default"
    text = (ROOT / "Dockerfile").read_text()
    assert set(re.findall(r"torch==[\w.+]+", text)) == {pinned[0]}


def test_pip_targets_exist_and_the_package_is_not_editable(dockerfile, deps_stage, build_stage, runtime_stage, pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    local = []
    for words in _pip_installs(build_stage):
        assert "-e" not in words and "--editable" not in words, "the image needs a real copy of the package"
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in ("-r", "--requirement", "-c", "--constraint", "--index-url", "--extra-index-url", "-i",
                          "--target", "-t"):
                skip = True
            elif not word.startswith("-") and word.startswith(("/", ".")):
                local.append((word, words))
    assert len(local) == 1, "the project is pip-installed once, from its copy in the image"
    (target, words), = local
    path, _, extra = target.partition("[")
    repo_path = _in_repo(build_stage, path)
    assert repo_path is not None and (repo_path / "pyproject.toml").is_file(), f"{path} is the repository"
    for name in filter(None, extra.rstrip("]").split(",")):
        assert name in extras, f"extra [{name}] is not in pyproject.toml"
    # Its dependencies are the deps stage's venv (test_requirements_step_reads_every_pin_of_pyproject):
    # the package alone goes into a folder of its own, which a .pth file puts on the venv's path and the
    # runtime stage copies at the same path.
    assert "--no-deps" in words
    app = option_value(words, "--target")
    assert app and app.startswith("/opt/redisai/"), "the package goes into a folder of its own"
    venv = _venv_path(deps_stage)
    pth = [words for words in _commands(deps_stage, "echo") if len(words) >= 2 and words[1] == app]
    assert pth, f"a .pth file in the venv names {app}"
    assert any(w.startswith(f"{venv}/lib/python3.11/site-packages/") and w.endswith(".pth")
               for words in pth for w in words), "the .pth file is in the venv's site-packages"
    assert ("build", app, app) in _stage_copies(runtime_stage)
    assert f"PATH={app}/bin:$PATH" in runtime_stage.all("ENV"), "the package's `redisai` tool is on the PATH"


def test_requirements_step_reads_every_pin_of_pyproject(requirements_stage, deps_stage, pyproject, tmp_path):
    """The layer that pre-installs the dependencies computes them from pyproject.toml alone: run its code."""
    copies = {dst: src for dst, src in _context_copies(requirements_stage).items() if src == "pyproject.toml"}
    assert copies, "pyproject.toml is copied on its own (before the sources) for the dependency layer"
    (copied_to,) = copies
    runs = [words for words in _commands(requirements_stage, "python3") + _commands(requirements_stage, "python")
            if "-c" in words and "tomllib" in words[words.index("-c") + 1]]
    assert len(runs) == 1
    snippets = [runs[0][runs[0].index("-c") + 1]]
    # The list goes to a file that the deps stage copies alone and installs with `pip install -r`.
    requirements = re.search(r">\s*(\S+)\s*$", requirements_stage.runs()[-1]).group(1)
    assert ("requirements", requirements, requirements) in _stage_copies(deps_stage)
    assert any(option_value(words, "-r") == requirements for words in _pip_installs(deps_stage))
    assert not _context_copies(deps_stage), "the deps stage takes nothing else from the build context"
    local = tmp_path / "pyproject.toml"
    local.write_text((ROOT / "pyproject.toml").read_text())
    code = snippets[0].replace(copied_to, str(local))
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    project = pyproject["project"]
    assert printed.split() == project["dependencies"] + project["optional-dependencies"]["backends"]


def test_module_is_built_against_the_venv_and_loaded_from_where_it_is_copied(deps_stage, build_stage, runtime_stage):
    venv = _venv_path(deps_stage)
    source, build_dir, env = _module_build(build_stage)
    assert env == venv, "the module must start the venv the packages went into"
    assert _in_repo(build_stage, source) == ROOT, "cmake builds the repository's CMakeLists.txt"
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"set\(REDISAI_PYTHON_ENV\b.*CACHE PATH", cmake), "REDISAI_PYTHON_ENV is CMake's cache variable"
    assert re.search(r"add_library\(redisai SHARED", cmake) and 'PREFIX ""' in cmake
    assert 'LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}"' in cmake
    built = f"{build_dir.rstrip('/')}/redisai.so"
    installed = _module_copy(build_stage, built)

    # The runtime stage takes the venv from the deps stage, the module from the build stage, at the
    # same paths.
    carried = {}
    for origin, source_path, destination in _stage_copies(runtime_stage):
        assert origin in ("deps", "build"), f"COPY --from={origin}"
        assert source_path == destination, "the module's compiled-in paths must not move"
        carried[destination.rstrip("/")] = origin

    def carried_from(path: str) -> str | None:
        return next((o for c, o in carried.items() if path == c or path.startswith(c + "/")), None)

    assert carried_from(venv) == "deps" and carried_from(installed) == "build"
    module_path, module_args = _loadmodule(_cmd(runtime_stage))
    assert module_path == installed
    assert module_args == []
    # The smoke test loads the same file.
    smoke = [w for words in _commands(runtime_stage, "redis-server") for w in words]
    assert _loadmodule(smoke)[0] == installed


def test_cmd_keeps_the_flags_of_make_run(runtime_stage):
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1).replace("\\\n", " ")
    line = re.search(r"exec redis-server (.*)$", recipe, re.MULTILINE).group(1)
    make_flags = set(re.findall(r"(--[a-z-]+)", line))
    assert {"--loadmodule", "--dir"} <= make_flags
    cmd = _cmd(runtime_stage)
    assert cmd[0] == "redis-server"
    cmd_flags = {w for w in cmd if w.startswith("--")}
    missing = make_flags - cmd_flags - {"--port"}  # the container keeps Redis's default port
    assert not missing, f"make run passes {sorted(missing)}, the image does not"
    values = _flag_values(cmd)
    assert values["--bind"] == "0.0.0.0" and values["--protected-mode"] == "no"

    default_port = re.search(r"^PORT \?= (\d+)$", makefile, re.MULTILINE).group(1)
    assert runtime_stage.all("EXPOSE") == [default_port] == ["6379"]
    volumes = runtime_stage.all("VOLUME")
    assert volumes == [values["--dir"]] == ["/data"]


def test_healthcheck_pings_with_redis_cli(runtime_stage):
    (check,) = runtime_stage.all("HEALTHCHECK")
    command = check.split(" CMD ", 1)[1]
    assert "redis-cli" in command and "ping" in command
    assert "-p 6379" in command or "-p" not in command


def test_context_copies_exist_and_are_not_ignored(dockerfile):
    _, stages = dockerfile
    patterns = dockerignore_patterns()
    for stage in stages:
        for destination, source in _context_copies(stage).items():
            assert (ROOT / source).exists(), f"COPY {source} {destination}: no such path in the repository"
            if source != ".":
                assert not dockerignored(source, patterns)


# ------------------------------------------------------------------ .dockerignore

def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rules: the last matching pattern wins, `!` re-includes, a matched directory hides its files."""
    parts = PurePosixPath(path).parts
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        excluded = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if _pattern_regex(pattern.lstrip("!")).match(prefix):
                excluded = not negated
        if excluded:
            return True
    return False


def test_dockerignore_leaves_out_local_state():
    patterns = dockerignore_patterns()
    for path in (".venv/bin/python", "build/redisai.so", "data/dump.rdb", "tests/.cache/onnx_mul.v3.bin",
                 ".git/HEAD", "src/redisai/__pycache__/module.cpython-311.pyc", "__pycache__/x.pyc",
                 "bench/.cache/model.onnx", "docs/performance.png", "tests/test_commands.py",
                 "src/redisai.egg-info/PKG-INFO", "module/__pycache__/x.pyc"):
        assert dockerignored(path, patterns), f"{path} would be sent to the Docker build"


def test_dockerignore_keeps_what_the_build_needs():
    patterns = dockerignore_patterns()
    # setuptools needs pyproject.toml and its readme; CMake the shim; pip the packages.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = ["pyproject.toml", pyproject["project"]["readme"], "CMakeLists.txt", "Dockerfile"]
    needed += [str(p.relative_to(ROOT)) for p in (ROOT / "module").iterdir() if p.suffix in (".c", ".h")]
    needed += [str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.py") if "__pycache__" not in p.parts]
    needed += [str(p.relative_to(ROOT)) for p in (ROOT / "cbridge").glob("*.py")]
    for path in needed:
        assert (ROOT / path).is_file(), path
        assert not dockerignored(path, patterns), f"{path} is needed by the build but ignored"


# ------------------------------------------------------------------ docker-compose.yml

@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _named_volume(service: dict, target: str) -> str:
    for volume in service.get("volumes", []):
        if isinstance(volume, str) and volume.split(":")[1:2] == [target]:
            return volume.split(":")[0]
        if isinstance(volume, dict) and volume.get("target") == target:
            return volume["source"]
    raise AssertionError(f"no volume mounted at {target}")


def test_compose_services_and_profiles(compose):
    services = compose["services"]
    assert set(services) == {"redisai", *CLUSTER_NODES, "cluster-init"}
    assert "profiles" not in services["redisai"], "the standalone server starts by default"
    for name in (*CLUSTER_NODES, "cluster-init"):
        assert services[name]["profiles"] == ["cluster"]
    images = {service.get("image") for service in services.values()}
    assert len(images) == 1, "every service runs the one image"
    for service in services.values():
        build = service["build"]
        assert (build if isinstance(build, str) else build["context"]) == "."


_COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(value: str, environment: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default} and $NAME ($$ is a literal $)."""
    parts = value.split("$$")
    return "$".join(_COMPOSE_VARIABLE.sub(
        lambda m: environment.get(m.group(1) or m.group(3)) or (m.group(2) or ""), part) for part in parts)


def test_compose_variables_are_the_documented_ones():
    text = (ROOT / "docker-compose.yml").read_text()
    names = {m.group(1) or m.group(3) for m in _COMPOSE_VARIABLE.finditer(text.replace("$$", ""))}
    assert names <= {"REDISAI_PORT"}, f"compose would substitute {sorted(names)} from the environment"
    assert interpolate("${REDISAI_PORT:-6379}:6379", {}) == "6379:6379"
    assert interpolate("sh -c 'echo $$HOME'", {}) == "sh -c 'echo $HOME'"


def test_standalone_service(compose, runtime_stage):
    service = compose["services"]["redisai"]
    # Port 6379 on every interface by default; REDISAI_PORT=127.0.0.1:16379 publishes on loopback only.
    ports = service["ports"]
    assert [interpolate(p, {}) for p in ports] == ["6379:6379"]
    assert [interpolate(p, {"REDISAI_PORT": "127.0.0.1:16379"}) for p in ports] == ["127.0.0.1:16379:6379"]
    volume = _named_volume(service, "/data")
    assert volume in compose["volumes"], "the data volume is a named volume"
    command = _command(service) or _cmd(runtime_stage)
    assert _flag_values(command)["--dir"] == "/data"


def test_cluster_nodes(compose, runtime_stage):
    services = compose["services"]
    module_path = _loadmodule(_cmd(runtime_stage))[0]
    image_flags = _flag_values(_cmd(runtime_stage))
    volumes, addresses = set(), set()
    for name, port in CLUSTER_NODES.items():
        node = services[name]
        command = _command(node)
        flags = _flag_values(command)
        assert command[0] == "redis-server"
        assert flags["--port"] == str(port)
        assert flags["--cluster-enabled"] == "yes"
        assert flags["--cluster-config-file"] == "nodes.conf"
        for flag in ("--bind", "--protected-mode", "--dir"):
            assert flags[flag] == image_flags[flag], f"{name} changes the image's {flag}"
        assert _loadmodule(command)[0] == module_path
        volume = _named_volume(node, flags["--dir"])
        assert volume in compose["volumes"]
        volumes.add(volume)
        assert f"-p {port}" in " ".join(node["healthcheck"]["test"]), f"{name}'s health check pings its own port"
        for network, settings in (node.get("networks") or {}).items():
            if settings and "ipv4_address" in settings:
                address = ipaddress.ip_address(settings["ipv4_address"])
                subnets = [ipaddress.ip_network(c["subnet"]) for c in compose["networks"][network]["ipam"]["config"]]
                assert any(address in subnet for subnet in subnets)
                addresses.add(address)
    assert len(volumes) == len(CLUSTER_NODES), "each node keeps its own nodes.conf and data"
    assert len(addresses) in (0, len(CLUSTER_NODES))
    # A fixed subnet inside Docker's default address pools collides with the networks Docker hands out
    # itself (it moves on through them as networks come and go): `up` then fails with "Pool overlaps".
    docker_pools = [ipaddress.ip_network("172.17.0.0/16").supernet(new_prefix=12), ipaddress.ip_network("192.168.0.0/16")]
    for network in compose.get("networks") or {}:
        for config in compose["networks"][network]["ipam"]["config"]:
            subnet = ipaddress.ip_network(config["subnet"])
            assert not any(subnet.overlaps(pool) for pool in docker_pools), f"{subnet} is in Docker's pools"


def test_cluster_init_joins_the_nodes_once_they_answer(compose):
    services = compose["services"]
    init = services["cluster-init"]
    depends = init["depends_on"]
    assert set(depends) == set(CLUSTER_NODES)
    assert all(condition == {"condition": "service_healthy"} for condition in depends.values())
    script = " ".join(_command(init))
    create = re.search(r"redis-cli --cluster create ((?:\S+:\d+ )+)--cluster-yes", script)
    assert create, "cluster-init runs redis-cli --cluster create ... --cluster-yes"
    assert create.group(1).split() == [f"{name}:{port}" for name, port in CLUSTER_NODES.items()]
    assert str(init.get("restart", "no")) in ("no", "False"), "a one-shot service"
    # Every service has something at the image's VOLUME, else each container leaves an anonymous volume.
    for name, service in services.items():
        mounts = [v.split(":")[1] if isinstance(v, str) else v["target"] for v in service.get("volumes", [])]
        tmpfs = service.get("tmpfs") or []
        assert "/data" in mounts + ([tmpfs] if isinstance(tmpfs, str) else tmpfs), f"{name} has no /data mount"
    node_networks = {tuple(sorted(services[name].get("networks") or ["default"])) for name in CLUSTER_NODES}
    init_networks = tuple(sorted(init.get("networks") or ["default"]))
    assert node_networks == {init_networks}, "cluster-init reaches the nodes"


def readme_module_arguments() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Module arguments", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z_]+)`", line.split("|")[1]))
    return names


def test_module_arguments_in_compose_are_known_and_valid(compose, runtime_stage):
    known = readme_module_arguments()
    assert {"THREADS_PER_QUEUE", "PYTHON_ENV", "MODEL_EXECUTION_TIMEOUT", "TORCH"} <= known
    commands = [_cmd(runtime_stage)] + [_command(s) for s in compose["services"].values()]
    seen = 0
    for command in commands:
        if "--loadmodule" not in command:
            continue
        _, args = _loadmodule(command)
        assert len(args) % 2 == 0, f"module arguments are NAME VALUE pairs: {args}"
        for name in args[::2]:
            assert name.upper() in known, f"{name} is not a module argument (README's table)"
        try:  # the module's own check, as at load
            parse_module_args([a.encode() for a in args], "/opt/redisai", "/opt/redisai/.venv")
        except RedisAIError as e:
            pytest.fail(f"the module would refuse {args}: {e}")
        seen += len(args)
    assert seen, "compose shows how to pass module arguments"


# ------------------------------------------------------------------ the YAML reader itself

def test_yaml_subset_reader():
    text = """
a:
  b: "x: y"   # comment
  c: [ "p", 'q''s', 3, on ]
  d:
    - "1:2"
    - e: 5
      f: 1.5
    - plain # no comment inside
  g:
  h: [
     "long",
     "list"]
"""
    assert YamlSubset(text).parse() == {"a": {"b": "x: y", "c": ["p", "q's", 3, True],
                                              "d": ["1:2", {"e": 5, "f": 1.5}, "plain"], "g": None,
                                              "h": ["long", "list"]}}
    for bad in ("a: &anchor x", "a: 22:22", "a: |\n  text", "a:\n\tb: 1", "a: {b: 1}"):
        with pytest.raises(YamlSubsetError):
            YamlSubset(bad).parse()


def test_yaml_subset_reader_reads_compose_as_pyyaml_does():
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "docker-compose.yml").read_text()
    assert YamlSubset(text).parse() == yaml.safe_load(text)
