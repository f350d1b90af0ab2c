"""The carbon audit measures real runs with the real codecarbon tracker, offline and silently,
and its figures agree with each other, with codecarbon's own tracker and with its published
tables: emissions = energy x intensity, per-1,000 figures = totals / rows, phases within the
whole run, training estimates = hours x watts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_clean_input_error, invoke, read_report

from auditor.contract.errors import PluginError, UsageError
from auditor.contract.plugin import Audit, Option
from auditor.contract.result import AuditResult
from auditor.run.energy import EnergyMeter, MeterError, MeterSettings, settings_for
from auditor.run.pipeline import RunConfig, execute
from auditor.run.registry import discover
from auditor_plugins.carbon.audit import CAR_G_PER_KM, parse_duration
from auditor_plugins.carbon.grid import intensity

CODECARBON_DATA = Path(__import__("codecarbon").__file__).parent / "data" / "private_infra"


def published_intensity(code: str) -> float:
    """The country's figure as codecarbon's bundled table publishes it (g CO2eq/kWh)."""
    table = json.loads((CODECARBON_DATA / "global_energy_mix.json").read_text())
    return float(table[code]["carbon_intensity"])


def tracker_intensity(**place: str) -> float:
    """g CO2eq/kWh as codecarbon's own offline tracker applies it: its emissions over its energy
    for a real workload, measured for ``place`` (country_iso_code=..., region=...)."""
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(output_methods=[], output_handlers=[], log_level="error",
                                      allow_multiple_runs=True, electricitymaps_api_token="", **place)
    tracker.start()
    started, a = time.perf_counter(), np.random.default_rng(0).random((200, 200))
    while time.perf_counter() - started < 0.3:
        a = np.tanh(a @ a)
    tracker.stop()
    data = tracker.final_emissions_data
    return data.emissions / data.energy_consumed * 1000.0


@pytest.fixture(scope="module")
def measured(breast_cancer, tmp_path_factory):
    """One real run of every built-in audit on the breast-cancer model, in Germany."""
    out = tmp_path_factory.mktemp("carbon")
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", out, "-q",
                    "-o", "carbon.country=DEU", "--format", "json,md,html,junit")
    assert result.exit_code in (0, 1), result.output
    return out, read_report(out), breast_cancer


def metric(carbon, key):
    return carbon["metrics"][key]["value"]


def table(carbon, name):
    found = next(t for t in carbon["tables"] if t["name"] == name)
    return [dict(zip(found["columns"], row)) for row in found["rows"]]


def test_the_carbon_result_lives_in_measurements_apart_from_the_audits(measured):
    _, report, _ = measured
    assert "carbon" not in report["audits"]
    carbon = report["measurements"]["carbon"]
    assert carbon["status"] == "pass"
    assert report["schema_version"] == "2.0"


def test_a_real_run_uses_energy_and_every_metered_phase_does(measured):
    _, report, _ = measured
    carbon = report["measurements"]["carbon"]
    assert metric(carbon, "energy_wh") > 0
    assert metric(carbon, "duration_seconds") > 0
    phases = table(carbon, "phases")
    names = [p["Phase"] for p in phases]
    assert names[-1] == "Whole metered run"
    assert "Inference pass (228 rows, reading included)" in names
    assert {"Audit: metrics", "Audit: fairness", "Audit: explain"} <= set(names)
    assert "Audit: carbon" not in names  # it reports on the run, after it
    assert all(p["Energy (Wh)"] > 0 for p in phases if p["Energy (Wh)"] is not None)


def test_emissions_are_energy_times_the_intensity_codecarbon_applies_for_the_country(measured):
    _, report, _ = measured
    carbon = report["measurements"]["carbon"]
    g_per_kwh = metric(carbon, "intensity_g_per_kwh")
    assert g_per_kwh == pytest.approx(published_intensity("DEU"), rel=1e-12)  # 380.95
    assert g_per_kwh == pytest.approx(tracker_intensity(country_iso_code="DEU"), rel=1e-9)
    assert metric(carbon, "emissions_g") == pytest.approx(metric(carbon, "energy_wh") * g_per_kwh / 1000, rel=1e-12)
    assert metric(carbon, "inference_emissions_g") == pytest.approx(
        metric(carbon, "inference_energy_wh") * g_per_kwh / 1000, rel=1e-12)
    for phase in table(carbon, "phases"):
        if phase["Energy (Wh)"] is not None:
            assert phase["Emissions (g CO2eq)"] == pytest.approx(phase["Energy (Wh)"] * g_per_kwh / 1000, rel=1e-12)


def test_per_thousand_predictions_are_the_inference_pass_over_its_rows(measured):
    _, report, trained = measured
    carbon = report["measurements"]["carbon"]
    rows = len(trained.frame)
    assert metric(carbon, "energy_per_1000_wh") == pytest.approx(
        metric(carbon, "inference_energy_wh") / rows * 1000, rel=1e-12)
    assert metric(carbon, "emissions_per_1000_g") == pytest.approx(
        metric(carbon, "energy_per_1000_wh") * metric(carbon, "intensity_g_per_kwh") / 1000, rel=1e-12)
    inference = next(p for p in table(carbon, "phases") if p["Phase"].startswith("Inference pass"))
    assert inference["Energy (Wh)"] == pytest.approx(metric(carbon, "inference_energy_wh"), rel=1e-12)


def test_phases_add_up_to_no_more_than_the_whole_run(measured):
    """Phases are measured by their own trackers inside the run's: their durations and their
    energy fit in the whole run's."""
    _, report, _ = measured
    phases = table(report["measurements"]["carbon"], "phases")
    whole = phases[-1]
    top = [p for p in phases[:-1] if " — " not in p["Phase"] and p["Energy (Wh)"] is not None]
    assert sum(p["Seconds"] for p in top) <= whole["Seconds"] + 1e-3
    assert sum(p["Energy (Wh)"] for p in top) <= whole["Energy (Wh)"] * 1.05
    assert sum(p["Energy (Wh)"] for p in top) >= whole["Energy (Wh)"] * 0.5
    for p in phases:
        if p["Energy (Wh)"] is not None:
            shares = [p["CPU %"], p["GPU %"], p["RAM %"]]
            assert sum(shares) == pytest.approx(100.0)
            if p["Seconds"] >= 0.05:
                assert p["Mean power (W)"] == pytest.approx(p["Energy (Wh)"] * 3600 / p["Seconds"], rel=1e-9)
            else:  # mostly the tracker's own start and stop: no power is made up from it
                assert p["Mean power (W)"] is None


