"""The README's and docs/' examples run as written, on models the project builds (python -m redisai.demo_models).

The code blocks are read from the markdown, so the tests follow its edits: redis-cli lines run in bash from the
directory the README's one-liner built the models in (a `redis-cli` on PATH adds `-e -p PORT`, so an error reply
fails the line), Python snippets are exec'd with the port put in, `redisai` lines run the venv's entry point.
What cannot run here is listed in SKIPPED, with the reason.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from server import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
HAVE_SKLEARN = all(importlib.util.find_spec(name) for name in ("sklearn", "skl2onnx"))

# Lines (or snippets, by their first line) that do not run here, and why. Anything else in the driven sections runs.
SKIPPED = {
    "redisai -h 10.0.0.5 -p 7000 -a secret ls": "names a server at 10.0.0.5; the connection options are "
                                                "tests/client/test_cli.py's",
    "Client(debug=False, enable_postprocess=True, *args, **kwargs)   # the rest is redis.Redis's":
        "a signature, not code (docs/client.md)",
    "from redisai.asyncio import Client\n\ncon = Client(host=\"127.0.0.1\", port=6379)\n"
    "await con.tensorset(\"x\", np.array([1, 2], dtype=np.float32))":
        "docs/client.md's asyncio sketch runs a model `m` on a tensor of shape [2]: no model the docs name takes "
        "one input of that shape (the README's asyncio snippet, which runs model.onnx, is driven)",
    "import io, torch\nbuffer = io.BytesIO(); torch.jit.save(torch.jit.script(MyModule()), buffer)":
        "a sketch: MyModule and bert_bytes are the reader's own (docs/commands.md, AI.MODELSTORE)",
    "AI.DAGEXECUTE LOAD 1 {u1}img PERSIST 1 {u1}label |> AI.SCRIPTEXECUTE {u1}pre normalize":
        "a sketch: {u1}pre and {u1}net are the reader's own script and model, the output values illustrative",
}

# docs/commands.md shows one snippet per command, each assuming keys an earlier section left in another shape:
# what each needs first (sent before it, on the same server).
DOCS_SETUP = {
    "AI.MODELEXECUTE {u1}mul ": [("redis-cli -x AI.MODELSTORE {u1}mul TF CPU INPUTS 2 a b OUTPUTS 1 c BLOB "
                                  "< graph.pb")],  # the section stored the graph as `mul`
    "AI.MODELRUN mymodel INPUTS a b": ["redis-cli AI.TENSORSET a FLOAT 2 VALUES 2 3",   # by then a is [2, 2], b INT8
                                       "redis-cli AI.TENSORSET b FLOAT 2 VALUES 3 5"],
    "AI.SCRIPTEXECUTE {user:42}scoring": ["redis-cli -x AI.MODELSTORE {user:42}churn TORCH CPU BLOB < churn.pt",
                                          "redis-cli -x AI.SCRIPTSTORE {user:42}scoring CPU ENTRY_POINTS 1 "
                                          "score_user SOURCE < score.py"],
}

# Commands whose trailing comment in the README is the output they print ("# 6 15").
READS = {"AI.TENSORGET", "HGET", "GET"}

# File names the documents' code blocks use that the demo does not build, and why.
NOT_BUILT = {"back.onnx": "written by `redisai model get`", "out.npy": "written by `redisai tensor get`",
             "addmul.py": "written by the docs' own heredoc", "FILE.npy": "a placeholder in a synopsis"}


@dataclass
class Block:
    document: str
    section: str  # the nearest "## " heading
    language: str
    text: str


def code_blocks(document: str) -> list[Block]:
    blocks, section, current = [], "", None
    for line in (ROOT / document).read_text().splitlines():
        if current is None and line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("```"):
            if current is None:
                current = Block(document, section, line[3:].strip(), "")
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.text += line + "\n"
    return blocks


def section_blocks(document: str, section_prefix: str, language: str | None = None) -> list[Block]:
    found = [b for b in code_blocks(document) if b.section.startswith(section_prefix)
             and (language is None or b.language == language)]
    assert found, f"{document}: no {language or ''} block under '## {section_prefix}'"
    return found


def skip_reason(text: str) -> str | None:
    text = text.strip()
    return next((why for start, why in SKIPPED.items() if text.startswith(start.strip())), None)


def split_comment(line: str) -> tuple[str, str]:
    """The command and its trailing `# comment` (a # outside quotes after a space, as bash reads it)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def shell_commands(text: str) -> list[str]:
    """A sh block's commands: continuation lines joined, a heredoc kept with its body, comment lines dropped."""
    commands, lines = [], iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + next(lines).lstrip()
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", split_comment(line)[0])
        if heredoc:
            body = []
            for body_line in lines:
                body.append(body_line)
                if body_line.strip() == heredoc.group(1):
                    break
            line = "\n".join([line, *body])
        commands.append(line)
    return commands


# ------------------------------------------------------------------ running them


class Shell:
    """Runs a document's shell lines in `cwd`, with redis-cli and redisai on PATH pointed at `port`."""

    def __init__(self, port: int, cwd: Path, tools: Path):
        self.port, self.cwd = port, cwd
        tools.mkdir(parents=True, exist_ok=True)
        # -e: an error reply makes redis-cli exit non-zero. Options after a redisai subcommand win over earlier ones.
        wrappers = {"redis-cli": f'exec {REDIS_CLI} -e -p {port} "$@"\n',
                    "redisai": f'exec {VENV_BIN / "redisai"} "$@" -p {port}\n'}
        for name, body in wrappers.items():
            (tools / name).write_text("#!/bin/bash\n" + body)
            (tools / name).chmod(0o755)
        self.env = {**os.environ, "PATH": f"{tools}:{VENV_BIN}:{os.environ['PATH']}"}

    def run(self, command: str, timeout: float = 180) -> str:
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout


def check_printed(command: str, comment: str, printed: str) -> None:
    """For a read, the README's comment is what it prints ('# 6 15'); `...` ends a prefix."""
    words = shlex.split(command)
    if not comment or "redis-cli" not in words or words[words.index("redis-cli") + 1].upper() not in READS:
        return
    expected = re.findall(r"[\w.+-]+", comment)
    got = printed.split()
    assert len(got) == len(expected), f"{command}: printed {printed!r}, the README says {comment!r}"
    for want, have in zip(expected, [g.strip('"') for g in got]):
        assert have.startswith(want[:-3]) if want.endswith("...") else have == want, (command, printed, comment)


def run_sh_block(shell: Shell, block: Block) -> int:
    ran = 0
    for command in shell_commands(block.text):
        if skip_reason(command) or "redisai.demo_models" in command or "demo-models" in command:
            continue  # the one-liner ran in the demo fixture
        code, comment = split_comment(command)
        check_printed(code, comment, shell.run(command))
        ran += 1
    return ran


def exec_python(text: str, port: int, cwd: Path, namespace: dict) -> str:
    """Runs a snippet as written but for the port (and a bare redis.Redis(), which means 6379), in `cwd`;
    top-level `await` as in an asyncio REPL. Returns what it printed."""
    source = text.replace("6379", str(port)).replace("redis.Redis()", f"redis.Redis(port={port})")
    code = compile(source, "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed = io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(printed):
            result = eval(code, namespace)  # noqa: S307 -- the README's own snippet, the point of the test
            if asyncio.iscoroutine(result):
                asyncio.run(result)
    finally:
        os.chdir(previous)
    return printed.getvalue()


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's one-liner, run as written from a directory of its own: the directory it leaves the shell in."""
    (line,) = [c for b in section_blocks("README.md", "Quick start", "sh") for c in shell_commands(b.text)
               if "demo_models" in c or "demo-models" in c]
    command = split_comment(line)[0].replace(".venv/bin/", f"{VENV_BIN}/")
    home = tmp_path_factory.mktemp("readme")
    done = subprocess.run(["bash", "-ec", f"{command} && pwd"], cwd=home, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = [line.split()[0] for line in done.stdout.splitlines() if " skipped: " in line]
    # `make test`'s environment has the backends; scikit-learn and skl2onnx come with the `real` extra only.
    assert skipped == ([] if HAVE_SKLEARN else ["iris.onnx"]), done.stdout
    assert "pip install 'redisai[real]'" in done.stdout or HAVE_SKLEARN
    return Path(done.stdout.splitlines()[-1])


@pytest.fixture
def shell(server, r, demo, tmp_path):
    """The worker's server, emptied (`r`): its backends stay loaded between the tests, which saves a minute."""
    instance = Shell(server.port, demo, tmp_path / "tools")
    instance.server = server
    return instance


# ------------------------------------------------------------------ README


def test_quick_start_redis_cli(shell):
    (block,) = section_blocks("README.md", "Quick start", "sh")
    assert run_sh_block(shell, block) >= 10
    client = shell.server.client()
    assert client.execute_command("AI.TENSORGET", "tScript", "VALUES") == [b"6", b"15"]
    assert client.execute_command("AI.TENSORGET", "out", "VALUES") == [b"1", b"4"]


def test_quick_start_python(shell):
    (block,) = section_blocks("README.md", "Quick start", "python")
    exec_python(block.text, shell.port, shell.cwd, {})
    assert shell.server.client().execute_command("AI.TENSORGET", "a", "META")[3] == [2, 3]


def test_python_client_section(shell):
    """The sync snippet, then the asyncio one in the same namespace (it uses the sync one's np and model)."""
    blocks = section_blocks("README.md", "The Python client", "python")
    namespace: dict = {}
    printed = "".join(exec_python(block.text, shell.port, shell.cwd, namespace) for block in blocks)
    assert len(blocks) == 2 and "['OK', array(" in printed
    assert namespace["y"].shape == (1, 3)
    np.testing.assert_allclose(namespace["y"].sum(), 1.0, rtol=1e-6)  # model.onnx ends in a softmax


def test_command_line_tool_section(shell):
    (block,) = section_blocks("README.md", "The command-line tool", "sh")
    lines = shell_commands(block.text)
    server_lines = [line for line in lines if line.startswith("redisai server")]
    ran = run_sh_block(shell, Block(block.document, block.section, "sh",
                                    "\n".join(line for line in lines if line not in server_lines)))
    assert ran >= 6
    assert (shell.cwd / "back.onnx").read_bytes() == (shell.cwd / "resnet.onnx").read_bytes()
    assert np.array_equal(np.load(shell.cwd / "out.npy"), np.load(shell.cwd / "a.npy"))
    assert shell.server.client().execute_command("AI.MODELGET", "mymodel", "META")[4:6] == [b"tag", b"v1"]

    # `redisai server` as written but on a free port (the line's own may be taken): serves with the module.
    (line,) = server_lines
    command = split_comment(line)[0]
    port = free_port()
    words = [str(port) if word == "6380" else word for word in shlex.split(command)]
    assert str(port) in words, "the README's `redisai server` line no longer says --port 6380"
    process = subprocess.Popen([str(VENV_BIN / "redisai"), *words[1:], "--dir", str(shell.cwd / "server-data")],
                               cwd=shell.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import redis

        client = redis.Redis(port=port)

        def answers():
            try:
                return client.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE")
            except redis.ConnectionError:
                assert process.poll() is None, process.stderr.read()

        wait_for(answers, timeout=120, message="redisai server")
        assert client.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1) == b"OK"
        with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes
            client.shutdown(nosave=True)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_scripts_that_call_redis_section(shell):
    """The feature-store example: the script the README shows is score.py, and the score is the one shown."""
    (script,) = section_blocks("README.md", "Scripts that call Redis", "python")
    assert script.text == (shell.cwd / "score.py").read_text()
    (block,) = section_blocks("README.md", "Scripts that call Redis", "sh")
    assert run_sh_block(shell, block) == 5


# ------------------------------------------------------------------ docs/


def redis_cli_sessions(document: str):
    """Each `> command` / `$ command` of the document's blocks with the output lines shown under it."""
    for block in code_blocks(document):
        entries = []
        for line in block.text.splitlines():
            if line.startswith(("> ", "$ ")):
                entries.append([line[:1], line[2:], []])
            elif entries:
                entries[-1][2].append(line)
        yield block, entries


def same_output(printed: list[str], shown: list[str]) -> bool:
    """Line for line, but a float32 result printed to 17 digits may differ in its last (the kernel's rounding)."""
    number = re.compile(r'^(.*")(-?\d+\.\d{9,}(?:e-?\d+)?)"$')

    def close(a: str, b: str) -> bool:
        ma, mb = number.match(a), number.match(b)
        if ma and mb and ma.group(1) == mb.group(1):
            return abs(float(ma.group(2)) - float(mb.group(2))) <= 1e-6 * abs(float(mb.group(2)))
        return a == b

    return len(printed) == len(shown) and all(close(a, b) for a, b in zip(printed, shown))


def test_docs_commands_examples(shell):
    """docs/commands.md's redis-cli sessions (`>`: interactive, output as redis-cli prints it), shell lines (`$`)
    and Python snippets, in the document's order on one server."""
    client = shell.server.client()
    namespace = {"r": client}
    ran = 0
    for block, entries in redis_cli_sessions("docs/commands.md"):
        if block.language == "python":
            if block.text.startswith("def "):
                assert block.text == (shell.cwd / "score.py").read_text()  # TorchScript source: score.py
            elif not skip_reason(block.text):
                exec_python(block.text, shell.port, shell.cwd, namespace)
                ran += 1
            continue
        for kind, command, shown in entries:
            if skip_reason(command):
                continue
            for start, setup in DOCS_SETUP.items():
                if command.startswith(start):
                    for line in setup:
                        shell.run(line)
            if kind == "$":
                # a heredoc's body is shown under its command, and is part of it
                body = "\n".join(shown) if "<<" in command else ""
                printed = shell.run(command + ("\n" + body if body else ""))
                shown = [] if body else shown
            else:
                printed = shell.run(shlex.join(["redis-cli", "--no-raw", *shlex.split(command)]))
            if shown:
                assert same_output(printed.rstrip("\n").splitlines(), shown), f"{command}: printed\n{printed}"
            ran += 1
    assert ran >= 20
    assert client.execute_command("AI.TENSORGET", "{u1}scaled", "VALUES") == [b"20", b"30"]


def test_docs_client_examples(shell):
    """docs/client.md's Python snippets: each runs, or SKIPPED says why not (its other blocks are synopses)."""
    blocks = [b for b in code_blocks("docs/client.md") if b.language == "python"]
    assert blocks
    namespace: dict = {"np": np}
    for block in blocks:
        if not skip_reason(block.text):
            exec_python(block.text, shell.port, shell.cwd, namespace)


# Where a command reads a file: a redirect, `cat FILE |`, load_model/load_script, the CLI's FILE arguments.
FILE_READS = re.compile(r"<\s*([\w.-]+)|\bcat\s+([\w.-]+)\s*\||load_(?:model|script)\(\s*[\"']([\w.-]+)[\"']"
                        r"|redisai\s+(?:model|script)\s+store\s+\S+\s+([\w.-]+)|redisai\s+tensor\s+set\s+\S+\s+([\w.-]+)")


def test_docs_model_files_are_built(demo):
    """Every file the documents' code blocks read is one the demo builds (or is listed in NOT_BUILT)."""
    documents = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md")))]
    read = {name for document in documents for block in code_blocks(document)
            for match in FILE_READS.findall(block.text) for name in match if "." in name}  # not <key>
    assert {"graph.pb", "resnet.onnx", "model.onnx", "churn.pt", "score.py", "script.py", "a.npy"} <= read
    missing = sorted(read - set(os.listdir(demo)) - set(NOT_BUILT))
    assert not missing, f"read by the documents' commands, not built by redisai.demo_models: {missing}"


# ------------------------------------------------------------------ the demo models themselves


def test_every_demo_model_serves(shell):
    """Each model serves with the shapes its description gives, and the twins agree."""
    from redisai.demo_models import DEMOS

    client = shell.server.client()
    read = lambda name: (shell.cwd / name).read_bytes()  # noqa: E731
    client.execute_command("AI.TENSORSET", "ab", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, 4, "VALUES", 5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3)
    image = np.random.default_rng(0).random((3, 3, 40, 56), dtype=np.float32)
    client.execute_command("AI.TENSORSET", "image", "FLOAT", *image.shape, "BLOB", image.tobytes())
    runs = {
        "graph.pb": (["TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c"], ["ab", "ab"], 1),
        "mul.tflite": (["TFLITE", "CPU"], ["ab", "ab"], 1),
        "model.pt2": (["TORCH", "CPU"], ["x"], 1),
        "model.onnx": (["ONNX", "CPU"], ["x"], 1),
        **({"iris.onnx": (["ONNX", "CPU"], ["x"], 2)} if HAVE_SKLEARN else {}),
        "resnet.onnx": (["ONNX", "CPU", "BATCHSIZE", 16], ["image"], 1),
    }
    outputs = {}
    for name, (store, inputs, n_outputs) in runs.items():
        assert client.execute_command("AI.MODELSTORE", name, *store, "BLOB", read(name)) == b"OK"
        keys = [f"{name}:{i}" for i in range(n_outputs)]
        assert client.execute_command("AI.MODELEXECUTE", name, "INPUTS", len(inputs), *inputs,
                                      "OUTPUTS", n_outputs, *keys) == b"OK"
        outputs[name] = [client.execute_command("AI.TENSORGET", key, "META", "VALUES") for key in keys]
    values = lambda reply: np.array([float(v) for v in reply[5]])  # noqa: E731
    for name in ("graph.pb", "mul.tflite"):
        assert values(outputs[name][0]).tolist() == [4, 9]
    np.testing.assert_allclose(values(outputs["model.pt2"][0]), values(outputs["model.onnx"][0]), atol=1e-6)
    assert outputs["model.onnx"][0][3] == [2, 3]
    if HAVE_SKLEARN:
        label, probabilities = outputs["iris.onnx"]
        assert label[1] == b"INT64" and [int(v) for v in label[5]] == [0, 2]  # a setosa and a virginica
        assert probabilities[3] == [2, 3]
    assert outputs["resnet.onnx"][0][3] == [3, 10]

    assert client.execute_command("AI.MODELSTORE", "churn", "TORCH", "CPU", "BLOB", read("churn.pt")) == b"OK"
    assert client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 2, "f", "g",
                                  "SOURCE", read("script.py")) == b"OK"
    assert client.execute_command("AI.SCRIPTEXECUTE", "s", "g", "INPUTS", 1, "ab", "ARGS", 1, "10",
                                  "OUTPUTS", 1, "g") == b"OK"
    assert client.execute_command("AI.TENSORGET", "g", "VALUES") == [b"20", b"30"]
    covered = set(runs) | {"churn.pt", "script.py", "score.py", "a.npy", "iris.onnx"}
    assert covered == {demo.name for demo in DEMOS}, "a new demo file needs a case here"


@pytest.mark.parametrize("command", [[str(PYTHON), "-m", "redisai.demo_models"], [str(VENV_BIN / "redisai"), "demo-models"]],
                         ids=["python -m redisai.demo_models", "redisai demo-models"])
def test_demo_models_commands(command, tmp_path):
    """Only the files asked for; an unknown name is a usage error that names the known ones."""
    done = subprocess.run([*command, str(tmp_path / "out"), "script.py", "a.npy"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.npy", "script.py"]
    assert "2 of 2 files in" in done.stdout
    done = subprocess.run([*command, str(tmp_path), "nope.onnx"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown demo file nope.onnx" in done.stderr and "graph.pb" in done.stderr


# ------------------------------------------------------------------ examples/


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_example_runs_as_its_docstring_says(example, server, r):
    """`.venv/bin/python examples/<example>` (with --port, as each docstring offers) runs to the end."""
    text = (ROOT / "examples" / example).read_text()
    assert f".venv/bin/python examples/{example}" in text and "--port" in text
    done = subprocess.run([str(PYTHON), f"examples/{example}", "--port", str(server.port)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
