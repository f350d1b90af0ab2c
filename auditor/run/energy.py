"""Measure the energy of the run, phase by phase, with codecarbon's offline tracker.

The pipeline makes an :class:`EnergyMeter` when a selected audit needs ``energy``; the
meter times every phase (loading, the inference pass, each audit, and what audits mark
with ``ctx.measure``) and hands a :class:`Measurement` to those audits when the others
are done. Energy only: carbon intensity is :mod:`auditor_plugins.carbon.grid`'s concern.

How each span is measured: a fresh ``OfflineEmissionsTracker`` is started when the span
begins and stopped when it ends (codecarbon's ``start_task``/``stop_task`` drop the time
between tasks from the outer total and corrupt its duration; separate trackers do not).
One more tracker spans the whole metered run. After the first, a tracker costs about
10 ms to start and 1 ms to stop.

codecarbon is handled with care, because it was built to be configured from outside:

* it reads every setting it is not given from ``./.codecarbon.config``,
  ``~/.codecarbon.config`` and ``CODECARBON_*`` variables (an audited repository could
  make it write files or call a server), so every such setting is passed explicitly;
* it swallows errors in ``start``/``stop`` and only logs them, so a tracker that yields
  no data is reported as a problem, never as zero;
* its logger re-installs a stderr handler on import and for every tracker, so its lines
  are collected here instead (the warnings reach the report as notes);
* its first tracker takes 1-2 s to detect the hardware (py-cpuinfo runs a subprocess that
  sleeps to time the CPU): the server contained runs are forked from asks py-cpuinfo and
  lscpu once (:func:`prepare_for_confinement`), and the rest runs in a background thread
  while the model and data load; only the phases that must be measured wait.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from auditor.contract.errors import PluginError, UsageError
from auditor.contract.plugin import MeterSettings as MeterSettings  # the hook's type, defined in the contract

#: codecarbon's CPU modes that read hardware energy counters (everything else estimates).
MEASURED_CPU_MODES: dict[str, str] = {
    "intel_rapl": "RAPL energy counters",
    "windows_emi": "Windows Energy Meter Interface",
    "intel_power_gadget": "Intel Power Gadget",
    "apple_powermetrics": "Apple powermetrics",
}

#: Lines codecarbon logs because of settings we chose, not findings about this machine.
_NOISE = ("Multiple instances of codecarbon are allowed",)

_LOGGER = "codecarbon"


def import_codecarbon() -> None:
    """Import codecarbon's modules in the calling (main) thread. Imported in a background
    thread they can warn (urllib3's DependencyWarning, through requests) while the main
    thread holds a ``warnings.catch_warnings`` that shows it: process-wide filters are not
    thread-safe. About 0.1 s."""
    import importlib

    for module in ("codecarbon", "codecarbon.core.emissions", "codecarbon.core.resource_tracker", "codecarbon.input"):
        importlib.import_module(module)


def prepare_for_confinement() -> None:
    """Ask now what codecarbon would learn later by starting programs, which a confined
    process may not do: py-cpuinfo's subprocess for the CPU model (codecarbon caches it)
    and ``lscpu`` for the socket count (remembered here). Called in the server that
    contained runs are forked from (:mod:`auditor.contain.server`), before any fork."""
    from codecarbon import emissions_tracker, input
    from codecarbon.core import util

    util.detect_cpu_model()
    sockets = util.count_physical_cpus()
    emissions_tracker.count_physical_cpus = lambda: sockets  # type: ignore[attr-defined]
    # codecarbon's reference tables (its CPU power table is a pandas frame: pandas' import and
    # the reads take ~0.5 s), loaded once here rather than by every run before it can measure.
    input._ensure_static_data_loaded()


def confined() -> None:
    """Called in a process that has just confined itself: it can have no child processes
    (fork is denied) and cannot list ``/proc``, where psutil looks for children; in
    ``process`` tracking mode codecarbon asks psutil for them (CPU time and memory of the
    process and its children), so the answer, none, is given without looking."""
    import psutil

    psutil.Process.children = lambda self, recursive=False: []  # type: ignore[method-assign]


def settings_for(audits: Mapping[str, Any], options: Mapping[str, Mapping[str, Any]]) -> MeterSettings | None:
    """The meter's settings, or None when no selected audit needs ``energy`` (nothing is
    measured then).

    The first audit that needs ``energy`` and defines ``meter_settings(options)`` (the hook of
    :mod:`auditor.contract.plugin`) is asked, with its converted options; without one the
    defaults (``MeterSettings()``). Nothing here knows any audit's option names. A hook that
    returns something else than a :class:`MeterSettings`, or raises anything but a
    :class:`UsageError`, is a :class:`PluginError` naming the audit."""
    measuring = [name for name, audit in audits.items() if "energy" in tuple(getattr(audit, "needs", ()) or ())]
    if not measuring:
        return None
    for name in measuring:
        hook = getattr(audits[name], "meter_settings", None)
        if not callable(hook):
            continue
        try:
            settings = hook(options.get(name, {}))
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's hook that breaks is named, not a traceback
            raise PluginError(
                f"The audit plugin {name!r} failed in meter_settings: {type(exc).__name__}: {exc}.",
                hint="Fix or uninstall the plugin; see auditor.contract.plugin for the meter hook.",
            ) from exc
        if not isinstance(settings, MeterSettings):
            raise PluginError(
                f"The audit plugin {name!r} returned {type(settings).__name__} from meter_settings; "
                "an auditor.contract.plugin.MeterSettings is required.",
                hint="Fix or uninstall the plugin; see auditor.contract.plugin for the meter hook.",
            )
        return settings
    return MeterSettings()


#: The shortest span given a mean power. codecarbon's tracker meters a few milliseconds of its
#: own start and stop beyond the span our clock times; over 50 ms that is a few per cent.
MIN_POWER_SECONDS = 0.05


@dataclass(frozen=True)
class Energy:
    """The energy of one span, per component, in kWh (no PUE applied), and its length in
    seconds by our clock."""

    seconds: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float

    @property
    def kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.ram_kwh

    @property
    def watts(self) -> float | None:
        """Mean power over the span; None for a span shorter than :data:`MIN_POWER_SECONDS`,
        whose energy is mostly the tracker's own start and stop (a skipped audit's ~0 s
        would read as hundreds of watts)."""
        return self.kwh * 3.6e6 / self.seconds if self.seconds >= MIN_POWER_SECONDS else None


@dataclass(frozen=True)
class Phase:
    """A named span of the run: ``inference``, ``audit:crossval``, ``audit:crossval/retraining``;
    it began ``start`` seconds into the run and lasted ``seconds``. ``energy`` is None when
    the meter was not ready as it began (or its tracker failed)."""

    name: str
    start: float
    seconds: float
    energy: Energy | None


@dataclass(frozen=True)
class Hardware:
    """What codecarbon saw and how it obtained each component's power."""

    cpu_model: str
    cpu_count: int | None
    cpu_method: str
    cpu_measured: bool
    gpu_model: str
    gpu_count: int
    gpu_method: str | None
    ram_gb: float | None
    ram_method: str
    tracking_mode: str
    codecarbon_version: str


