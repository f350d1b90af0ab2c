"""Landlock: the Linux kernel's unprivileged filesystem (and TCP, and IPC-scope) sandbox.

A process restricts *itself*: it names the accesses it wants the kernel to police
("handled"), adds rules that allow some of them beneath some paths, and calls
``landlock_restrict_self``. From then on that thread, and every thread and process it
creates, can use a handled access only where a rule allows it; nothing can lift it.

Called directly through ``syscall(2)`` with ctypes (three system calls, stable numbers on
every architecture since Linux 5.13): no compiled extension, no third-party binding to
keep current. What each ABI version adds is used when the kernel offers it:

=====  ======================================================================
ABI    adds
=====  ======================================================================
1      the filesystem rights (read, write, execute, make and remove files)
2      ``REFER``: moving a file between folders
3      ``TRUNCATE``
4      TCP ``bind``/``connect`` (no rule: no TCP at all)
5      ``IOCTL_DEV``: ioctl on device files
6      scopes: no connecting to abstract Unix sockets, no signals, outside the domain
7      audit logging flags (nothing that changes what is allowed)
=====  ======================================================================

Landlock applies to the calling thread only (before ABI 8's thread sync): restrict a
process while it has one thread, so that every thread it starts later inherits the rules.
"""

from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

#: Rights that make sense on a single file (a rule on a file may grant only these).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ = READ_FILE | READ_DIR
WRITE = (
    WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | REFER | TRUNCATE
)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: bits 0..12
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    """The kernel refused a Landlock call."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The Landlock ABI the running kernel offers; 0 when it offers none (not Linux, an old
    kernel, or Landlock left out of the boot's LSM list)."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


@dataclass
class Ruleset:
    """What one process may touch once it calls :meth:`restrict_self`: ``read`` paths
    (files or folders, everything beneath), ``write`` folders (create, write, remove
    beneath), ``devices`` (read, write and ioctl: ``/dev/null``, a GPU's nodes). Paths
    that do not exist are skipped. Execution is allowed nowhere, TCP nowhere."""

    read: list[Path] = field(default_factory=list)
    write: list[Path] = field(default_factory=list)
    devices: list[Path] = field(default_factory=list)

    def restrict_self(self, abi: int) -> None:
        """Enforce the rules on the calling thread and everything it starts; raises
        :class:`LandlockError` if the kernel refuses."""
        libc = _libc()
        handled = _fs_rights(abi)
        attr = _RulesetAttr(handled_access_fs=handled)
        size = 8
        if abi >= 4:
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
            size = 16
        if abi >= 6:
            attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            size = 24
        fd = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
        try:
            for path in _unique(self.read):
                self._allow(libc, fd, path, READ_FILE | READ_DIR, handled)
            for path in _unique(self.write):
                self._allow(libc, fd, path, READ_FILE | READ_DIR | WRITE, handled)
            for path in _unique(self.devices):
                self._allow(libc, fd, path, READ_FILE | WRITE_FILE | IOCTL_DEV | TRUNCATE, handled)
            if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: required, and wanted
                raise LandlockError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
            if libc.syscall(_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
                raise LandlockError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)

    @staticmethod
    def _allow(libc: ctypes.CDLL, ruleset: int, path: Path, rights: int, handled: int) -> None:
        try:
            target = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # absent (or unreachable): nothing to allow
        try:
            if not stat.S_ISDIR(os.fstat(target).st_mode):
                rights &= FILE_RIGHTS
            beneath = _PathBeneathAttr(allowed_access=rights & handled, parent_fd=target)
            if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                            ctypes.byref(beneath), ctypes.c_uint32(0)) != 0:
                errno = ctypes.get_errno()
                raise LandlockError(errno, f"landlock_add_rule({path}): {os.strerror(errno)}")
        finally:
            os.close(target)


def _unique(paths: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(Path(p) for p in paths))