def test_a_skipped_audit_shows_no_mean_power(measured):
    """Issue 17: a skipped audit's phase lasted ~0 s and the table showed 508.6 W for it (the
    meter's own few milliseconds divided by our clock's fraction of one)."""
    out, report, _ = measured
    skipped = {name for name, audit in report["audits"].items() if audit["status"] == "skipped"}
    assert skipped, "the fixture's run skips the audits that need more inputs"
    phases = {p["Phase"]: p for p in table(report["measurements"]["carbon"], "phases")}
    for name in skipped:
        phase = phases[f"Audit: {name}"]
        assert phase["Seconds"] < 0.05 and phase["Mean power (W)"] is None
    markdown = (out / "report.md").read_text(encoding="utf-8")
    row = next(line for line in markdown.splitlines() if line.startswith(f"| Audit: {sorted(skipped)[0]} |"))
    assert row.split("|")[8].strip() == "—"
    assert "show no mean power" in markdown


def test_the_report_says_how_power_was_obtained(measured):
    _, report, _ = measured
    carbon = report["measurements"]["carbon"]
    hardware = {row["Component"]: row for row in table(carbon, "hardware")}
    assert set(hardware) == {"CPU", "GPU", "Memory"}
    rapl = os.access("/sys/class/powercap/intel-rapl/subsystem", os.R_OK)
    assert hardware["CPU"]["Kind"] == ("measured" if rapl else "estimated")
    if not rapl:  # this machine: no RAPL, so it must say the figure is a model
        assert "estimated" in hardware["CPU"]["How power was obtained"]
        assert any(f["code"] == "power-estimated" for f in carbon["findings"])
        assert "estimated, not measured" in carbon["summary"]
    assert hardware["Memory"]["Kind"] == "estimated"


