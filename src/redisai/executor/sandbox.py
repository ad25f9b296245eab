"""The executor's sandbox: the operating system's layers a process closes on itself, so that a model or
script running in it reaches none of the server's files, sockets, processes or privileges.

Two steps, because Landlock binds only the thread that applies it and the threads that thread starts later
(until Linux has LANDLOCK_RESTRICT_SELF_TSYNC), while seccomp can be synchronised onto every thread:

1. `begin(readable, cgroup_dir)`, first thing in the executor, while it is still one thread (before numpy,
   whose OpenBLAS starts a thread, or any framework): moves the process into the memory cgroup the server
   prepared (`prepare_cgroup`), drops every capability, sets no_new_privs and applies Landlock: read access
   beneath `readable` and nothing else (no write, creation, removal or execution anywhere, no TCP, no signal
   or abstract unix socket outside the process). The frameworks are then imported under it.
2. `close(memory_limit)`, once the frameworks are imported and warmed (so that nothing lazy needs a file the
   sandbox refuses): rlimits, and a seccomp filter, an allow-list, on every thread: what is not listed
   fails with EPERM. Opens stay allowed read-only where Landlock holds, and are all refused where it does
   not (reads would otherwise reach the server's dump.rdb by its absolute path). Returns `Layers`.

Both steps are irreversible and fail closed: a layer that cannot be applied is reported in `Layers.notes`,
never silently skipped, and no layer relies on the process's good will afterwards (every knob a layer sets
is itself refused by the filter).

Refusals return EPERM rather than killing: a framework gets an error it reports, the executor keeps serving
its other models, and the worker needs no special case. Two exceptions: a syscall of another ABI (32-bit
int 0x80 or x32 calls from this 64-bit process, which only an exploit makes) kills the process, since the
filter's argument checks would not apply to it; and clone3/openat2 answer ENOSYS, so that glibc falls back
to clone/openat, whose flags the filter can inspect (clone3 and openat2 pass them in memory it cannot read).

No Python package does this well today (pyseccomp is unmaintained, the Landlock bindings are young), so this
is libseccomp through cffi (ABI mode: no compiler; Debian's libseccomp2 is installed with apt) and
Landlock's three system calls, also through cffi.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import sys
import tempfile
import termios
from dataclasses import dataclass, field

import cffi

__all__ = ["Layers", "begin", "close", "data_size", "default_readable", "executor_environment", "landlock_abi",
           "prepare_cgroup", "remove_cgroup"]


@dataclass(frozen=True)
class Layers:
    """What holds in a closed executor, for INFO; `notes` says why each layer that does not hold does not."""

    no_new_privs: bool
    seccomp: bool
    landlock: int  # the Landlock ABI applied, 0 for none
    memory: str  # "cgroup2" | "rlimit_data" | "none"
    memory_limit: int  # bytes, 0 for none
    capabilities_dropped: bool
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """One line: `seccomp=yes landlock=7 no_new_privs=yes memory=cgroup2:1073741824 capabilities=none`."""
        memory = f"{self.memory}:{self.memory_limit}" if self.memory != "none" else "none"
        return (f"seccomp={'yes' if self.seccomp else 'no'} landlock={self.landlock} "
                f"no_new_privs={'yes' if self.no_new_privs else 'no'} memory={memory} "
                f"capabilities={'none' if self.capabilities_dropped else 'kept'}")


# ----------------------------------------------------------------------------------------- the C side

_ffi = cffi.FFI()
_ffi.cdef("""
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);

    struct landlock_ruleset_attr { uint64_t handled_access_fs; uint64_t handled_access_net; uint64_t scoped; };

    struct cap_header { uint32_t version; int pid; };
    struct cap_data { uint32_t effective; uint32_t permitted; uint32_t inheritable; };
    int capget(struct cap_header *header, struct cap_data *data);
    int capset(struct cap_header *header, const struct cap_data *data);

    typedef void *scmp_filter_ctx;
    struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
    struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
    const struct scmp_version *seccomp_version(void);
    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                               const struct scmp_arg_cmp *arg_array);
    int seccomp_load(scmp_filter_ctx ctx);
