"""A child process for tests/fast/test_sandbox.py: closes the sandbox on itself as an executor does, then
tries what the test asks and prints one JSON line: {"layers": ..., "outcomes": {check: outcome}, ...}.

Its configuration comes as JSON on stdin, read before anything else (after `begin` no file outside the
environment can be opened). `begin` runs before numpy or any framework is imported: they start threads,
and Landlock binds only the thread that applies it and the threads started after.

An outcome is "ok", "ok:<detail>", or "<exception>:<errno name>" ("PermissionError:EPERM").
"""

import base64
import json
import os
import sys
import time

config = json.loads(sys.stdin.read())
blobs = {name: base64.b64decode(text) for name, text in config.get("blobs", {}).items()}

sys.path.insert(0, config["src"])
from redisai.executor import sandbox  # noqa: E402

if config.get("libseccomp"):
    sandbox.LIBSECCOMP = config["libseccomp"]  # a library this system lacks: the no-libseccomp path
if config.get("thread_before_begin"):  # as when numpy or a framework was imported first
    import threading

    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
readable = sandbox.default_readable()
started = time.perf_counter()
sandbox.begin(readable, cgroup_dir=config.get("cgroup_dir"), landlock=config.get("landlock", True))
begin_seconds = time.perf_counter() - started


def outcome(action) -> str:
    try:
        detail = action()
    except BaseException as error:  # the point is to report whatever it was
        code = getattr(error, "errno", None)
        return f"{type(error).__name__}:{errno_name(code)}" if code else f"{type(error).__name__}:{error}"
    return "ok" if detail is None else f"ok:{detail}"


def rounded(tensor) -> list:
    return [round(float(value), 4) for value in tensor.reshape(-1).tolist()]


def errno_name(code: int) -> str:

    return errno.errorcode.get(code, str(code))


# ----------------------------------------------------------------------------------------- frameworks

