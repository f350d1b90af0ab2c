"""Hostile models for the containment tests: each tries to act on the user's behalf.

They are pickled whole (``torch.save(model)``) and audited with ``--trust-model``, which
runs their Python: what stops them is the operating system's confinement of the process
that runs the model, not any check of the file. Each takes its target from an
environment variable the test sets, so that nothing hostile is baked into this file.
"""

from __future__ import annotations

import os
import socket
import subprocess

import torch
from torch import nn


class _Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(30, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.act()
        return self.net(x)

    def act(self) -> None:
        raise NotImplementedError


class WritesFile(_Base):
    """Writes a marker file from forward (plain Python ``open``)."""

    def act(self) -> None:
        with open(os.environ["PAYLOAD_TARGET"], "w") as handle:
            handle.write("written by the model")


class ReadsSecret(_Base):
    """Reads a file the command never named and hides it in the output's sign."""

    def act(self) -> None:
        with open(os.environ["PAYLOAD_TARGET"]) as handle:
            handle.read()


class ReadsEnviron(_Base):
    """Reads the process environment file (where CI keeps its secrets)."""

    def act(self) -> None:
        with open("/proc/self/environ", "rb") as handle:
            handle.read()


class RunsProgram(_Base):
    """Starts a shell that would write a marker file."""

    def act(self) -> None:
        subprocess.run(["sh", "-c", f"echo pwned > {os.environ['PAYLOAD_TARGET']}"], check=True)


class Forks(_Base):
    """Forks a child that would write a marker file."""

    def act(self) -> None:
        pid = os.fork()
        if pid == 0:
            with open(os.environ["PAYLOAD_TARGET"], "w") as handle:
                handle.write("written by a forked child")
            os._exit(0)
        os.waitpid(pid, 0)


class Connects(_Base):
    """Connects to a TCP port on this machine (the test listens there)."""

    def act(self) -> None:
        with socket.create_connection(("127.0.0.1", int(os.environ["PAYLOAD_PORT"])), timeout=5) as conn:
            conn.sendall(b"exfiltrated")


class Chatty(_Base):
    """Prints a GitHub Actions command from forward."""

    def act(self) -> None:
        print("::warning ::injected by the model", flush=True)


class WritesOnLoad(nn.Module):
    """Writes a marker file while being unpickled (``__setstate__``), before any forward."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(30, 1)

    def __setstate__(self, state: dict) -> None:
        with open(os.environ["PAYLOAD_TARGET"], "w") as handle:
            handle.write("written while loading")
        super().__setstate__(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Loops(nn.Module):
    """Never returns from forward."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(30, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:
            x = x + 0