""")
# The kernel reads this one packed (12 bytes), hence its own cdef.
_ffi.cdef("struct landlock_path_beneath_attr { uint64_t allowed_access; int32_t parent_fd; };", packed=True)

_libc = _ffi.dlopen(None)

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every architecture.
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_READ_FILE, _FS_READ_DIR = 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym: every right of ABI 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_PR_SET_NO_NEW_PRIVS, _PR_GET_NO_NEW_PRIVS = 38, 39
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# libseccomp (seccomp.h), Debian's libseccomp2 (a dependency of apt, so in every Debian image)
LIBSECCOMP = "libseccomp.so.2"
_SCMP_ACT_KILL_PROCESS = 0x80000000
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_FLTATR_ACT_BADARCH, _SCMP_FLTATR_CTL_NNP, _SCMP_FLTATR_CTL_TSYNC, _SCMP_FLTATR_CTL_OPTIMIZE = 2, 3, 4, 8
_SCMP_CMP_EQ, _SCMP_CMP_MASKED_EQ = 4, 7


def _scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


# ----------------------------------------------------------------------------------------- state

_state: dict = {"begun": False, "closed": False, "cgroup_limit": 0, "capabilities_dropped": False,
               "no_new_privs": False, "landlock": 0, "begin_notes": []}


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def data_size() -> int:
    """What RLIMIT_DATA counts of this process now (VmData, bytes): an executor's limit is this, at close,
    plus its budget."""
    value = _status("VmData")
    return int(value.split()[0]) * 1024 if value else 0


def _status(field_name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name == field_name:
                return value.strip()
    return ""


# ----------------------------------------------------------------------------------------- readable paths

# What the frameworks read, found with strace while importing torch, TensorFlow, ONNX Runtime and LiteRT
# and loading and running a model of each (see tests/fast/test_sandbox.py). Not /etc/passwd, /etc/hosts,
# /etc/resolv.conf, /etc/ssl, ~/.keras, ~/.cache, /tmp: what tries them (getpass, ORT's telemetry, Keras's
# config, tempfile) copes with a refusal.
_SYSTEM_READABLE = (
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib",  # shared libraries, locales, gconv
    "/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo", "/usr/share/locale/locale.alias",
    "/proc/self",  # resolved when the rule is made: this process's /proc/<pid>, its threads beneath
    "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
    "/sys/devices/system/cpu", "/sys/devices/system/node",  # CPU counts, NUMA (and the own cgroups, below)
    "/sys/kernel/mm/transparent_hugepage", "/sys/kernel/mm/hugepages",
    "/dev/null", "/dev/zero", "/dev/urandom",
)


def default_readable(exclude: tuple[str, ...] | list[str] = ()) -> list[str]:
    """What an executor reads: this Python (the environment, its stdlib, site-packages, the package of this
    module) and the system's libraries and CPU descriptions. A directory that holds (or is) a path of
    `exclude` (the server's working directory, its dump and AOF files) is dropped, since a read rule
    covers everything beneath it."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../redisai
    candidates = [sys.prefix, sys.exec_prefix, package_dir]
    candidates += [entry for entry in sys.path if entry and os.path.isabs(entry)]
    candidates += _SYSTEM_READABLE
    candidates += _own_cgroup_dirs()  # CPU quotas and cpusets, which size the thread pools; not other cgroups'
    excluded = [os.path.realpath(path) for path in exclude]
    readable = []
    for path in candidates:
        resolved = os.path.realpath(path)
        if resolved == "/" or not os.path.exists(resolved) or resolved in readable:
            continue
        if any(bad == resolved or bad.startswith(resolved.rstrip("/") + "/") for bad in excluded):
            continue
        readable.append(path if path == "/proc/self" else resolved)
    return readable


def executor_environment(directory: str) -> dict[str, str]:
    """The environment to spawn an executor with, in `directory` (its cwd: empty, never the server's): none
    of the server's variables (a model reads its own /proc/self/environ), a home where the frameworks find
    no configuration to read and create nothing (TensorFlow's Keras reads ~/.keras/keras.json, ONNX
    Runtime's telemetry opens a database under ~/.cache), and who the user is, which getpass would otherwise
    look up in /etc/passwd, which the sandbox does not let it read."""
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return {"HOME": directory, "TMPDIR": directory, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
            "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
            "ORT_DISABLE_TELEMETRY": "1",  # else onnxruntime 1.32 reports to Microsoft's collector
            # torch.export's import (torch._dynamo) makes sure its cache directory exists, creating none
            # when it does: the empty cwd, where it would write nothing (and could not).
            "TORCHINDUCTOR_CACHE_DIR": directory,
            # TensorFlow imports Keras, which imports matplotlib where it is installed (the bench extra):
            # matplotlib needs a directory it may write, else it makes one (refused: the import fails). It
            # takes this existing one (its write test is not Landlock's) and only warns that it could not
            # save its font cache there.
            "MPLCONFIGDIR": directory,
            "TF_CPP_MIN_LOG_LEVEL": "2"}


# ----------------------------------------------------------------------------------------- begin

def begin(readable: list[str], cgroup_dir: str | None = None, landlock: bool = True) -> None:
    """Step one, irreversible, while the process is one thread: cgroup, capabilities, no_new_privs,
    Landlock (read-only beneath `readable`; `landlock=False` leaves it off as on a kernel without it, and
    close() then refuses every open). Results are kept for `close()`'s `Layers`."""
    if _state["begun"]:
        raise RuntimeError("sandbox.begin() was already called")
    _state["begun"] = True
    notes: list[str] = []
    # The cgroup first: moving in writes cgroup.procs, which Landlock then refuses.
    _state["cgroup_limit"] = _enter_cgroup(cgroup_dir, notes) if cgroup_dir else 0
    _state["capabilities_dropped"] = _drop_capabilities(notes)
    _state["no_new_privs"] = _set_no_new_privs(notes)
    if not landlock:
        notes.append("Landlock left off (begin(landlock=False))")
    _state["landlock"] = _apply_landlock(readable, notes) if landlock and _state["no_new_privs"] else 0
    # Nothing is writable, so tempfile's probe for a usable directory would fail, and TensorFlow's import asks
    # it for a name (absl's test directory) it never uses: the name alone, from the cwd (the executor's empty
    # directory), where nothing can be created either.
    tempfile.tempdir = os.getcwd()
    _state["begin_notes"] = notes


def _enter_cgroup(cgroup_dir: str, notes: list[str]) -> int:
    """Moves this process into `cgroup_dir`; its memory.max in bytes, 0 where that does not hold."""
    try:
        with open(os.path.join(cgroup_dir, "memory.max")) as limit_file:
            limit = limit_file.read().strip()
        with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
        own = _own_cgroup_v2()
    except OSError as error:
        notes.append(f"memory cgroup {cgroup_dir} not entered: {error.strerror}")
        return 0
    if own is None or os.path.realpath(own) != os.path.realpath(cgroup_dir):
        notes.append(f"memory cgroup {cgroup_dir} not entered: /proc/self/cgroup does not show it")
        return 0
    if not limit.isdigit():
        notes.append(f"memory cgroup {cgroup_dir} has no memory.max ({limit})")
        return 0
    return int(limit)


def _drop_capabilities(notes: list[str]) -> bool:
    """Empties this thread's effective, permitted and inheritable sets (an executor run as root would keep
    CAP_SYS_RESOURCE, CAP_SYS_NICE, CAP_DAC_OVERRIDE...). True when the thread holds none afterwards."""
    header = _ffi.new("struct cap_header *", {"version": _LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = _ffi.new("struct cap_data[2]")
    if _libc.capget(header, data) != 0:
        notes.append(f"capabilities unknown: capget failed ({os.strerror(_ffi.errno)})")
        return False
    if not any(d.effective or d.permitted or d.inheritable for d in data):
        return True
    empty = _ffi.new("struct cap_data[2]")
    if _libc.capset(header, empty) != 0:
        notes.append(f"capabilities kept: capset failed ({os.strerror(_ffi.errno)})")
        return False
    return True


def _set_no_new_privs(notes: list[str]) -> bool:
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        notes.append(f"no_new_privs not set: {os.strerror(_ffi.errno)}")
        return False
    return _libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1


def landlock_abi() -> tuple[int, str]:
    """The kernel's Landlock ABI version, or 0 and why none."""
    abi = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, _ffi.NULL, _ffi.cast("size_t", 0),
                        _ffi.cast("uint32_t", _LANDLOCK_CREATE_RULESET_VERSION))
    if abi >= 1:
        return abi, ""
    code = _ffi.errno
    if code == errno.ENOSYS:
        return 0, "the kernel has no Landlock (built without CONFIG_SECURITY_LANDLOCK, or older than 5.13)"
    if code == errno.EOPNOTSUPP:
        return 0, "Landlock is built in but not enabled (add landlock to the kernel's lsm= boot parameter)"
    if code == errno.EPERM:
        return 0, "Landlock's system calls are refused here (a container's seccomp profile)"
    return 0, f"Landlock unavailable: {os.strerror(code)}"


def _apply_landlock(readable: list[str], notes: list[str]) -> int:
    abi, why = landlock_abi()
    if not abi:
        notes.append(why)
        return 0
    threads = _threads()
    if threads != 1:
        notes.append(f"Landlock not applied: {threads} threads were running, and it binds only the calling "
                     "thread and those it starts (call begin() before importing numpy or a framework)")
        return 0
    handled_fs = _FS_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (
        _FS_IOCTL_DEV if abi >= 5 else 0)
    attr = _ffi.new("struct landlock_ruleset_attr *", {
        "handled_access_fs": handled_fs,
        "handled_access_net": (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        "scoped": (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    })
    # The kernel checks that fields it does not know are zero, so the full struct suits every ABI.
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, attr, _ffi.cast("size_t", _ffi.sizeof(attr[0])),
                            _ffi.cast("uint32_t", 0))
    if ruleset < 0:
        notes.append(f"Landlock not applied: landlock_create_ruleset failed ({os.strerror(_ffi.errno)})")
        return 0
    try:
        for path in readable:
            # No EXECUTE: it governs execve alone (dlopen maps a file opened for reading), which is refused.
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this system lacks
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
                rule = _ffi.new("struct landlock_path_beneath_attr *", {
                    "allowed_access": (_FS_READ_FILE | _FS_READ_DIR) if is_dir else _FS_READ_FILE,
                    "parent_fd": fd})
                if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, _ffi.cast("int", ruleset),
                                 _ffi.cast("int", _LANDLOCK_RULE_PATH_BENEATH), rule, _ffi.cast("uint32_t", 0)):
                    notes.append(f"Landlock: {path} not readable ({os.strerror(_ffi.errno)})")
            finally:
                os.close(fd)
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, _ffi.cast("int", ruleset), _ffi.cast("uint32_t", 0)):
            notes.append(f"Landlock not applied: landlock_restrict_self failed ({os.strerror(_ffi.errno)})")
            return 0
    finally:
        os.close(ruleset)
    return abi


# ----------------------------------------------------------------------------------------- close

def close(memory_limit: int) -> Layers:
    """Step two, irreversible, once the frameworks are imported and warmed: memory limits, then the seccomp
    filter on every thread. `memory_limit` (bytes, 0 for none) bounds the data segment (RLIMIT_DATA: heap,
    private anonymous maps, thread stacks) and each file's size (RLIMIT_FSIZE: a memfd; so give the
    executor pipes, not a regular file such as the server's log, for stdout and stderr), and should match
    the cgroup's memory.max where `begin` entered one (there the rlimit turns most overruns into a
    MemoryError before the cgroup's OOM kill)."""
    if _state["closed"]:
        raise RuntimeError("sandbox.close() was already called")
    _state["closed"] = True
    if not _state["begun"]:
        begin([], None, landlock=False)  # so every open is refused below
        _state["begin_notes"].append("begin() was not called before close(): no Landlock, no cgroup")
    notes = list(_state["begin_notes"])
    memory, limit = _limit_memory(memory_limit, _state["cgroup_limit"], notes)
    seccomp = _apply_seccomp(allow_reads=_state["landlock"] > 0, notes=notes)
    no_new_privs = _libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1
    return Layers(no_new_privs=no_new_privs, seccomp=seccomp, landlock=_state["landlock"], memory=memory,
                  memory_limit=limit, capabilities_dropped=_state["capabilities_dropped"], notes=tuple(notes))


def _limit_memory(memory_limit: int, cgroup_limit: int, notes: list[str]) -> tuple[str, int]:
    # No core file: it would hold every tenant's tensors, written where the server's core_pattern says.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit <= 0:
        if cgroup_limit:
            return "cgroup2", cgroup_limit
        notes.append("memory not bounded: no memory_limit given")
        return "none", 0
    data = data_size()
    if data >= memory_limit:
        notes.append(f"memory_limit {memory_limit} is below the executor's data size {data}: "
                     "every new allocation will fail")
    for limit in (resource.RLIMIT_DATA, resource.RLIMIT_FSIZE):
        resource.setrlimit(limit, (memory_limit, memory_limit))
    if cgroup_limit:
        return "cgroup2", cgroup_limit
    notes.append("memory bounded by RLIMIT_DATA, which does not count shared mappings (a memfd written "
                 "through a mapping or write(), each at most RLIMIT_FSIZE): a cgroup bounds those")
    return "rlimit_data", memory_limit


# The allow-list. Everything else answers EPERM. Unconditional entries are what a computation, Python's
# runtime and the frameworks' thread pools use on memory, time, synchronisation, this process's own threads
# and signals, and descriptors the process already holds (reads and writes on the server's socket, memfds).
_ALLOWED = (
    # memory
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore", "membarrier",
    "get_mempolicy", "set_mempolicy", "mbind", "pkey_alloc", "pkey_free", "pkey_mprotect", "mseal",
    "map_shadow_stack", "memfd_create",
    # threads, synchronisation, signals to itself
    "futex", "futex_waitv", "set_robust_list", "rseq", "set_tid_address", "exit", "exit_group",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
    "sigaltstack", "pause", "restart_syscall", "sched_yield", "sched_getaffinity", "sched_getparam",
    "sched_getscheduler", "sched_getattr", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "getcpu", "getpriority", "arch_prctl",
    # time
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "setitimer", "getitimer", "alarm", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    # identity and the machine, read only
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
    "getresgid", "getpgrp", "getpgid", "getsid", "capget", "uname", "sysinfo", "getrusage", "times",
    "getrandom", "getrlimit", "umask",
    # descriptors it holds
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "close", "close_range", "dup", "dup2", "dup3", "fstat", "fstatfs", "fadvise64", "readahead",
    "ftruncate", "fallocate", "fsync", "fdatasync", "getdents", "getdents64", "fchdir",
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "pipe", "pipe2",
    "sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
    "getpeername", "getsockopt", "setsockopt",
    # metadata by path (what Python's imports and the frameworks' library loading ask: Landlock does not
    # cover them, so a model can learn whether a path exists and its size, never its contents)
    "stat", "lstat", "newfstatat", "statx", "statfs", "access", "faccessat", "faccessat2", "readlink",
    "readlinkat", "getcwd", "chdir",
)

# Sub-commands of multiplexing calls that are safe; the others (F_SETOWN and FIOSETOWN would aim SIGIO at
# another process, TIOCSTI types into a terminal, F_SETLEASE...) are refused.
_FCNTL_ALLOWED = (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC, fcntl.F_GETFD, fcntl.F_SETFD, fcntl.F_GETFL,
                  fcntl.F_SETFL, getattr(fcntl, "F_ADD_SEALS", 1033), getattr(fcntl, "F_GET_SEALS", 1034),
                  getattr(fcntl, "F_GETPIPE_SZ", 1032))
_IOCTL_ALLOWED = (termios.TCGETS, termios.TIOCGWINSZ, termios.FIONREAD, termios.FIONBIO, termios.FIOCLEX,
                  termios.FIONCLEX)
_PRCTL_ALLOWED = (
    15, 16,  # PR_SET_NAME, PR_GET_NAME (thread names)
    0x53564D41,  # PR_SET_VMA (glibc names its anonymous mappings)
    1, 2,  # PR_SET_PDEATHSIG, PR_GET_PDEATHSIG (a signal to itself)
    3,  # PR_GET_DUMPABLE
    21, 39,  # PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS
    23,  # PR_CAPBSET_READ
    30, 42,  # PR_GET_TIMERSLACK, PR_GET_THP_DISABLE
)
# What an open must not ask: writing, creating, truncating, a temporary file, or an O_PATH handle.
# (O_TMPFILE includes O_DIRECTORY's bit, which a directory listing sets: only its own bit counts.)
_OPEN_REFUSED_FLAGS = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_PATH
                       | (os.O_TMPFILE & ~os.O_DIRECTORY))