def test_equivalents_use_the_cited_factors(measured):
    _, report, _ = measured
    carbon = report["measurements"]["carbon"]
    assert CAR_G_PER_KM == pytest.approx(400 / 1.609344)
    row = table(carbon, "equivalents")[0]
    assert row["What"] == "This run"
    caption = next(t for t in carbon["tables"] if t["name"] == "equivalents")["caption"]
    assert "EPA-420-F-23-014" in caption


def test_every_format_shows_the_carbon_section(measured):
    out, _, _ = measured
    assert "Energy and carbon" in (out / "report.md").read_text()
    assert "Energy and carbon" in (out / "report.html").read_text()
    assert 'name="carbon"' in (out / "report.junit.xml").read_text()


def test_render_rebuilds_the_carbon_section_from_the_json(measured, tmp_path):
    out, _, _ = measured
    result = invoke("render", out / "report.json", "--format", "md", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.md").read_text() == (out / "report.md").read_text()


@pytest.mark.parametrize("country, region", [("USA", "california"), ("FRA", None), ("CAN", "ontario")])
def test_places_give_the_intensity_codecarbon_own_tracker_applies(country, region):
    place = {"country_iso_code": country, **({"region": region} if region else {})}
    assert intensity(country, region).g_per_kwh == pytest.approx(tracker_intensity(**place), rel=1e-9)


def test_no_country_means_the_world_average_and_says_so(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path, "-q",
                    "--audits", "metrics,carbon", "--format", "json")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    world = json.loads((CODECARBON_DATA / "carbon_intensity_per_source.json").read_text())["world_average"]
    assert metric(carbon, "intensity_g_per_kwh") == world == 475
    assert any(f["code"] == "world-average-intensity" for f in carbon["findings"])


def test_a_given_intensity_and_pue_replace_the_tables(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path, "-q", "--format", "json",
                    "--audits", "metrics,carbon", "-o", "carbon.intensity=100", "-o", "carbon.pue=1.5")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    whole = table(carbon, "phases")[-1]
    assert metric(carbon, "intensity_g_per_kwh") == 100
    # PUE 1.5: energy drawn = the machine's energy x 1.5, at the machine's mean power.
    assert metric(carbon, "energy_wh") == pytest.approx(metric(carbon, "mean_power_w") * whole["Seconds"] / 3600 * 1.5,
                                                        rel=1e-9)
    assert metric(carbon, "emissions_g") == pytest.approx(metric(carbon, "energy_wh") * 0.1, rel=1e-12)


def history_seconds(path: Path) -> float:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    column = next(c for c in rows[0] if "time" in c.lower() or "second" in c.lower())
    return sum(float(r[column]) for r in rows if r[column])


def test_training_is_estimated_from_the_history_epoch_times(tmp_path):
    from auditor.loading.bundled import demo_files

    demo = demo_files()
    result = invoke(demo.model, "--data", demo.data, "--history", demo.history, "--out", tmp_path, "-q",
                    "--format", "json", "--audits", "carbon", "-o", "carbon.train_power=300",
                    "-o", "carbon.train_country=FRA", "-o", "carbon.pue=1.2")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    seconds = history_seconds(demo.history)
    assert seconds > 0
    expected_wh = seconds / 3600 * 300 * 1.2
    assert metric(carbon, "training_energy_wh") == pytest.approx(expected_wh, rel=1e-9)
    assert metric(carbon, "training_emissions_g") == pytest.approx(
        expected_wh * published_intensity("FRA") / 1000, rel=1e-9)
    finding = next(f for f in carbon["findings"] if f["code"] == "training-estimated")
    assert "estimate" in finding["message"] and "drew 300 W on average (given)" in finding["message"]


def test_training_duration_can_be_given(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path, "-q", "--format", "json",
                    "--audits", "carbon", "-o", "carbon.train_duration=1h 30m", "-o", "carbon.train_power=100",
                    "-o", "carbon.country=GBR")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    assert metric(carbon, "training_energy_wh") == pytest.approx(150.0)
    assert metric(carbon, "training_emissions_g") == pytest.approx(150.0 * published_intensity("GBR") / 1000)


@pytest.mark.parametrize("text, seconds", [
    ("5400", 5400), ("90m", 5400), ("1.5h", 5400), ("1h 30m", 5400), ("1d 2h", 93600), ("45s", 45), ("2H", 7200),
])
def test_durations_are_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "h", "1h soon", "-5"])
def test_durations_that_are_not_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_crossval_retraining_is_measured_and_is_the_training_power_used(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--train-data", folder / "train.csv",
                    "--trainer", "trainers:breast_cancer", "--audits", "crossval,carbon", "-o", "crossval.seeds=1",
                    "-o", "carbon.train_duration=2h", "--out", tmp_path, "-q", "--format", "json")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    phases = {p["Phase"]: p for p in table(carbon, "phases")}
    retraining = phases["Audit: crossval — retraining"]
    assert retraining["Energy (Wh)"] > 0
    assert retraining["Seconds"] <= phases["Audit: crossval"]["Seconds"]
    assert metric(carbon, "retraining_energy_wh") == pytest.approx(retraining["Energy (Wh)"], rel=1e-12)
    # With no train_power, training is assumed to draw what retraining drew here.
    assert metric(carbon, "training_energy_wh") == pytest.approx(2 * retraining["Mean power (W)"], rel=1e-9)


