"""The carbon audit: the energy this run used, and its CO2, measured with codecarbon offline.

The run is measured from its start by :mod:`auditor.run.energy` (the pipeline starts the meter
because this audit needs ``energy``); this audit runs after all the others and turns the
measurement into figures a review board can use:

- energy (Wh) and emissions (g CO2eq) of the whole run, of the inference pass, of each
  audit and of any retraining (cross-validation), with mean power and the CPU/GPU/RAM shares;
- energy and emissions per 1,000 predictions (the inference pass over the audit data);
- an estimate of the training's energy and emissions, from the history's epoch times or
  ``train_duration``, at ``train_power`` watts or the power this machine drew, labelled as an
  estimate with its assumptions;
- the hardware codecarbon saw and how each component's power was obtained (energy counters,
  or an estimate: said plainly);
- equivalents with their sources.

Emissions = energy × PUE × the grid's carbon intensity (:mod:`auditor_plugins.carbon.grid`, codecarbon's
tables, offline; the world average when no country is given). The figures vary run to run:
report.json keeps this audit's result in ``measurements``, apart from the audits, and every
measured figure is declared ``noisy`` (the grid's carbon intensity, a table lookup, is not).
The meter is set up through the contract's hook, :meth:`CarbonAudit.meter_settings`, from
``tracking_mode``, ``cpu_power`` and ``ram_power``.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Mapping

from auditor.contract.errors import UsageError
from auditor.contract.plugin import Audit, MeterSettings, Option
from auditor.contract.result import AuditResult, Chart, Finding, Metric, Table
from auditor.run.energy import MIN_POWER_SECONDS

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext
    from auditor.run.energy import Energy, Measurement
    from auditor_plugins.carbon.grid import Intensity

#: An average passenger car's tailpipe CO2 per km: US EPA, "Tailpipe Greenhouse Gas
#: Emissions from a Typical Passenger Vehicle" (EPA-420-F-23-014, June 2023): about 400 g
#: CO2 per mile (8,887 g CO2 per gallon of gasoline at about 22 miles per gallon).
CAR_G_PER_KM = 400.0 / 1.609344
CAR_SOURCE = ("US EPA, Tailpipe Greenhouse Gas Emissions from a Typical Passenger Vehicle "
              "(EPA-420-F-23-014, 2023): about 400 g CO2 per mile, 249 g per km")
#: A 10 W LED bulb: energy / 10 W, no outside factor.
BULB_W = 10.0

PHASE_NAMES = {
    "load_model": "Loading the model",
    "load_data": "Reading the data",
    "inference": "Inference pass",
    "train_data": "Training data: reading and inference",
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)?", re.IGNORECASE)
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``"5400"``, ``"90m"``, ``"2.5h"``, ``"1d 3h 20m"``; ValueError otherwise."""
    cleaned = text.strip().lower().replace(",", " ")
    if not cleaned:
        raise ValueError("empty")
    total, position = 0.0, 0
    for match in _DURATION.finditer(cleaned):
        if cleaned[position:match.start()].strip():
            raise ValueError(text)
        unit = match.group(2)
        total += float(match.group(1)) * _UNITS[unit.lower() if unit else None]
        position = match.end()
    if cleaned[position:].strip() or position == 0:
        raise ValueError(text)
    return total


def _intensity_value(text: str) -> float | None:
    if not str(text).strip():
        return None
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _wh(kwh: float) -> float:
    return kwh * 1000.0


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _scaled(value: float, units: tuple[tuple[float, str], ...]) -> str:
    """``value`` in the largest of ``units`` ((size, name), largest first) it reaches."""
    for size, unit in units:  # noqa: B007 (the last one reached is used after the loop)
        if value >= size:
            break
    return f"{_num(value / size)} {unit}"


def _energy_text(wh: float) -> str:
    return _scaled(wh, ((1000.0, "kWh"), (1.0, "Wh"), (1e-3, "mWh")))


def _mass_text(g: float) -> str:
    """CO2eq mass: t, kg, g or mg."""
    return _scaled(g, ((1e6, "t"), (1000.0, "kg"), (1.0, "g"), (1e-3, "mg")))


def _distance_text(km: float) -> str:
    return _scaled(km, ((1.0, "km"), (1e-3, "m"), (1e-6, "mm")))


def _time_text(hours: float) -> str:
    if hours >= 48:
        return f"{_num(hours / 24)} days"
    if hours >= 1:
        return f"{_num(hours)} hours"
    if hours * 60 >= 1:
        return f"{_num(hours * 60)} minutes"
    return f"{_num(hours * 3600)} seconds"