class Frameworks:
    """Each backend as the server's backends use it: a model loaded from bytes and run, a TorchScript
    compile, a torch.export program."""

    def __init__(self):
        self.names = []
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # else onnxruntime opens a database under ~/.cache

    def load(self, name):
        self.names.append(name)
        import numpy

        self.np = numpy
        if name == "onnx":
            import onnxruntime

            self.ort = onnxruntime
        elif name == "torch":
            import torch

            self.torch = torch
        elif name == "tf":
            import tensorflow

            self.tf = tensorflow
        elif name == "tflite":
            import ai_edge_litert.interpreter as litert

            self.litert = litert

    def onnx(self, blob, feeds):
        session = self.ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        return session, session.run(None, feeds)[0]

    def run_all(self, round_name: str) -> dict:
        """Loads and runs `<backend>_<round_name>` of each backend. The models of a round: `warm` (a * b,
        and a + a * b for TorchScript) or `fresh` (others than warm's, so that new kernels load: an MLP
        for ONNX, two outputs for TorchScript, a reshape and sum for TF); LiteRT and torch.export run the
        same program again. Each result: "ok:<the first output as a list>" or the error."""
        np, results, fresh = self.np, {}, round_name == "fresh"
        two = np.array([2.0, 3.0], np.float32)
        if "onnx" in self.names:
            feeds = {"x": np.ones((2, 4), np.float32)} if fresh else {"a": two, "b": two}
            results["onnx"] = outcome(lambda: rounded(self.onnx(blobs["onnx_" + round_name], feeds)[1]))
        if "torch" in self.names:
            torch = self.torch

            def torchscript():
                import io

                module = torch.jit.load(io.BytesIO(blobs["torch_" + round_name]))
                if fresh:
                    return rounded(module(torch.tensor([2.0, 3.0]))[0])
                return rounded(module(torch.tensor([2.0, 3.0]), torch.tensor([2.0, 3.0])))

            def compile_script():
                unit = torch.jit.CompilationUnit()
                unit.define(f"def f_{round_name}(x):\n    return x * 2 + 1\n")
                return rounded(getattr(unit, f"f_{round_name}")(torch.tensor([1.0])))

            def exported():
                import io

                program = torch.export.load(io.BytesIO(blobs["torch_exported"]))
                return rounded(program.module()(torch.ones(1, 4))[0])

            results["torch"] = outcome(torchscript)
            results["torch_compile"] = outcome(compile_script)
            results["torch_export"] = outcome(exported)
        if "tf" in self.names:
            tf = self.tf

            def graph():
                graph_def = tf.compat.v1.GraphDef()
                graph_def.ParseFromString(blobs["tf_" + round_name])
                graph = tf.Graph()
                with graph.as_default():
                    tf.compat.v1.import_graph_def(graph_def, name="")
                with tf.compat.v1.Session(graph=graph) as session:
                    if fresh:
                        return rounded(session.run("y:0", {"x:0": np.ones((1, 28, 28), np.float32)}))
                    return rounded(session.run("c:0", {"a:0": two, "b:0": two}))

            results["tf"] = outcome(graph)
        if "tflite" in self.names:
            def lite():
                interpreter = self.litert.Interpreter(model_content=blobs["tflite"])
                interpreter.allocate_tensors()
                for detail in interpreter.get_input_details():
                    interpreter.set_tensor(detail["index"], two)
                interpreter.invoke()
                return rounded(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

            results["tflite"] = outcome(lite)
        return results

    def hostile_torch_pickle(self) -> bytes:
        """A torch.save archive whose pickle calls os.system when torch.load unpickles it (what
        weights_only=False allows): made here, before close, since it is only bytes."""
        import io

        class Touch:
            def __reduce__(self):
                return os.system, (f"touch {config['created']}",)

        buffer = io.BytesIO()
        self.torch.save(Touch(), buffer)
        return buffer.getvalue()

    def hostile_loaders(self, hostile_pickle) -> dict:
        """What the loaders' own interpreters reach once closed: os.system through torch.load's unpickler, and
        TensorFlow's ReadFile and WriteFile kernels on the secret."""
        results = {}
        if hostile_pickle is not None:
            import io

            results["torch_load_os_system"] = outcome(
                lambda: self.torch.load(io.BytesIO(hostile_pickle), weights_only=False))
        if "tf" in self.names:
            tf = self.tf

            def file_op(write: bool):
                graph = tf.Graph()
                with graph.as_default():
                    if write:
                        tf.io.write_file(config["created"], "x", name="c")
                    else:
                        tf.io.read_file(config["secret"], name="c")
                with tf.compat.v1.Session(graph=graph) as session:
                    return session.run("c" if write else "c:0")

            results["tf_read_file"] = outcome(lambda: file_op(False))
            results["tf_write_file"] = outcome(lambda: file_op(True))
        return {name: result[:160] for name, result in results.items()}

    def onnx_timing(self, runs: int) -> float:
        """Seconds per run of the tiny ONNX model, the best of 5 rounds of `runs` runs."""
        two = self.np.array([2.0, 3.0], self.np.float32)
        session, _ = self.onnx(blobs["onnx_warm"], {"a": two, "b": two})
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(runs):
                session.run(None, {"a": two, "b": two})
            best = min(best, (time.perf_counter() - started) / runs)
        return best


def status() -> dict:
    with open("/proc/self/status") as file:
        values = dict(line.split(":", 1) for line in file)
    return {key: values[key].strip() for key in ("VmData", "VmRSS", "VmSize", "Threads")}


report = {"begin_seconds": begin_seconds, "readable": readable}
frameworks = None
if config.get("frameworks"):
    footprint = {"start": status()}
    frameworks = Frameworks()
    for name in config["frameworks"]:
        frameworks.load(name)
        footprint["import " + name] = status()
    report["warm"] = frameworks.run_all("warm")
    hostile_pickle = frameworks.hostile_torch_pickle() if "torch" in frameworks.names else None
    footprint["warm"] = status()
    report["footprint"] = footprint
    if config.get("timing_runs"):
        report["onnx_seconds_before"] = frameworks.onnx_timing(config["timing_runs"])

# What the checks below use, imported before close as an executor imports what it runs: without Landlock
# nothing can be imported afterwards, and the checks are about the system calls, not the imports.
import ctypes  # noqa: E402
import errno  # noqa: E402
import fcntl  # noqa: E402
import mmap  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402

# A thread started between begin and close, as the frameworks' pools are: it runs its checks once the
# sandbox is closed (Landlock is inherited from the thread that began it, seccomp synchronised onto it).
between = {"go": threading.Event(), "done": threading.Event(), "outcomes": {}}


def between_thread():
    between["go"].wait()
    for name in config.get("between_checks", []):
        between["outcomes"][name] = outcome(CHECKS[name])
    between["done"].set()


if config.get("between_checks"):
    threading.Thread(target=between_thread, daemon=True).start()

memory_limit = config.get("memory_limit", 0)
if config.get("memory_headroom"):  # a budget on top of what the executor holds now, as the worker sizes it
    memory_limit = sandbox.data_size() + config["memory_headroom"]
report["memory_limit"] = memory_limit
started = time.perf_counter()
layers = sandbox.close(memory_limit)
report["close_seconds"] = time.perf_counter() - started
report["layers"] = {**layers.__dict__, "notes": list(layers.notes)}

if frameworks is not None:
    report["fresh"] = frameworks.run_all("fresh")
    report["loaders"] = frameworks.hostile_loaders(hostile_pickle)
    if config.get("timing_runs"):
        report["onnx_seconds_after"] = frameworks.onnx_timing(config["timing_runs"])


# ----------------------------------------------------------------------------------------- hostile checks

def read(path):
    with open(path, "rb") as file:
        return len(file.read())


def write_new(path):
    with open(path, "w") as file:
        file.write("x")


def append(path):
    with open(path, "a") as file:
        file.write("x")


def low_level_create(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def import_fresh(candidates):
    """Imports the first of `candidates` that is not imported yet (the frameworks import many)."""
    name = next(name for name in candidates if name not in sys.modules)
    __import__(name)
    return name


def thread():
    import threading

    box = []
    worker = threading.Thread(target=lambda: box.append(sum(range(1000))))
    worker.start()
    worker.join()
    return box[0]


def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def system(target):
    code = os.system(f"touch {target}")
    return f"{code}:{os.path.exists(target)}"


def subprocess_run():

    subprocess.run(["/bin/true"])


def execv():
    os.execv("/bin/true", ["true"])


def socket_new():

    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def socket_unix():

    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def socketpair():

    for end in socket.socketpair():
        end.close()


def ptrace_attach(pid):

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, pid, None, None) == -1:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def process_vm_readv(pid):

    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(8)
    local, remote = Iovec(ctypes.addressof(buffer), 8), Iovec(0x400000, 8)
    if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def memfd():

    fd = os.memfd_create("tensor", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, 1 << 20)
    with mmap.mmap(fd, 1 << 20) as mapped:
        mapped[:5] = b"hello"
        mapped.flush()
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    value = os.pread(fd, 5, 0).decode()
    os.close(fd)
    return value


def allocate(size):
    block = bytearray(size)
    return len(block)


def raise_rlimit():

    resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def renice():
    os.setpriority(os.PRIO_PROCESS, 0, -5)


def fcntl_setown(pid):

    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETOWN, pid)


