"""Figures and tables: the registry of outputs, failed runs drawn and named, and the producer notebooks on a small
constructed sweep that includes a failed run."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
from fastcore.test import test_eq as eq, test_fail as fails   # aliases: pytest would collect test_*
from synthtrial.core import ParameterError, SynthtrialError
from synthtrial.figures import (
    OUTPUTS,
    declared,
    planned_files,
    register_figure,
    check_planned,
    check_written,
    run_status,
    plot_default_vs_tuned,
    violation_rates_table,
    plot_km_grid,
    text_overlaps,
)
from synthtrial.findings import simulate_results

ROOT = Path(__file__).resolve().parents[1]
TABDDPM_FAIL = "rejection sampling: acceptance 0.19 % is below the 1 % floor"

def results_with_failure(dataset="myeloid") -> pd.DataFrame:
    "A simulated results table (tvae, tabddpm × default, compound, fidelity) whose tabddpm default failed."
    r = simulate_results(
        models=("tvae", "tabddpm"),
        objectives=("compound", "fidelity"),
        n_train_seeds=3,
        n_sample_seeds=1,
        dataset=dataset,
        n_trials=3,
    )
    r = pd.concat([r, r[r["metric"] == "compound"].assign(split="train")], ignore_index=True)
    r = r.assign(
        error="", fit_seconds=1.0, sample_seconds=0.5, invalid_rate_raw=0.1, invalid_rate_final=0.0, acceptance_rate=0.9
    )
    failed = (r["model"] == "tabddpm") & (r["config"] == "default")
    fail_rows = r[failed & (r["metric"] == "compound") & (r["split"] == "test")].assign(
        status="failed", error=TABDDPM_FAIL, value=np.nan
    )
    return pd.concat([r[~failed], fail_rows], ignore_index=True)

def violations_with_failure(dataset="myeloid") -> pd.DataFrame:
    "Violation runs of both models' defaults; tabddpm's repair run failed."
    rows = [
        {
            "dataset": dataset,
            "model": m,
            "config": "default",
            "strategy": s,
            "rule": "efs_le_os",
            "status": "ok",
            "error": "",
            "rate_raw": 0.2,
            "rate_final": 0.2 if s == "none" else 0.0,
            "invalid_rate_raw": 0.3,
            "invalid_rate_final": 0.0,
            "enforce": True,
            "n_rows": 500,
            "acceptance_rate": 1.0,
            "budget": 1.0,
            "seed": 0,
        }
        for m in ("tvae", "tabddpm")
        for s in ("none", "repair")
        if (m, s) != ("tabddpm", "repair")
    ]
    rows.append(
        {
            "dataset": dataset,
            "model": "tabddpm",
            "config": "default",
            "strategy": "repair",
            "rule": "",
            "status": "failed",
            "error": "RuntimeError: diffusion diverged",
            "budget": 1.0,
            "seed": 0,
        }
    )
    return pd.DataFrame(rows)

def test_every_sweep_output_has_one_producer():
    producers = {o.producer for o in declared()}
    assert producers == {f"nbs/figures/{n}.ipynb" for n in ("figures", "tables", "transfer", "adapt")} | {
        "nbs/review/review.ipynb"
    }
    for p in producers: assert (ROOT / p).is_file(), p                      # a declared producer exists
    files = planned_files("F", ["myeloid", "aml_sal"])
    eq(len(files), len(set(files)))                                     # no file planned twice
    fails(
        lambda: register_figure("km", "nbs/figures/other.ipynb", per_dataset=True), contains="one output, one producer"
    )
    fails(
        lambda: check_planned("kaplan_meier_myeloid", "nbs/figures/figures.ipynb", ["myeloid"]), contains="not declared"
    )

def test_check_written_names_what_is_missing(tmp_path):
    producer = "nbs/figures/transfer.ipynb"
    for f in planned_files(tmp_path, ["myeloid"], producer)[:-1]:
        Path(f).parent.mkdir(parents=True, exist_ok=True); Path(f).write_text("x")
    fails(lambda: check_written(tmp_path, ["myeloid"], producer), contains="transfer.json")
    Path(planned_files(tmp_path, ["myeloid"], producer)[-1]).write_text("x")
    eq(
        len(check_written(tmp_path, ["myeloid"], producer)), 2 * 3 + 4
    )  # transfer_auc_myeloid, transfer_regret, table transfer

def test_failed_run_is_drawn_and_named():
    res = results_with_failure()
    st = run_status(res, ["myeloid"], ["tvae", "tabddpm"], ["default", "compound", "fidelity"]).set_index(
        ["model", "config"]
    )
    eq(st.loc[("tabddpm", "default"), "label"], f"failed: {TABDDPM_FAIL}")
    eq((st["status"] == "ok").sum(), 5)
    fig = plot_default_vs_tuned(res, ["myeloid"], ["tvae", "tabddpm"], ["default", "compound", "fidelity"])
    eq([t.get_text().replace("\n", " ") for t in fig.axes[0].texts], [f"failed: {TABDDPM_FAIL}"])
    eq(text_overlaps(fig), [])
    plt.close(fig)
    vt = violation_rates_table(violations_with_failure()).set_index("model")
    eq(vt["status"].to_dict(), {"tvae": "ok", "tabddpm": "repair failed: RuntimeError: diffusion diverged"})

def test_km_grid_titles_clear_the_axis_labels_above():
    from synthtrial.data import load_split
    train, test, schema = load_split("myeloid")
    cohorts = {f"model_{k}": ("default", test) for k in range(6)} | {"tabddpm": TABDDPM_FAIL}
    fig = plot_km_grid(train, cohorts, schema)
    eq(text_overlaps(fig), [])
    eq(len(fig.axes[6].lines), 0)                       # the failed model keeps a panel, without curves …
    assert TABDDPM_FAIL[:20] in fig.axes[6].texts[0].get_text()   # … saying why
    plt.close(fig)

def run_producer(nb: str, sweep: Path, out: Path, run: Path, datasets=("myeloid",), models=("tvae", "tabddpm")):
    "Execute one producer notebook as the sweep does (papermill, its own process)."
    args = [sys.executable, "-m", "synthtrial.sweep", "run", nb, str(run), f"sweep_dir={sweep}", f"out_dir={out}",
            f"datasets={json.dumps(list(datasets))}", f"models={json.dumps(list(models))}",
            "objectives=[\"compound\",\"fidelity\"]"]
    r = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=1200, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]

@pytest.mark.slow
def test_producers_name_a_failed_run(tmp_path):
    "The figures and tables notebooks on a constructed sweep whose tabddpm default failed: drawn, named, never dropped."
    sweep, out = tmp_path / "results" / "sweep" / "toy", tmp_path / "figures" / "toy"
    sweep.mkdir(parents=True)
    results_with_failure().to_csv(sweep / "results.csv", index=False)
    for m, v in violations_with_failure().groupby("model"):
        (sweep / "violations" / "myeloid" / m).mkdir(parents=True)
        v.to_csv(sweep / "violations" / "myeloid" / m / "violations.csv", index=False)
    (sweep / "eval" / "myeloid" / "tabddpm").mkdir(parents=True)     # no cohort for tabddpm, its reason on file
    (sweep / "eval" / "myeloid" / "tabddpm" / "synthetic_default.error.txt").write_text(TABDDPM_FAIL + "\n")
    run_producer("nbs/figures/figures.ipynb", sweep, out, sweep / "runs" / "figures")
    run_producer("nbs/figures/tables.ipynb", sweep, out, sweep / "runs" / "tables")
    for p in ("nbs/figures/figures.ipynb", "nbs/figures/tables.ipynb"): check_written(out, ["myeloid"], p)
    side = json.loads((out / "compound_default_vs_tuned.json").read_text())
    assert f"tabddpm default on myeloid (failed: {TABDDPM_FAIL})" in side["caption"]
    assert {"model": "tabddpm", "config": "default", "status": "failed"}.items() <= \
        next(r for r in side["run_status"] if r["model"] == "tabddpm" and r["config"] == "default").items()
    km = json.loads((out / "km_myeloid.json").read_text())["caption"]
    assert f"tvae (missing: no synthetic cohort was written); tabddpm (failed: {TABDDPM_FAIL})" in km
    tab = pd.read_csv(out / "tables" / "default_vs_tuned.csv").set_index(["model", "config"])
    eq(len(tab), 6)                                                      # every planned configuration is a row
    eq(tab.loc[("tabddpm", "default"), "status"], f"failed: {TABDDPM_FAIL}")
    eq(tab.loc[("tabddpm", "default"), "compound"], "–")
    vt = pd.read_csv(out / "tables" / "violation_rates.csv").set_index("model")
    eq(vt.loc["tabddpm", "status"], "repair failed: RuntimeError: diffusion diverged")


def test_adaptation_figures_of_two_datasets_use_each_datasets_own_targets(tmp_path):
    """The adaptation producer on a sweep of two datasets (make quick: myeloid + aml_sal), from the evidence record's
    domain experiments: each dataset's figure picks its signal target among its own targets (in one table, the other
    dataset's target columns are all NaN in its rows: make quick once failed here)."""
    import shutil
    from synthtrial.data import get_dataset
    sweep, out = tmp_path / "results" / "sweep" / "two", tmp_path / "figures" / "two"
    S = ROOT / "results" / "sweep"
    record = {"aml_sal": S / "evidence", "myeloid": S / "evidence_myeloid"}
    for ds, rec in record.items():
        for part in ("tvae", "ctgan", "controls"):
            shutil.copytree(rec / "adapt" / ds / part, sweep / "adapt" / ds / part)
        assert (sweep / "adapt" / ds / "tvae" / "domain.csv").is_file()      # a domain experiment of each dataset
    datasets = ["myeloid", "aml_sal"]
    run_producer("nbs/figures/adapt.ipynb", sweep, out, sweep / "runs" / "adapt_figures", datasets, ("tvae", "ctgan"))
    check_written(out, datasets, "nbs/figures/adapt.ipynb")
    for ds in datasets:
        cap = json.loads((out / f"adaptation_{ds}.json").read_text())["caption"]
        target = cap.split("gap = AUC(")[1].split(")")[0]
        assert cap.startswith(f"{ds}, target domain") and target in [t.name for t in get_dataset(ds).schema.targets]
