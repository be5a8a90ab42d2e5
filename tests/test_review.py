"""The methods review (synthtrial.review, nbs/review/review.ipynb): a clean folder passes the leakage and copy checks,
a deliberately flawed one (leaky split, copied rows) fails them with evidence, bad input is named."""
import json
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from synthtrial.core import SynthtrialError, write_json
from synthtrial.schema import SchemaError
from synthtrial.review import review, verdict_markdown, write_review_folder, load_review, CHECKS

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def synthetic(myeloid):
    "Two Gaussian-copula runs on myeloid's training split (training seeds 0 and 1)."
    from synthtrial.generators import make_generator
    train, test, schema = myeloid
    return {
        f"gaussian_copula_seed{s}": make_generator("gaussian_copula")
        .fit(train, schema, seed=s)
        .sample(len(train), seed=10 + s)
        for s in (0, 1)
    }

RUNS = {
    f"gaussian_copula_seed{s}": {
        "model": "gaussian_copula",
        "config": "default",
        "train_seed": s,
        "sample_seed": 10 + s,
    }
    for s in (0, 1)
}

@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory, myeloid, synthetic):
    train, test, schema = myeloid
    return write_review_folder(
        tmp_path_factory.mktemp("clean") / "clean", train, test, synthetic, dataset="myeloid", runs=RUNS
    )

@pytest.fixture(scope="module")
def flawed(tmp_path_factory, myeloid, synthetic):
    """Leaky split (40 test rows also in real_train.csv) and a run whose first 20 % rows are copies of real training
    rows."""
    train, test, schema = myeloid
    leaked = test.iloc[:40]
    syn = {k: v.copy() for k, v in synthetic.items()}
    bad = syn["gaussian_copula_seed0"]
    n_copy = int(0.2 * len(bad))
    copied = train.sample(n_copy, random_state=3)
    cols = schema.modelled
    bad.iloc[:n_copy, [bad.columns.get_loc(c) for c in cols]] = copied[cols].to_numpy()
    folder = write_review_folder(tmp_path_factory.mktemp("flawed") / "flawed", pd.concat([train, leaked]), test, syn,
                                 dataset="myeloid", runs=RUNS)
    return folder, len(leaked), n_copy

def by_check(table):
    assert list(table["check"]) == list(CHECKS)
    return table.set_index("check")

def test_clean_folder_has_no_leakage_or_copies(clean_dir):
    d = {}
    t = by_check(review(clean_dir, details=d))
    for c in ("leakage: train/test split", "leakage: synthetic ↔ test", "privacy: exact copies", "privacy: DCR vs "
                                                                                                 "hold-out"):
        assert t.loc[c, "verdict"] == "pass", (c, t.loc[c, "evidence"])
    assert t.loc["seeds and spread", "verdict"] == "pass" and "fidelity sd" in t.loc["seeds and spread", "evidence"]
    assert (
        t.loc["constraint violations", "verdict"] in ("pass", "warn", "fail")
        and "real training data" in t.loc["constraint violations", "evidence"]
    )
    files = d["files"][0]
    assert set(files["run"]) == set(RUNS) and (files["copies"] <= 5).all() and files["fidelity"].between(0, 1).all()

def test_flawed_folder_fails_both_flaws(flawed, myeloid):
    folder, n_leaked, n_copy = flawed
    t = by_check(review(folder))
    split = t.loc["leakage: train/test split"]
    assert split["verdict"] == "fail"
    k = int(split["evidence"].split(" of ")[0])
    assert n_leaked <= k <= n_leaked + 5 and f"of {len(myeloid[1])} test rows" in split["evidence"]
    cp = t.loc["privacy: exact copies"]
    assert (
        cp["verdict"] == "fail"
        and "gaussian_copula_seed0" in cp["evidence"]
        and "gaussian_copula_seed1" not in cp["evidence"].split("chance")[0]
    )
    copies = int(cp["evidence"].split("gaussian_copula_seed0: ")[1].split(" of ")[0])
    assert n_copy <= copies <= n_copy + 5
    assert t.loc["leakage: synthetic ↔ test", "verdict"] == "pass"
    dcr = t.loc["privacy: DCR vs hold-out"]                  # copies sit at distance 0: closer than new patients
    assert dcr["verdict"] in ("warn", "fail") and f"of {len(myeloid[1]) - k} hold-out rows" in dcr["evidence"]
    md = verdict_markdown(review(folder))
    assert "| leakage: train/test split | **FAIL** |" in md and "| privacy: exact copies | **FAIL** |" in md

def test_identical_output_for_different_seeds_warns(tmp_path, myeloid, synthetic):
    train, test, schema = myeloid
    one = synthetic["gaussian_copula_seed0"]
    f = write_review_folder(tmp_path / "same", train, test, {"a_seed0": one, "a_seed1": one},
                            runs={"a_seed0": {"train_seed": 0}, "a_seed1": {"train_seed": 1}}, schema=schema)
    row = by_check(review(f)).loc["seeds and spread"]
    assert row["verdict"] == "warn" and "identical output for different seeds: a_seed0, a_seed1" in row["evidence"]
    nos = write_review_folder(tmp_path / "noseed", train, test, {"run": one}, schema=schema)
    row = by_check(review(nos)).loc["seeds and spread"]
    assert row["verdict"] == "warn" and "no seed recorded for 1 of 1 runs (run)" in row["evidence"]