def pidfd(pid):
    os.close(os.pidfd_open(pid))


# x86_64 numbers of calls a computation never makes, each made raw (through ctypes, all arguments 0, which
# is harmless even where a call is allowed): every one must be refused by the filter itself.
RAW_X86_64 = {
    "io_uring_setup": 425, "userfaultfd": 323, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
    "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "chroot": 161, "pivot_root": 155,
    "init_module": 175, "finit_module": 313, "open_by_handle_at": 304, "name_to_handle_at": 303, "ptrace": 101,
    "process_vm_writev": 311, "pidfd_getfd": 438, "pidfd_open": 434, "setuid": 105, "setpriority": 141,
    "sched_setscheduler": 144, "mlockall": 151, "shmget": 29, "msgget": 68, "semget": 64, "mq_open": 240,
    "fanotify_init": 300, "inotify_init1": 294, "syslog": 103, "personality": 135, "seccomp": 317,
    "landlock_create_ruleset": 444, "memfd_secret": 447, "process_madvise": 440, "kcmp": 312, "move_pages": 279,
    "migrate_pages": 256, "io_setup": 206, "tkill": 200, "rt_sigqueueinfo": 129, "execveat": 322, "creat": 85,
    "sync": 162, "setrlimit": 160, "capset": 126, "splice": 275, "copy_file_range": 326, "flock": 73,
    "sendfile": 40, "mknodat": 259, "fchmod": 91, "fchown": 93, "utimensat": 280, "setxattr": 188,
    "fsetxattr": 190, "clone3": 435, "openat2": 437,
}


def raw_syscalls():
    """{name: errno name} of RAW_X86_64's calls."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    results = {}
    for name, number in RAW_X86_64.items():
        zero = ctypes.c_long(0)
        ctypes.set_errno(0)
        code = libc.syscall(ctypes.c_long(number), zero, zero, zero, zero, zero)
        results[name] = "ok" if code >= 0 else errno_name(ctypes.get_errno())
    return json.dumps(results)


def x32_syscall():
    """getpid through the x32 ABI (the number with bit 30 set): a call the filter's argument checks would
    not see, which must end the process."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(ctypes.c_long(0x40000000 | 39))


