"""Containment: model code runs in a child process the operating system confines.

What runs where::

    parent (the ``audit`` command)                 child (forked from a preloaded server)
    ---------------------------------------       -----------------------------------------
    options, settings, policy, baseline            confines itself (Landlock + seccomp), then:
    checks the input files                         loads the model, reads the data, runs the
    starts the child, draws its progress  <-JSON-  inference pass and every audit, builds the
    enforces --inference-timeout, Ctrl-C           report, and sends it back as JSON
    gates, writes the reports, prints the PDF

Confinement starts before the first byte of the model file is interpreted (loading a
TorchScript archive runs its ``__setstate__``), and covers everything after it: loading,
every forward and backward pass, retraining, the audits. In the child:

* **files** (Landlock): read the inputs the command named (model and its sidecar, data,
  training data, history, card, ``--model-path``), the Python installation and system
  libraries, and a few kernel files that describe the hardware; write only a private
  scratch folder the parent deletes; execute nothing;
* **network**: no sockets at all (seccomp), no TCP (Landlock ABI 4+), no abstract Unix
  sockets and no signals to processes outside the run (Landlock ABI 6+);
* **processes**: no fork, no exec (seccomp); threads are allowed;
* ``PR_SET_NO_NEW_PRIVS``; no core dumps; its stdout and stderr go to a log the parent reads
  (a model's ``print`` never reaches the terminal or a CI log).

The parent trusts nothing the child sends: JSON only (never a pickle), size-bounded.
Where the kernel offers no Landlock, or seccomp is unsupported, a model that carries code
(TorchScript, torch.export, a pickle) is refused unless ``--trust-model``, and the report
says the run was not confined. See :mod:`auditor.contain.landlock`,
:mod:`auditor.contain.seccomp`, :mod:`auditor.contain.rules`.
"""

from __future__ import annotations

from auditor.contain.supervisor import Confinement, ContainedRun, available, execute_contained

__all__ = ["Confinement", "ContainedRun", "available", "execute_contained"]