def test_bad_input_is_named(tmp_path, myeloid, synthetic):
    train, test, schema = myeloid
    with pytest.raises(SynthtrialError, match="folder not found"): review(tmp_path / "nope")
    f = write_review_folder(tmp_path / "f", train, test, {"g": synthetic["gaussian_copula_seed0"]}, schema=schema)
    (f / "real_test.csv").unlink()
    with pytest.raises(SynthtrialError, match=r"real hold-out data \(real_test.csv\) not found: .*real_test.csv"):
        review(f)
    test.to_csv(f / "real_test.csv", index=False)
    synthetic["gaussian_copula_seed0"].assign(extra=1).to_csv(f / "synthetic" / "x.csv", index=False)
    with pytest.raises(SchemaError, match=r"x.csv: columns \['extra'\] are not in the real data"): review(f)
    synthetic["gaussian_copula_seed0"].drop(columns=["OSTM"]).to_csv(f / "synthetic" / "x.csv", index=False)
    with pytest.raises(SchemaError, match=r"x.csv: missing columns \['OSTM'\]"): review(f)
    for p in (f / "synthetic").glob("*.csv"): p.unlink()
    with pytest.raises(SynthtrialError, match="no synthetic data: expected one CSV per generator run"): review(f)
    (f / "review.yaml").write_text("datset: myeloid\n")
    with pytest.raises(SynthtrialError, match=r"unknown keys \['datset'\]"): review(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynthtrialError, match="neither a review folder"): review(tmp_path / "empty")

def test_inferred_schema_folder(tmp_path, myeloid, synthetic):
    "A user's own CSVs without schema or rules: the checks that need neither still run."
    train, test, schema = myeloid
    f = write_review_folder(tmp_path / "own", train, test, {"g": synthetic["gaussian_copula_seed0"]})
    [inp] = load_review(f)
    assert "schema inferred" in " ".join(inp.notes) and inp.rules is None
    t = by_check(review(f))
    assert t.loc["constraint violations", "verdict"] == "n.a." and t.loc["utility vs fidelity", "verdict"] == "n.a."
    assert t.loc["privacy: exact copies", "verdict"] == "pass"

def test_review_notebook_on_flawed_folder(flawed, tmp_path):
    from synthtrial.sweep import execute
    from synthtrial.runs import RunFailed
    folder, _, _ = flawed
    out = tmp_path / "out"
    execute("nbs/review/review.ipynb", {"folder": str(folder), "out_dir": str(out)}, tmp_path / "run")
    md = (out / "review.md").read_text()
    assert "| leakage: train/test split | **FAIL** |" in md and "| privacy: exact copies | **FAIL** |" in md
    tab = pd.read_csv(out / "review.csv")
    assert set(tab.loc[tab["verdict"] == "fail", "check"]) >= {"leakage: train/test split", "privacy: exact copies"}
    assert (tmp_path / "run" / "review.ipynb").is_file() and json.loads((tmp_path / "run" / "run.json").read_text())[
        "status"
    ] == "ok"
    side = json.loads((out / "methods_review.json").read_text())  # a captioned table: the sweep's report page lists it
    assert side["table"] == "methods_review" and side["caption"].startswith("Methods review of flawed")
    assert len(pd.read_csv(out / "review_files.csv")) == 2
    with pytest.raises(RunFailed, match="folder='' is not allowed"):
        execute("nbs/review/review.ipynb", {"folder": ""}, tmp_path / "run2")

@pytest.mark.slow
def test_review_of_sweep_evaluation_run(tmp_path):
    "evaluate.ipynb as the sweep runs it (myeloid × gaussian_copula, quick), then the review of that sweep folder."
    from synthtrial.runs import execute_notebook
    hpo = tmp_path / "sweep/hpo/myeloid/gaussian_copula"
    write_json({"best_params": {}}, hpo / "compound/study/best.json")
    execute_notebook(ROOT / "nbs/experiments/evaluate.ipynb", tmp_path / "sweep/eval/myeloid/gaussian_copula",
                     {"dataset": "myeloid", "model": "gaussian_copula", "hpo_dir": str(hpo), "objectives": ["compound"],
                      "profile": "quick", "train_seeds": [0], "sample_seeds": [0]}, progress=False)
    for f in (tmp_path / "sweep", tmp_path / "sweep/eval/myeloid/gaussian_copula"):
        [inp] = load_review(f)
        assert set(inp.synthetic) == {"gaussian_copula/default", "gaussian_copula/compound"}
        t = by_check(review(f))
        assert (
            t.loc["leakage: train/test split", "verdict"] == "pass"
            and t.loc["privacy: exact copies", "verdict"] == "pass"
        )
        assert (
            t.loc["seeds and spread", "verdict"] == "warn"
            and "< 2 training seeds" in t.loc["seeds and spread", "evidence"]
        )
        assert "scores: results.csv" in t.loc["utility vs fidelity", "evidence"]