CHECKS = {
    "raw_syscalls": raw_syscalls,
    "x32_syscall": x32_syscall,
    "read_passwd": lambda: read("/etc/passwd"),
    "read_secret": lambda: read(config["secret"]),
    "read_secret_low_level": lambda: os.close(os.open(config["secret"], os.O_RDONLY)),
    "read_venv_file": lambda: read(sandbox.__file__),
    "read_stdlib_file": lambda: read(os.path.join(os.path.dirname(os.__file__), "colorsys.py")),
    "read_proc_self_status": lambda: read("/proc/self/status"),
    "read_parent_environ": lambda: read(f"/proc/{os.getppid()}/environ"),
    "read_parent_cwd_file": lambda: read(f"/proc/{os.getppid()}/cwd/{config['parent_cwd_file']}"),
    "read_parent_mem": lambda: read(f"/proc/{os.getppid()}/mem"),
    "read_secret_via_proc_self_root": lambda: read(f"/proc/self/root{config['secret']}"),
    "read_parent_via_proc_self_dotdot": lambda: read(f"/proc/self/../{os.getppid()}/environ"),
    "list_secret_dir": lambda: len(os.listdir(os.path.dirname(config["secret"]))),
    "import_stdlib_module": lambda: import_fresh(["tabnanny", "colorsys", "netrc", "plistlib"]),
    "import_stdlib_package": lambda: import_fresh(["tomllib", "xmlrpc.client", "wsgiref.simple_server"]),
    "import_stdlib_extension": lambda: import_fresh(["_lzma", "_bz2", "_curses", "_dbm", "audioop"]),
    "write_new_file": lambda: write_new(config["created"]),
    "create_low_level": lambda: low_level_create(config["created"]),
    "append_secret": lambda: append(config["secret"]),
    "truncate_secret": lambda: os.truncate(config["secret"], 0),
    "unlink_secret": lambda: os.unlink(config["secret"]),
    "rename_secret": lambda: os.rename(config["secret"], config["created"]),
    "chmod_secret": lambda: os.chmod(config["secret"], 0o777),
    "mkdir": lambda: os.mkdir(config["created"]),
    "symlink": lambda: os.symlink(config["secret"], config["created"]),
    "link": lambda: os.link(config["secret"], config["created"]),
    "socket_inet": socket_new,
    "socket_unix": socket_unix,
    "socketpair": socketpair,
    "os_system": lambda: system(config["created"]),
    "subprocess": subprocess_run,
    "fork": fork,
    "execv": execv,
    "thread": thread,
    "kill_self_0": lambda: os.kill(os.getpid(), 0),
    "kill_parent_0": lambda: os.kill(os.getppid(), 0),
    "ptrace_parent": lambda: ptrace_attach(os.getppid()),
    "process_vm_readv_parent": lambda: process_vm_readv(os.getppid()),
    "pidfd_parent": lambda: pidfd(os.getppid()),
    "memfd_mmap_ftruncate": memfd,
    "allocate_past_limit": lambda: allocate(memory_limit),
    "allocate_small": lambda: allocate(1 << 20),
    "raise_rlimit": raise_rlimit,
    "renice": renice,
    "fcntl_setown_parent": lambda: fcntl_setown(os.getppid()),
}

report["outcomes"] = {name: outcome(CHECKS[name]) for name in config.get("checks", [])}
if config.get("between_checks"):
    between["go"].set()
    between["done"].wait(60)
    report["between_outcomes"] = between["outcomes"]
print(json.dumps(report), flush=True)

# Memory bombs last, one line each: a framework that aborts on a failed allocation ends the process.
for name in config.get("bombs", []):
    bomb, started = blobs[f"{name}_memory_bomb"], time.perf_counter()
    one = frameworks.np.ones(1, frameworks.np.float32)
    if name == "onnx":
        result = outcome(lambda: rounded(frameworks.onnx(bomb, {"x": one})[1]))
    elif name == "torch":
        import io

        result = outcome(lambda: rounded(frameworks.torch.jit.load(io.BytesIO(bomb))(frameworks.torch.ones(1))))
    elif name == "tf":
        def run_tf_bomb():
            tf = frameworks.tf
            graph_def = tf.compat.v1.GraphDef()
            graph_def.ParseFromString(bomb)
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            with tf.compat.v1.Session(graph=graph) as session:
                return rounded(session.run("y:0", {"x:0": one}))

        result = outcome(run_tf_bomb)
    else:
        def run_tflite_bomb():
            interpreter = frameworks.litert.Interpreter(model_content=bomb)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], one)
            interpreter.invoke()
            return rounded(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

        result = outcome(run_tflite_bomb)
    print(json.dumps({"bomb": name, "outcome": result[:300], "seconds": round(time.perf_counter() - started, 2),
                      "after": outcome(thread)}), flush=True)
