"""seccomp: system calls a confined process may not make, whatever code asks for them.

A classic BPF program, installed with ``seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)`` on every
thread of the process (and inherited by anything it starts), answers each system call
before the kernel runs it. This one is a deny-list on top of Landlock (which polices
files and TCP): an allow-list of system calls would have to track every call that torch,
OpenMP, NumPy and CPython make on each libc version, and would break on the next.

Denied, with ``EPERM`` so the caller gets an ordinary error (never a crash):

* new processes and programs: ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``
  (threads stay allowed), ``execve``, ``execveat``; ``clone3`` answers ``ENOSYS``, its
  flags live in memory a filter cannot read, and libc then falls back to ``clone``;
* the network: ``socket``, ``socketpair``, ``connect``, ``bind``, ``listen``,
  ``accept``/``accept4`` (already-open pipes keep working);
* escapes and reaching into other processes: ``ptrace``, ``process_vm_readv/writev``,
  ``personality``, ``mount``, ``umount2``, ``pivot_root``, ``chroot``, ``unshare``,
  ``setns``, ``open_by_handle_at`` (opens a file by handle, around path rules),
  ``name_to_handle_at``, ``bpf``, ``perf_event_open``, ``userfaultfd``, the keyring
  (``add_key``, ``request_key``, ``keyctl``), kernel modules and ``kexec_load``;
* ``io_uring_*``: its operations (open, connect, ...) bypass system-call filtering.

A system call from another ABI (x32 on x86-64) or another architecture kills the process.
Supported: x86-64 and AArch64; elsewhere :func:`supported` is False and the caller says so.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000

#: The system calls denied with EPERM, by architecture (numbers from the kernel's tables).
DENIED: dict[str, dict[str, int]] = {
    "x86_64": {
        "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53,
        "fork": 57, "vfork": 58, "execve": 59, "ptrace": 101, "personality": 135,
        "pivot_root": 155, "chroot": 161, "mount": 165, "umount2": 166, "init_module": 175,
        "delete_module": 176, "kexec_load": 246, "add_key": 248, "request_key": 249,
        "keyctl": 250, "unshare": 272, "accept4": 288, "perf_event_open": 298,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
        "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313, "bpf": 321,
        "execveat": 322, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427,
    },
    "aarch64": {
        "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51, "personality": 92,
        "unshare": 97, "kexec_load": 104, "init_module": 105, "delete_module": 106,
        "ptrace": 117, "socket": 198, "socketpair": 199, "bind": 200, "listen": 201,
        "accept": 202, "connect": 203, "add_key": 217, "request_key": 218, "keyctl": 219,
        "execve": 221, "perf_event_open": 241, "accept4": 242, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "setns": 268, "process_vm_readv": 270,
        "process_vm_writev": 271, "finit_module": 273, "bpf": 280, "execveat": 281,
        "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427,
    },
}

# Classic BPF opcodes and seccomp return values.
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
# Offsets in struct seccomp_data: nr (int), arch (u32), instruction_pointer (u64), args[6] (u64).
_NR, _ARCH, _ARG0_LOW = 0, 4, 16


def machine() -> str:
    return platform.machine().lower()


def supported() -> bool:
    """Whether this process can install the filter (Linux on x86-64 or AArch64)."""
    return hasattr(os, "uname") and os.uname().sysname == "Linux" and machine() in DENIED


def _program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps are relative to the next one."""
    denied = sorted(DENIED[arch].values())
    head: list[tuple[str, int, object, object, int]] = []  # (op, code, jt, jf, k); labels resolved below
    head.append(("i", _LD_W_ABS, 0, 0, _ARCH))
    head.append(("i", _JEQ_K, 1, 0, _AUDIT_ARCH[arch]))
    head.append(("i", _RET_K, 0, 0, _RET_KILL_PROCESS))
    head.append(("i", _LD_W_ABS, 0, 0, _NR))
    if arch == "x86_64":
        head.append(("i", _JGE_K, "kill", 0, _X32_BIT))
    for number in denied:
        head.append(("i", _JEQ_K, "deny", 0, number))
    head.append(("i", _JEQ_K, "enosys", 0, _CLONE3))
    head.append(("i", _JEQ_K, 0, "allow", _CLONE[arch]))
    # clone: a thread (CLONE_THREAD set) is allowed, a new process is not.
    head.append(("i", _LD_W_ABS, 0, 0, _ARG0_LOW))
    head.append(("i", _JSET_K, "allow", "deny", _CLONE_THREAD))
    labels = {"allow": len(head), "deny": len(head) + 1, "enosys": len(head) + 2, "kill": len(head) + 3}
    tail = [
        (_RET_K, 0, 0, _RET_ALLOW),
        (_RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
        (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
    ]
    program: list[tuple[int, int, int, int]] = []
    for index, (_, code, jt, jf, k) in enumerate(head):
        def offset(target: object, index: int = index) -> int:
            if isinstance(target, str):
                return labels[target] - index - 1
            return int(target)  # type: ignore[call-overload]

        program.append((code, offset(jt), offset(jf), k))
    return program + tail


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Install the filter on every thread of this process; raises OSError if refused."""
    arch = machine()
    program = _program(arch)
    raw = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len=len(program), filter=ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    # seccomp(SECCOMP_SET_MODE_FILTER=1, SECCOMP_FILTER_FLAG_TSYNC=1, &prog)
    if libc.syscall(ctypes.c_long(_SYS_SECCOMP[arch]), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.byref(prog)) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"seccomp(SET_MODE_FILTER): {os.strerror(number)}")