_CLONE_THREAD = 0x00010000
# Namespace flags, refused even with CLONE_THREAD (CLONE_NEWTIME shares its bit with the exit signal).
_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000


def _apply_seccomp(allow_reads: bool, notes: list[str]) -> bool:
    try:
        lib = _ffi.dlopen(LIBSECCOMP)
    except OSError:
        notes.append(f"seccomp not applied: {LIBSECCOMP} not found (Debian: apt-get install libseccomp2)")
        return False
    version = lib.seccomp_version()
    if (version.major, version.minor) < (2, 4):
        notes.append(f"seccomp not applied: libseccomp {version.major}.{version.minor} is older than 2.4")
        return False
    ctx = lib.seccomp_init(_scmp_act_errno(errno.EPERM))
    if ctx == _ffi.NULL:
        notes.append("seccomp not applied: seccomp_init failed")
        return False
    try:
        for attr, value in ((_SCMP_FLTATR_ACT_BADARCH, _SCMP_ACT_KILL_PROCESS), (_SCMP_FLTATR_CTL_NNP, 1),
                            (_SCMP_FLTATR_CTL_TSYNC, 1)):
            if lib.seccomp_attr_set(ctx, attr, value) != 0:
                notes.append(f"seccomp not applied: attribute {attr} refused")
                return False
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)  # a binary tree, where libseccomp has it
        pid = os.getpid()

        def rule(action: int, name: str, *comparisons: tuple[int, int, int, int]) -> None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                return  # a call this architecture does not have (open, stat... on aarch64)
            args = _ffi.new("struct scmp_arg_cmp[]", [
                {"arg": arg, "op": op, "datum_a": a, "datum_b": b} for arg, op, a, b in comparisons] or 1)
            code = lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), args)
            if code != 0:
                raise OSError(-code, f"seccomp rule for {name}: {os.strerror(-code)}")

        allow = _SCMP_ACT_ALLOW
        for name in _ALLOWED:
            rule(allow, name)
        for command in _FCNTL_ALLOWED:
            rule(allow, "fcntl", (1, _SCMP_CMP_EQ, command, 0))
        for command in _IOCTL_ALLOWED:
            rule(allow, "ioctl", (1, _SCMP_CMP_EQ, command, 0))
        for option in _PRCTL_ALLOWED:
            rule(allow, "prctl", (0, _SCMP_CMP_EQ, option, 0))
        # Threads only: a fork or vfork (os.system, subprocess, posix_spawn) lacks CLONE_THREAD.
        rule(allow, "clone", (0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD | _CLONE_NEW, _CLONE_THREAD))
        rule(_scmp_act_errno(errno.ENOSYS), "clone3")
        # Signals to itself only (the kill() Python's os.kill does, pthread_kill's and raise()'s tgkill).
        rule(allow, "kill", (0, _SCMP_CMP_EQ, pid, 0))
        rule(allow, "tgkill", (0, _SCMP_CMP_EQ, pid, 0))
        rule(allow, "rt_tgsigqueueinfo", (0, _SCMP_CMP_EQ, pid, 0))
        # Its own limits, read only (setrlimit(RLIMIT_DATA, infinity) would undo the memory bound; a pid
        # other than 0 would reach another process's limits).
        rule(allow, "prlimit64", (0, _SCMP_CMP_EQ, 0, 0), (2, _SCMP_CMP_EQ, 0, 0))
        # Its own CPU affinity (OpenMP pins its threads through pid 0).
        rule(allow, "sched_setaffinity", (0, _SCMP_CMP_EQ, 0, 0))
        rule(_scmp_act_errno(errno.ENOSYS), "openat2")
        if allow_reads:
            # Read-only opens; Landlock decides where.
            rule(allow, "open", (1, _SCMP_CMP_MASKED_EQ, _OPEN_REFUSED_FLAGS, 0))
            rule(allow, "openat", (2, _SCMP_CMP_MASKED_EQ, _OPEN_REFUSED_FLAGS, 0))
        else:
            notes.append("every file open refused (no Landlock to say where reads may go)")
        code = lib.seccomp_load(ctx)
        if code != 0:
            notes.append(f"seccomp not applied: seccomp_load failed ({os.strerror(abs(code))})")
            return False
        return True
    except OSError as error:
        notes.append(f"seccomp not applied: {error.strerror}")
        return False
    finally:
        lib.seccomp_release(ctx)