def _phase_label(name: str, rows: int) -> str:
    parts = name.split("/")
    head = parts[0]
    if head.startswith("audit:"):
        label = f"Audit: {head[len('audit:'):]}"
    else:
        label = PHASE_NAMES.get(head, head)
        if head == "inference":
            label += f" ({rows:,} rows, reading included)"
    return " — ".join([label, *parts[1:]])


class CarbonAudit(Audit):
    name = "carbon"
    title = "Energy and carbon"
    description = ("Energy (Wh) and emissions (g CO2eq) of this run, its inference pass per 1,000 "
                   "predictions and the training (estimated), measured with codecarbon offline.")
    needs = ("energy",)
    options = (
        Option("country", "str", "", "Where the electricity comes from: ISO 3166 alpha-3 code (DEU, FRA, GBR, "
               "USA...) or the country's name. Empty: the world average, 475 g CO2eq/kWh."),
        Option("region", "str", "", "A state, province or bidding zone with its own figure (USA, CAN, CHN, SWE, "
               "NOR, FIN only), e.g. california, ontario, SE3."),
        Option("intensity", "str", "", "Carbon intensity in g CO2eq/kWh, e.g. from your electricity supplier; "
               "replaces the country's figure. Empty: codecarbon's figure for the country."),
        Option("pue", "float", 1.0, "Power usage effectiveness of the room or data centre (energy drawn by the "
               "building / by the computers): 1.0 counts the computers only; data centres are typically 1.1-1.6.",
               min=1.0, max=5.0),
        Option("tracking_mode", "str", "machine", "machine: the whole machine's power; process: this process's "
               "share of the CPU and its memory (for shared machines).", choices=("machine", "process")),
        Option("cpu_power", "float", 0.0, "The CPU's power at full load in watts, replacing codecarbon's "
               "detection (0: detect).", min=0.0),
        Option("ram_power", "float", 0.0, "The memory's power in watts, replacing codecarbon's estimate "
               "(0: estimate).", min=0.0),
        Option("train_duration", "str", "", "How long training took: 5400, 90m, 2.5h, 1d 4h. Empty: the "
               "history's epoch times (--history), when it has them."),
        Option("train_power", "float", 0.0, "Mean power of the training hardware in watts (e.g. 300 for one "
               "data-centre GPU with its host share). 0: the power this machine drew during the audit.", min=0.0),
        Option("train_country", "str", "", "Where training ran, if not carbon.country (same forms)."),
        Option("train_region", "str", "", "Region of train_country (as carbon.region)."),
    )

    def check(self, options: Mapping[str, Any]) -> None:
        """Every option that types alone do not check: places, numbers and durations."""
        from auditor_plugins.carbon.grid import place

        place(options["country"] or None, options["region"] or None)
        if options["train_country"] or options["train_region"]:
            place(options["train_country"] or options["country"] or None, options["train_region"] or None)
        try:
            _intensity_value(options["intensity"])
        except ValueError:
            raise UsageError(
                f"carbon.intensity must be a number of g CO2eq/kWh, 0 or more; got {options['intensity']!r}.",
                hint="E.g. -o carbon.intensity=120, or leave it empty for the country's figure.",
            ) from None
        if str(options["train_duration"]).strip():
            try:
                parse_duration(str(options["train_duration"]))
            except ValueError:
                raise UsageError(
                    f"carbon.train_duration must be a duration; got {options['train_duration']!r}.",
                    hint="Write seconds (5400) or with units: 90m, 2.5h, 1d 4h.",
                ) from None

    def meter_settings(self, options: Mapping[str, Any]) -> MeterSettings:
        """The energy meter's settings (the contract's hook): ``tracking_mode`` as given,
        ``cpu_power``/``ram_power`` in watts, 0 meaning codecarbon detects them."""

        def watts(key: str) -> float | None:
            value = options.get(key)
            return float(value) if value else None

        return MeterSettings(
            tracking_mode=str(options.get("tracking_mode") or "machine"),
            cpu_power=watts("cpu_power"),
            ram_power=watts("ram_power"),
        )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        from auditor_plugins.carbon.grid import intensity

        assert ctx.energy is not None  # the pipeline ran check(options) before any work
        grid = intensity(options["country"] or None, options["region"] or None, _intensity_value(options["intensity"]))
        return _Report(ctx, ctx.energy, grid, options).result()