@pytest.mark.parametrize("option, fragment", [
    ("carbon.country=Atlantis", "is not a country codecarbon has grid data for"),
    ("carbon.region=bavaria", "carbon.region needs carbon.country"),
    ("carbon.intensity=lots", "carbon.intensity must be a number"),
    ("carbon.train_duration=a while", "carbon.train_duration must be a duration"),
    ("carbon.tracking_mode=galaxy", "must be one of machine, process"),
])
def test_bad_carbon_options_exit_2_before_any_work(breast_cancer, tmp_path, option, fragment):
    folder = breast_cancer.folder
    out = tmp_path / "out"
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", out, "-o", option)
    assert_clean_input_error(result, fragment)
    assert not out.exists()


def test_a_region_codecarbon_does_not_know_is_refused_with_the_choices(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path / "out",
                    "-o", "carbon.country=USA", "-o", "carbon.region=atlantis")
    assert_clean_input_error(result, "is not a state codecarbon knows in USA", "california")


HOSTILE_CONFIG = """[codecarbon]
output_methods = csv,api
save_to_file = true
output_dir = {spill}
output_file = spilled.csv
api_endpoint = http://127.0.0.1:9/api
emissions_endpoint = http://127.0.0.1:9/emissions
save_to_api = true
api_call_interval = 1
country_iso_code = FRA
force_carbon_intensity_g_co2e_kwh = 999
electricitymaps_api_token = not-a-token
allow_multiple_runs = false
log_level = debug
pue = 3
"""

GUARD = """
import os, sys
connects, writes = [], []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        connects.append(repr(args[1:] if event == "socket.connect" else args[:2]))
    elif event == "open" and isinstance(args[0], str):
        mode, flags = args[1], args[2]
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
        if (isinstance(flags, int) and flags & writing) or (mode and any(c in str(mode) for c in "wax+")):
            writes.append(args[0])
sys.addaudithook(hook)
from auditor.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("AUDIT-GUARD " + __import__("json").dumps({"code": code, "connects": connects, "writes": writes}))
"""