@dataclass(frozen=True)
class Measurement:
    """The energy of a run: ``run`` covers from when the meter became ready
    (``metered_from`` seconds after the run began) to the end of the measured work, which
    lasted ``run_seconds`` in all; ``phases`` in the order they began."""

    run: Energy
    run_seconds: float
    metered_from: float
    phases: tuple[Phase, ...]
    hardware: Hardware
    notes: tuple[str, ...] = ()
    elsewhere: tuple[tuple[str, str], ...] = ()  # (phase, why): work of that phase ran in processes not metered

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


class MeterError(RuntimeError):
    """codecarbon could not measure (not installed, or its tracker gave no data)."""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            text = " ".join(record.getMessage().split())
            if text and not text.startswith(_NOISE) and text not in self.lines:
                self.lines.append(text)


def _quiet(collector: _Collect) -> None:
    """Route codecarbon's logger to ``collector`` only (it re-adds its own handler)."""
    logger = logging.getLogger(_LOGGER)
    for handler in list(logger.handlers):
        if handler is not collector:
            logger.removeHandler(handler)
    if collector not in logger.handlers:
        logger.addHandler(collector)
    logger.propagate = False


def _new_tracker(settings: MeterSettings, collector: _Collect) -> Any:
    from codecarbon import OfflineEmissionsTracker

    _quiet(collector)
    tracker = OfflineEmissionsTracker(
        # Everything codecarbon would otherwise read from config files or the environment.
        project_name="auditor",
        experiment_name="auditor",
        experiment_id="auditor",
        measure_power_secs=15,
        api_call_interval=-1,
        api_endpoint=None,
        api_key=None,
        emissions_endpoint=None,
        electricitymaps_api_token="",  # None would fall back to a configured token
        output_dir=".",  # must exist; nothing is written with no output methods
        output_file="emissions.csv",
        output_methods=[],
        output_handlers=[],
        logging_logger=None,
        prometheus_url=None,
        on_csv_write="append",
        logger_preamble="",
        log_level="warning",
        metadata=None,
        gpu_ids=None,  # codecarbon then follows CUDA_VISIBLE_DEVICES
        tracking_mode=settings.tracking_mode,
        force_cpu_power=settings.cpu_power,
        force_ram_power=settings.ram_power,
        force_carbon_intensity_g_co2e_kwh=0.0,  # emissions are auditor_plugins.carbon.grid's; skips its lookup
        force_mode_cpu_load=False,
        pue=1.0,
        wue=0.0,
        allow_multiple_runs=True,  # False takes a lock file and SIGINT/SIGTERM handlers
        rapl_include_dram=False,
        rapl_prefer_psys=False,
        country_iso_code=None,
        country_2letter_iso_code=None,
        region=None,
        cloud_provider=None,
        cloud_region=None,
    )
    _quiet(collector)
    return tracker