# ----------------------------------------------------------------------------------------- the parent's side

def prepare_cgroup(name: str, memory_limit: int) -> tuple[str | None, str]:
    """In the server (the worker that spawns an executor): a cgroup v2 child `name` of the server's own
    cgroup, with memory.max = `memory_limit` and no swap, for the executor to enter in `begin`. Returns
    (its path, "") or (None, why not): cgroup v2 not this process's hierarchy, its memory controller not
    delegated here, or the server's cgroup holding processes (v2 gives controllers to children only of a
    cgroup without processes of its own, the root excepted)."""
    own = _own_cgroup_v2()
    if own is None:
        return None, "no cgroup v2 hierarchy with this process in it"
    try:
        with open(os.path.join(own, "cgroup.controllers")) as controllers:
            if "memory" not in controllers.read().split():
                return None, f"the memory controller is not delegated to {own}"
        with open(os.path.join(own, "cgroup.subtree_control")) as subtree:
            enabled = "memory" in subtree.read().split()
        if not enabled:
            try:
                with open(os.path.join(own, "cgroup.subtree_control"), "w") as subtree:
                    subtree.write("+memory")
            except OSError as error:
                why = ("it holds processes" if error.errno == errno.EBUSY else error.strerror)
                return None, f"memory cannot be enabled for children of {own}: {why}"
        path = os.path.join(own, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "memory.max"), "w") as limit:
            limit.write(str(memory_limit) if memory_limit > 0 else "max")
        swap = os.path.join(path, "memory.swap.max")
        if os.path.exists(swap):  # absent where the kernel accounts no swap: then there is none to bound
            with open(swap, "w") as limit:
                limit.write("0")
        return path, ""
    except OSError as error:
        return None, f"cgroup under {own}: {error.strerror} ({error.filename})"