def test_codecarbon_writes_nothing_calls_no_one_and_prints_nothing_whatever_its_config_says(breast_cancer, tmp_path):
    """A repository being audited can hold a .codecarbon.config; so can the user's home and the
    environment. None of them may make the audit write files, reach a server, change the
    country or the PUE, take a lock, or print."""
    work, home, spill = tmp_path / "repo", tmp_path / "home", tmp_path / "spill"
    for folder in (work, home, spill):
        folder.mkdir()
    (work / ".codecarbon.config").write_text(HOSTILE_CONFIG.format(spill=spill))
    (home / ".codecarbon.config").write_text(HOSTILE_CONFIG.format(spill=spill))
    env = {**os.environ, "HOME": str(home), "CODECARBON_OUTPUT_DIR": str(spill), "CODECARBON_SAVE_TO_FILE": "true",
           "CODECARBON_COUNTRY_ISO_CODE": "FRA", "CODECARBON_LOG_LEVEL": "debug", "CODECARBON_PUE": "3"}
    folder = breast_cancer.folder
    out = work / "reports"
    proc = subprocess.run(
        [sys.executable, "-c", GUARD, str(folder / "model.pt"), "--data", str(folder / "test.csv"), "--out", str(out),
         "--audits", "metrics,carbon", "--format", "json", "-q"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    guard = json.loads(proc.stdout.split("AUDIT-GUARD ", 1)[1])
    assert guard["code"] == 0, proc.stderr
    assert proc.stderr == ""
    # the only connection: the parent's to the local server runs are forked from (a Unix
    # socket multiprocessing makes); codecarbon runs in the confined child, which has no sockets
    assert [c for c in guard["connects"] if "pymp-" not in c] == []
    assert any(w.startswith(str(out)) for w in guard["writes"])  # the guard sees writes: the report's
    ours = [w for w in guard["writes"] if not w.startswith(str(out))]
    assert [w for w in ours if str(tmp_path) in w or "codecarbon" in w or w.endswith(".csv")] == []
    assert sorted(p.name for p in work.iterdir()) == [".codecarbon.config", "reports"]
    assert list(spill.iterdir()) == [] and sorted(p.name for p in home.iterdir()) == [".codecarbon.config"]
    carbon = read_report(out)["measurements"]["carbon"]
    assert metric(carbon, "intensity_g_per_kwh") == 475  # not FRA, not 999: only our options count
    whole = table(carbon, "phases")[-1]
    assert whole["Mean power (W)"] == pytest.approx(metric(carbon, "mean_power_w"), rel=1e-9)  # PUE 1, not 3


def test_process_tracking_mode_measures_this_process(breast_cancer, tmp_path):
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path, "-q", "--format", "json",
                    "--audits", "metrics,carbon", "-o", "carbon.tracking_mode=process")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path)["measurements"]["carbon"]
    assert metric(carbon, "energy_wh") > 0
    caption = next(t for t in carbon["tables"] if t["name"] == "hardware")["caption"]
    assert "process tracking mode" in caption


class _BrokenMeterAudit(Audit):
    """A third-party audit that needs energy but sets the meter up, through the contract's
    ``meter_settings`` hook, with a mode codecarbon refuses."""

    name = "broken_meter"
    title = "Broken meter"
    description = "Needs energy, asks codecarbon for an impossible tracking mode."
    needs = ("energy",)
    options = (Option("mode", "str", "galaxy", "Not a codecarbon mode."),)

    def meter_settings(self, options):
        return MeterSettings(tracking_mode=options["mode"])

    def run(self, ctx, options):
        return AuditResult(audit=self.name, title=self.title, status="pass", summary="unreachable")