def _energy(tracker: Any, seconds: float) -> Energy:
    """Stop ``tracker`` and read its energy, or raise MeterError.

    codecarbon's ``stop`` takes its last measurement only if the previous one is 50 ms old,
    so a shorter span (a small inference pass) would read as almost no energy; the last
    measurement is taken here first, whatever the span's length."""
    last = getattr(tracker, "_measure_power_and_energy", None)
    if callable(last):
        try:
            last()
        except Exception:  # noqa: BLE001 - stop() below measures as it can, and reports
            pass
    tracker.stop()
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:
        raise MeterError("codecarbon's tracker gave no data (its errors are in the notes)")
    return Energy(
        seconds=seconds,
        cpu_kwh=float(data.cpu_energy or 0.0),
        gpu_kwh=float(data.gpu_energy or 0.0),
        ram_kwh=float(data.ram_energy or 0.0),
    )


def _hardware(tracker: Any, settings: MeterSettings, notes: list[str]) -> Hardware:
    """What the tracker detected. The method of each component is read from codecarbon's
    hardware objects (not a public API: anything unexpected reads as "unknown")."""
    import codecarbon

    seen = tracker.get_detected_hardware()
    cpu_method, measured, gpu_method = "unknown", False, None
    ram_method = "estimated by codecarbon from the memory size (its guess of the modules, a fixed power each)"
    for part in getattr(tracker, "_hardware", []):
        kind = type(part).__name__
        if kind == "CPU":
            mode = str(getattr(part, "_mode", "unknown"))
            tdp = getattr(part, "_tdp", None)
            if mode in MEASURED_CPU_MODES:
                cpu_method, measured = MEASURED_CPU_MODES[mode], True
            elif settings.cpu_power is not None:
                cpu_method = f"estimated: the given {settings.cpu_power:g} W scaled by CPU load"
            elif mode == "cpu_load":
                generic = getattr(part, "_is_generic_tdp", False) or any(
                    "default power consumption" in line for line in notes
                )
                source = (
                    "codecarbon's default of 4 W per thread: the CPU model is not in its table"
                    if generic
                    else "the CPU model's TDP from codecarbon's table"
                )
                cpu_method = f"estimated: {tdp} W ({source}) scaled by CPU load"
            elif mode == "constant":
                cpu_method = f"estimated: half of a {tdp} W TDP, constant"
            else:
                cpu_method = f"estimated ({mode})"
        elif kind == "GPU":
            gpu_method = "NVML energy counters"
        elif kind in ("AppleSiliconChip", "Raspberry") and getattr(part, "chip_part", "") == "CPU":
            cpu_method, measured = f"{kind} sensors", True
    if settings.ram_power is not None:
        ram_method = f"the given {settings.ram_power:g} W"
    elif settings.tracking_mode == "process":
        ram_method += ", scaled to this process's memory"
    return Hardware(
        cpu_model=str(seen.get("cpu_model") or "unknown"),
        cpu_count=seen.get("cpu_count"),
        cpu_method=cpu_method,
        cpu_measured=measured,
        gpu_model=str(seen.get("gpu_model") or ""),
        gpu_count=int(seen.get("gpu_count") or 0),
        gpu_method=gpu_method,
        ram_gb=None if seen.get("ram_total_size") is None else float(seen["ram_total_size"]),
        ram_method=ram_method,
        tracking_mode=settings.tracking_mode,
        codecarbon_version=str(getattr(codecarbon, "__version__", "unknown")),
    )