class _Report:
    """Builds the carbon result from one measurement."""

    def __init__(self, ctx: AuditContext, m: Measurement, grid: Intensity, options: Mapping[str, Any]):
        self.ctx, self.m, self.grid, self.options = ctx, m, grid, options
        self.pue = float(options["pue"])
        self.g_per_wh = grid.g_per_kwh / 1000.0
        self.metrics: dict[str, Metric] = {}
        self.findings: list[Finding] = []
        self.tables: list[Table] = []
        self.charts: list[Chart] = []
        self.notes: list[str] = []

    def wh(self, energy: Energy) -> float:
        """Energy drawn, PUE included, in Wh."""
        return _wh(energy.kwh) * self.pue

    def grams(self, wh: float, g_per_wh: float | None = None) -> float:
        return wh * (self.g_per_wh if g_per_wh is None else g_per_wh)

    def metric(self, key: str, value: float | None, label: str, description: str, *,
               headline: bool = False, direction: str = "lower", noisy: bool = True) -> None:
        """Add a metric; measured figures vary between identical runs, so ``noisy`` by default."""
        self.metrics[key] = Metric(value=value, label=label, direction=direction,  # type: ignore[arg-type]
                                   headline=headline, description=description, noisy=noisy)

    def result(self) -> AuditResult:
        run_wh = self.wh(self.m.run)
        run_g = self.grams(run_wh)
        self.metric("energy_wh", run_wh, "Energy, whole run (Wh)",
                    "Energy the machine drew from when the meter started to the end of the last audit, "
                    "PUE included.", headline=True)
        self.metric("emissions_g", run_g, "Emissions, whole run (g CO2eq)",
                    "Energy x PUE x the grid's carbon intensity.", headline=True)
        self.metric("duration_seconds", self.m.run.seconds, "Metered duration (s)",
                    "How long the energy was measured for.", direction="none")
        self.metric("mean_power_w", self.m.run.watts, "Mean power (W)",
                    "Mean power drawn over the metered run (before PUE).", direction="none")
        self.metric("intensity_g_per_kwh", self.grid.g_per_kwh, "Carbon intensity (g CO2eq/kWh)",
                    f"{self.grid.place}: {self.grid.source}.", direction="none", noisy=False)
        per_1000 = self._inference()
        retraining = self._retraining()
        training = self._training(retraining)
        self._phases()
        self._hardware()
        self._assumptions(training)
        self._equivalents(run_g, run_wh, training)
        summary = (
            f"This run used {_energy_text(run_wh)} and emitted {_mass_text(run_g)} CO2eq "
            f"at {_num(self.grid.g_per_kwh)} g/kWh ({self.grid.place})"
            + (f"; {_energy_text(per_1000)} per 1,000 predictions" if per_1000 is not None else "")
            + (f"; training: about {_mass_text(training[1])} (estimated)" if training else "")
            + ("." if self.m.hardware.cpu_measured else
               ". CPU power is estimated, not measured (no energy counters readable here).")
        )
        return AuditResult(audit="carbon", title=CarbonAudit.title, status="pass", summary=summary,
                           metrics=self.metrics, findings=self.findings, tables=self.tables,
                           charts=self.charts, notes=self.notes)

    def _inference(self) -> float | None:
        phase = self.m.phase("inference")
        rows = self.ctx.data.n_rows
        if phase is None or phase.energy is None or rows == 0:
            self.findings.append(Finding("info", "inference-not-metered",
                                         "The inference pass was not metered, so there is no per-prediction figure."))
            return None
        wh = self.wh(phase.energy)
        self.metric("inference_energy_wh", wh, "Energy, inference pass (Wh)",
                    f"The one inference pass over the {rows:,} rows of the audit data, reading them included: "
                    "the data are read in chunks while the model runs, and the two are measured together.")
        self.metric("inference_emissions_g", self.grams(wh), "Emissions, inference pass (g CO2eq)",
                    "Energy of the inference pass x PUE x carbon intensity.")
        per = wh / rows * 1000.0
        self.metric("energy_per_1000_wh", per, "Energy per 1,000 predictions (Wh)",
                    "Inference-pass energy / rows x 1,000: a basis to project serving costs (this batch size "
                    "and device; loading the model excluded, reading the data included).", headline=True)
        self.metric("emissions_per_1000_g", self.grams(per), "Emissions per 1,000 predictions (g CO2eq)",
                    "Energy per 1,000 predictions x carbon intensity.")
        return per

    def _retraining(self) -> Energy | None:
        found = [(p.seconds, p.energy) for p in self.m.phases if p.name.endswith("/retraining") and p.energy is not None]
        if not found:
            return None
        from auditor.run.energy import Energy

        energy = Energy(
            seconds=sum(seconds for seconds, _ in found),
            cpu_kwh=sum(part.cpu_kwh for _, part in found),
            gpu_kwh=sum(part.gpu_kwh for _, part in found),
            ram_kwh=sum(part.ram_kwh for _, part in found),
        )
        wh = self.wh(energy)
        self.metric("retraining_energy_wh", wh, "Energy, retraining (Wh)",
                    "Measured while the cross-validation audit retrained the model with --trainer.")
        self.metric("retraining_emissions_g", self.grams(wh), "Emissions, retraining (g CO2eq)",
                    "Retraining energy x PUE x carbon intensity.")
        return energy

    def _training(self, retraining: Energy | None) -> tuple[float, float, list[str]] | None:
        """(Wh, g, assumptions) of the estimated training, or None without a duration."""
        from auditor_plugins.carbon.grid import intensity

        options, history = self.options, self.ctx.history
        text = str(options["train_duration"]).strip()
        if text:
            seconds = parse_duration(text)
            said = f"training took {_time_text(seconds / 3600)} (given)"
        elif history is not None and history.seconds is not None:
            times = history.seconds[[math.isfinite(float(v)) for v in history.seconds]]
            if len(times) == 0:
                return None
            seconds = float(times.sum())
            said = (f"training took {_time_text(seconds / 3600)}: the sum of {len(times)} epoch times in "
                    f"{history.source}" + (f" ({len(history.seconds) - len(times)} epochs have none)"
                                           if len(times) < len(history.seconds) else ""))
        else:
            return None
        given = float(options["train_power"])
        if given > 0:
            watts, power = given, f"the training hardware drew {_num(given)} W on average (given)"
        elif retraining is not None and retraining.watts:
            watts = retraining.watts
            power = (f"it drew the mean power this machine drew while retraining the model for cross-validation "
                     f"({_num(watts)} W)")
        else:
            watts = self.m.run.watts or 0.0
            power = f"it drew the mean power this machine drew during this audit ({_num(watts)} W)"
        place = self.grid
        if options["train_country"] or options["train_region"]:
            place = intensity(options["train_country"] or options["country"] or None,
                              options["train_region"] or None)
        wh = seconds * watts / 3600.0 * self.pue
        grams = wh * place.g_per_kwh / 1000.0
        assumptions = [said, power, f"at {_num(place.g_per_kwh)} g CO2eq/kWh ({place.place})",
                       f"PUE {_num(self.pue)}"]
        self.metric("training_energy_wh", wh, "Training energy, estimated (Wh)",
                    "Estimate: " + "; ".join(assumptions) + ".")
        self.metric("training_emissions_g", grams, "Training emissions, estimated (g CO2eq)",
                    "Estimate: training energy x carbon intensity.", headline=True)
        advice = ("" if given > 0 or retraining is not None else
                  " Training on a GPU draws far more than this machine did while auditing: give the training "
                  "hardware's power in carbon.train_power (watts).")
        self.findings.append(Finding("info", "training-estimated",
                                     f"Training cost is an estimate, not a measurement: {'; '.join(assumptions)}."
                                     + advice))
        return wh, grams, assumptions

    def _phases(self) -> None:
        rows, bars, labels = [], [], []
        total = self.m.run.kwh
        for phase in self.m.phases:
            label = _phase_label(phase.name, self.ctx.data.n_rows)
            e = phase.energy
            if e is None:
                rows.append([label, phase.start, phase.seconds, None, None, None, None, None, None])
                continue
            wh = self.wh(e)
            share = [100.0 * part / e.kwh if e.kwh > 0 else None for part in (e.cpu_kwh, e.gpu_kwh, e.ram_kwh)]
            rows.append([label, phase.start, phase.seconds, wh, *share, e.watts, self.grams(wh)])
            if "/" not in phase.name:
                labels.append(label)
                bars.append(wh)
        run = self.m.run
        wh = self.wh(run)
        shares = [100.0 * part / total if total > 0 else None for part in (run.cpu_kwh, run.gpu_kwh, run.ram_kwh)]
        rows.append(["Whole metered run", self.m.metered_from, run.seconds, wh, *shares, run.watts, self.grams(wh)])
        unmetered = [str(r[0]) for r in rows[:-1] if r[3] is None]
        self.tables.append(Table(
            name="phases", title="Energy by phase",
            columns=["Phase", "Began (s)", "Seconds", "Energy (Wh)", "CPU %", "GPU %", "RAM %",
                     "Mean power (W)", "Emissions (g CO2eq)"],
            rows=rows,
            caption=("Each phase measured with its own codecarbon tracker; nested phases (—) are part of the "
                     "phase above. Energy includes PUE. "
                     + (f"Phases shorter than {MIN_POWER_SECONDS:g} s (a skipped or very quick audit) show no mean "
                        "power: their energy is mostly the meter's own start and stop. "
                        if any(r[7] is None and r[3] is not None for r in rows) else "")
                     + (f"Not metered (they ran while codecarbon started, {_num(self.m.metered_from)} s): "
                        f"{', '.join(unmetered)}; the whole-run figure begins after them." if unmetered else "")),
        ))
        if bars:
            self.charts.append(Chart(
                name="energy_by_phase", title="Energy by phase", kind="bar",
                data={"x_label": "Phase", "y_label": "Energy (Wh)", "labels": labels, "values": bars,
                      "errors": None},
                caption="Energy each phase drew (PUE included), measured with codecarbon.",
            ))

    def _hardware(self) -> None:
        hw = self.m.hardware
        rows = [["CPU", f"{hw.cpu_model} ({hw.cpu_count} threads)" if hw.cpu_count else hw.cpu_model,
                 hw.cpu_method, "measured" if hw.cpu_measured else "estimated"]]
        if hw.gpu_method:
            rows.append(["GPU", f"{hw.gpu_model}" + (f" ({hw.gpu_count})" if hw.gpu_count > 1 else ""),
                         hw.gpu_method, "measured"])
        else:
            rows.append(["GPU", "none seen", "–", "–"])
        ram = f"{hw.ram_gb:.1f} GB" if hw.ram_gb is not None else "unknown"
        run = self.m.run
        watts = [part * 3.6e6 / run.seconds if run.seconds > 0 else None
                 for part in (run.cpu_kwh, run.gpu_kwh, run.ram_kwh)]
        rows[0][2] += f"; mean {_num(watts[0])} W over the run"
        if hw.gpu_method:
            rows[1][2] += f"; mean {_num(watts[1])} W over the run"
        rows.append(["Memory", ram, f"{hw.ram_method}; mean {_num(watts[2])} W over the run", "estimated"])
        self.tables.append(Table(
            name="hardware", title="Hardware and how its power was obtained",
            columns=["Component", "Seen", "How power was obtained", "Kind"], rows=rows,
            caption=(f"codecarbon {hw.codecarbon_version}, {hw.tracking_mode} tracking mode, offline "
                     "(no network). Measured = read from hardware energy counters; estimated = a power model."),
        ))
        if not hw.cpu_measured:
            self.findings.append(Finding(
                "info", "power-estimated",
                "CPU power is not measured here (no readable energy counters such as RAPL): it is "
                f"{hw.cpu_method}. Memory power is always a model. Treat the figures as estimates; where RAPL "
                "exists, make /sys/class/powercap/intel-rapl readable to measure.",
            ))
        self.notes.extend(f"codecarbon: {line}" for line in self.m.notes)
        for _phase, why in self.m.elsewhere:
            self.findings.append(Finding("info", "phase-not-metered", why))

    def _assumptions(self, training: tuple[float, float, list[str]] | None) -> None:
        rows = [
            ["Carbon intensity", f"{_num(self.grid.g_per_kwh)} g CO2eq/kWh, {self.grid.place}", self.grid.source],
            ["PUE", _num(self.pue), "carbon.pue (1.0: the computers only, no cooling or building overhead)"],
            ["Metered from", f"{_num(self.m.metered_from)} s into the run",
             "codecarbon started while the model and data loaded"],
        ]
        if training:
            rows.append(["Training", "; ".join(training[2]), "estimate, not a measurement"])
        self.tables.append(Table(name="assumptions", title="Method and assumptions",
                                 columns=["What", "Value", "Source"], rows=rows))
        if self.grid.country is None and self.grid.source != "given in the options":
            self.findings.append(Finding(
                "info", "world-average-intensity",
                f"No country given: emissions use the world average, {_num(self.grid.g_per_kwh)} g CO2eq/kWh. "
                "Set carbon.country (e.g. -o carbon.country=DEU) for your grid: France is about 56, Germany 381.",
            ))

    def _equivalents(self, run_g: float, run_wh: float, training: tuple[float, float, list[str]] | None) -> None:
        rows = [["This run", _distance_text(run_g / CAR_G_PER_KM), _time_text(run_wh / BULB_W)]]
        if training:
            rows.append(["Training (estimated)", _distance_text(training[1] / CAR_G_PER_KM),
                         _time_text(training[0] / BULB_W)])
        self.tables.append(Table(
            name="equivalents", title="Equivalents",
            columns=["What", "Driving an average car", "A 10 W LED bulb lit for"], rows=rows,
            caption=f"Car: {CAR_SOURCE}. Bulb: energy / 10 W.",
        ))