class _QuietEnergyAudit(_BrokenMeterAudit):
    """Needs energy and defines no hook: an option that happens to be called tracking_mode is
    its own business, never read by the core."""

    name = "quiet_energy"
    options = (Option("tracking_mode", "str", "galaxy", "Not read by the meter."),)
    meter_settings = None  # type: ignore[assignment]


def test_the_meter_is_set_up_by_the_audits_hook_and_by_nothing_else():
    carbon = discover()["carbon"]
    options = {"carbon": {"tracking_mode": "process", "cpu_power": 65.0, "ram_power": 0.0}}
    assert settings_for({"carbon": carbon}, options) == MeterSettings("process", 65.0, None)
    assert settings_for({"quiet_energy": _QuietEnergyAudit()}, {"quiet_energy": {"tracking_mode": "galaxy"}}) \
        == MeterSettings()  # no hook: the defaults, whatever the options are called
    assert settings_for({"metrics": discover()["metrics"]}, {"metrics": {}}) is None  # nobody needs energy
    first = {"quiet_energy": _QuietEnergyAudit(), "broken_meter": _BrokenMeterAudit(), "carbon": carbon}
    assert settings_for(first, {"broken_meter": {"mode": "galaxy"}, **options}).tracking_mode == "galaxy"


@pytest.mark.parametrize("hook, error, message", [
    (lambda options: {"tracking_mode": "machine"}, PluginError,
     "The audit plugin 'broken_meter' returned dict from meter_settings; an auditor.contract.plugin.MeterSettings"),
    (lambda options: 1 / 0, PluginError,
     "The audit plugin 'broken_meter' failed in meter_settings: ZeroDivisionError: division by zero."),
    (lambda options: (_ for _ in ()).throw(UsageError("broken_meter.mode must be a mode.")), UsageError,
     "broken_meter.mode must be a mode."),
])
def test_a_hook_that_breaks_is_named(hook, error, message):
    audit = _BrokenMeterAudit()
    audit.meter_settings = hook  # type: ignore[method-assign]
    with pytest.raises(error) as caught:
        settings_for({"broken_meter": audit}, {"broken_meter": {"mode": "x"}})
    assert type(caught.value) is error and caught.value.message.startswith(message)


def test_carbon_declares_its_measured_figures_noisy_and_the_grid_lookup_not(measured):
    metrics = measured[1]["measurements"]["carbon"]["metrics"]
    assert metrics["intensity_g_per_kwh"]["noisy"] is False
    assert {k for k, m in metrics.items() if not m["noisy"]} == {"intensity_g_per_kwh"}
    assert all(m["tolerance"] is None for m in metrics.values())  # never gated for regression unless asked


def test_a_meter_that_cannot_start_errors_its_audits_and_spares_the_others(breast_cancer):
    installed = discover()
    folder = breast_cancer.folder
    run = execute(RunConfig(model=folder / "model.pt", data=folder / "test.csv"),
                  {"metrics": installed["metrics"], "broken_meter": _BrokenMeterAudit()})
    assert run.report["audits"]["metrics"]["status"] in ("pass", "warn", "fail")
    broken = run.report["measurements"]["broken_meter"]
    assert broken["status"] == "error" and "MeterError" in broken["summary"]
    with pytest.raises(MeterError):
        EnergyMeter(MeterSettings(tracking_mode="galaxy")).stop()


def test_settings_in_pyproject_reach_the_carbon_audit(breast_cancer, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.auditor.carbon]\ncountry = "France"\npue = 1.25\n')
    monkeypatch.chdir(tmp_path)
    folder = breast_cancer.folder
    result = invoke(folder / "model.pt", "--data", folder / "test.csv", "--out", tmp_path / "out", "-q",
                    "--format", "json", "--audits", "carbon")
    assert result.exit_code == 0, result.output
    carbon = read_report(tmp_path / "out")["measurements"]["carbon"]
    assert metric(carbon, "intensity_g_per_kwh") == pytest.approx(published_intensity("FRA"))
    assert carbon["options"]["pue"] == 1.25