class NullMeter:
    """Times nothing and measures nothing: the meter when no audit needs energy."""

    @contextmanager
    def phase(self, name: str, wait: bool = True) -> Iterator[None]:
        yield

    def stop(self) -> Measurement | None:
        return None

    def elsewhere(self, phase: str, why: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _Open:
    name: str
    started: float


@dataclass
class EnergyMeter:
    """Starts codecarbon in the background at once; see the module docstring."""

    settings: MeterSettings = field(default_factory=MeterSettings)

    def __post_init__(self) -> None:
        self._began = time.perf_counter()
        try:
            import_codecarbon()
        except Exception:  # noqa: BLE001 - _prepare meets the same error and reports it
            pass
        self._collector = _Collect()
        self._run: Any = None
        self._ready_at: float | None = None
        self._failure: str | None = None
        self._phases: list[Phase] = []
        self._elsewhere: list[tuple[str, str]] = []
        self._open: list[_Open] = []
        self._hardware: Hardware | None = None
        self._thread = threading.Thread(target=self._prepare, name="auditor-energy", daemon=True)
        self._thread.start()

    def _prepare(self) -> None:
        try:
            tracker = _new_tracker(self.settings, self._collector)
            tracker.start()  # detects the hardware: the slow part
            _quiet(self._collector)
            if getattr(tracker, "_start_time", 0) is None:
                raise MeterError("codecarbon's tracker did not start (its errors are in the notes)")
            self._hardware = _hardware(tracker, self.settings, self._collector.lines)
            self._run = tracker
            self._ready_at = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a meter that cannot start is reported, not fatal
            self._failure = f"{type(exc).__name__}: {exc}"

    def ready(self) -> bool:
        """Wait for codecarbon to be ready; False if it failed."""
        self._thread.join()
        return self._failure is None

    @contextmanager
    def phase(self, name: str, wait: bool = True) -> Iterator[None]:
        """Time and measure a span. Nested spans are named ``outer/inner``. Without
        ``wait`` a span that begins before codecarbon is ready is timed only."""
        full = "/".join([*(o.name for o in self._open), name]) if self._open else name
        tracker = None
        if (wait and self.ready()) or (not wait and self._ready_at is not None):
            try:
                tracker = _new_tracker(self.settings, self._collector)
                tracker.start()
            except Exception as exc:  # noqa: BLE001
                self._note(f"Phase {full}: codecarbon failed to start ({type(exc).__name__}: {exc}).")
                tracker = None
        span = _Open(full, time.perf_counter())
        self._open.append(span)
        try:
            yield
        finally:
            self._open.pop()
            seconds = time.perf_counter() - span.started
            energy = None
            if tracker is not None:
                try:
                    energy = _energy(tracker, seconds)
                except Exception as exc:  # noqa: BLE001
                    self._note(f"Phase {full}: {exc}.")
            self._phases.append(Phase(full, span.started - self._began, seconds, energy))

    def elsewhere(self, phase: str, why: str) -> None:
        """Say that the work of ``phase`` ran in processes this meter does not measure."""
        self._elsewhere.append((phase, why))

    def _note(self, text: str) -> None:
        if text not in self._collector.lines:
            self._collector.lines.append(text)

    def close(self) -> None:
        """Stop the run's tracker if :meth:`stop` was not reached (a run that failed)."""
        self._thread.join()
        tracker, self._run = self._run, None
        if tracker is not None:
            try:
                tracker.stop()
            except Exception:  # noqa: BLE001 - nothing to report on a run that already failed
                pass

    def stop(self) -> Measurement:
        """Stop measuring; raise MeterError when codecarbon could not measure at all."""
        self._thread.join()
        ended = time.perf_counter()
        if self._failure is not None or self._run is None or self._hardware is None:
            raise MeterError(f"codecarbon could not start: {self._failure or 'no tracker'}")
        assert self._ready_at is not None
        tracker, self._run = self._run, None
        run = _energy(tracker, ended - self._ready_at)
        _quiet(self._collector)
        return Measurement(
            run=run,
            run_seconds=ended - self._began,
            metered_from=self._ready_at - self._began,
            phases=tuple(sorted(self._phases, key=lambda p: p.start)),
            hardware=self._hardware,
            notes=tuple(self._collector.lines),
            elsewhere=tuple(self._elsewhere),
        )
