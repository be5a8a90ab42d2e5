"""The quick profile's cost: the sweep benchmark's CPU-seconds, and work the evaluation run no longer repeats."""
import importlib.util, json, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

def bench():
    "bench/bench_sweep.py as a module (it is a script, not part of the package)."
    spec = importlib.util.spec_from_file_location("bench_sweep", ROOT / "bench" / "bench_sweep.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_timed_run_counts_the_cpu_of_grandchildren():
    # a child that starts a grandchild burning ~1 CPU-second and waits for it: the grandchild's CPU must be counted
    burn = "import time; t = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"
    r, wall, cpu = bench().timed_run([sys.executable, "-c", child], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 1.0 <= cpu < 1.0 + 3.0, cpu            # the burn, plus two interpreter starts
    assert cpu <= wall + 0.5                       # one process at a time: no more CPU than wall time

def test_job_types_use_cpu_only_when_every_record_has_it():
    b = bench()
    recs = [{"executed": "hpo.ipynb", "params": {"dataset": "aml_sal"}, "wall_seconds": 10.0, "cpu_seconds": 4.0},
            {"executed": "hpo.ipynb", "params": {"dataset": "aml_sal"}, "wall_seconds": 30.0, "cpu_seconds": 20.0},
            {"executed": "figures.ipynb", "params": {}, "wall_seconds": 5.0, "cpu_seconds": 3.0}]
    assert b.by_job_type(recs) == [("hpo aml_sal", 2, 24.0, "CPU-s"), ("figures", 1, 3.0, "CPU-s")]
    del recs[2]["cpu_seconds"]  # a record written before run.json had cpu_seconds: all fall back to wall
    assert b.by_job_type(recs) == [("hpo aml_sal", 2, 40.0, "wall s"), ("figures", 1, 5.0, "wall s")]

@pytest.mark.slow
def test_evaluation_copies_the_rows_of_an_objective_with_the_same_parameters(tmp_path):
    from synthtrial.sweep import execute
    hpo = tmp_path / "hpo"
    best = {"norm": {"default_distribution": "norm"}, "uniform": {"default_distribution": "uniform"}}
    for obj, p in (("compound", best["norm"]), ("utility", best["norm"]), ("fidelity", best["uniform"])):
        (hpo / obj / "study").mkdir(parents=True)
        (hpo / obj / "study" / "best.json").write_text(
            json.dumps({"best_params": p, "params": {"n_trials": 3, "hpo_seed": 11}})
        )
    run = tmp_path / "eval"
    execute("nbs/experiments/evaluate.ipynb", {"dataset": "myeloid", "model": "gaussian_copula", "hpo_dir": str(hpo),
            "objectives": ["compound", "utility", "fidelity"], "budget": 1.0,
            "cohorts": ["default", "compound", "utility"]}, run)
    res = pd.read_csv(run / "results.csv")
    assert sorted(res.config.unique()) == ["compound", "default", "fidelity", "utility"]
    cols = ["split", "metric", "value", "train_seed", "sample_seed", "n_trials", "hpo_seed"]
    by = {c: res[res.config == c][cols].reset_index(drop=True) for c in res.config.unique()}
    pd.testing.assert_frame_equal(by["utility"], by["compound"])          # copied: the very same rows
    assert not by["fidelity"]["value"].equals(by["compound"]["value"])  # other parameters: evaluated on their own
    prov = {
        p.name.split("_")[0]: json.loads(p.read_text())["params"] for p in (run / "configs").glob("*.provenance.json")
    }
    assert prov["utility"]["same_as"] == "compound" and prov["utility"]["config"] == "utility"
    assert "same_as" not in prov["compound"] and "same_as" not in prov["fidelity"]
    assert len(list((run / "configs").glob("*.csv"))) == 4                # the copy is on file under its own name too
    # the cohorts: the evaluation's own first fit and sample (no extra fit), the copy's its source's; and the very rows
    # a fresh fit with the first training and sampling seeds gives
    from synthtrial.data import load_split
    from synthtrial.constraints import rules_for
    from synthtrial.pipeline import SynthesisPipeline
    train, _, schema = load_split("myeloid")
    cohort = {c: pd.read_csv(run / f"synthetic_{c}.csv") for c in ("default", "compound", "utility")}
    assert not (run / "synthetic_fidelity.csv").exists()                    # not a cohort config
    written = (run / "results.csv").stat().st_mtime_ns                      # a refit would come after the results
    assert all((run / f"synthetic_{c}.csv").stat().st_mtime_ns <= written for c in ("default", "compound"))
    pd.testing.assert_frame_equal(cohort["utility"], cohort["compound"])
    fresh = SynthesisPipeline("gaussian_copula", rules_for("myeloid", schema), "default", params=best["norm"])
    again = fresh.fit(train, schema, seed=0).sample(len(train), seed=0)
    pd.testing.assert_frame_equal(cohort["compound"], schema.restore_types(again).reset_index(drop=True),
                                  check_dtype=False)