def remove_cgroup(path: str) -> None:
    """Removes an executor's cgroup once its process has exited (rmdir of an empty cgroup)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(root, mount point, controllers) of every cgroup file system mounted; no controllers for v2."""
    mounts = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            before, _, after = line.partition(" - ")
            kind = after.split()
            if not kind or kind[0] not in ("cgroup", "cgroup2"):
                continue
            fields = before.split()
            controllers = set(kind[2].split(",")) if kind[0] == "cgroup" and len(kind) > 2 else set()
            mounts.append((fields[3], fields[4], controllers))
    return mounts


def _own_cgroup_dirs() -> list[str]:
    """The directories of this process's cgroups where they are mounted: v2's, and v1's of the controllers
    a framework reads to size itself (cpu, cpuacct, cpuset, memory)."""
    dirs = []
    try:
        mounts = _cgroup_mounts()
        with open("/proc/self/cgroup") as own:
            lines = [line.rstrip("\n").split(":", 2) for line in own]
    except OSError:
        return dirs
    for _, controllers, path in lines:
        wanted = set(controllers.split(",")) if controllers else set()
        if wanted and not wanted & {"cpu", "cpuacct", "cpuset", "memory"}:
            continue
        for root, mount_point, mounted in mounts:
            if wanted != mounted and not (wanted and wanted <= mounted):
                continue
            if path == root or path.startswith(root.rstrip("/") + "/"):
                inside = os.path.relpath(path, root)
                dirs.append(mount_point if inside == "." else os.path.join(mount_point, inside))
    return dirs


def _own_cgroup_v2() -> str | None:
    """The directory of this process's cgroup v2, where a cgroup2 file system shows it."""
    relative = None
    with open("/proc/self/cgroup") as own:
        for line in own:
            if line.startswith("0::"):
                relative = line[3:].strip()
    if relative is None:
        return None
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            before, _, after = line.partition(" - ")
            if after.split()[:1] != ["cgroup2"]:
                continue
            fields = before.split()
            root, mount_point = fields[3], fields[4]
            if relative == root or relative.startswith(root.rstrip("/") + "/"):
                inside = os.path.relpath(relative, root)
                return mount_point if inside == "." else os.path.join(mount_point, inside)
    return None
