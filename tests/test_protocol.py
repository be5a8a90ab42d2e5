"""The evaluation protocol end to end (slow tier): quick profile, one dataset x two models x four objectives."""
import json
import numpy as np, pandas as pd, pytest
from synthtrial.evaluation import (
    get_profile,
    run_protocol,
    evaluate_config,
    relative_improvement,
    generalisation_matrix,
    violation_rates,
    read_blocks,
)
from synthtrial.core import write_csv as write_atomic   # the atomic CSV writer the evaluation blocks use
from synthtrial.findings import HELDOUT_CRITERIA
from synthtrial.core import ParameterError

@pytest.mark.slow
def test_quick_protocol_writes_the_tidy_results_table(tmp_path):
    objectives = ["compound", "fidelity", "utility", "survival"]
    table = run_protocol("myeloid", ["gaussian_copula", "tvae"], objectives, "quick", out_dir=tmp_path, progress=False)
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(on_disk) == len(table) > 0
    assert set(on_disk.config) == {"default", *objectives} and set(on_disk.model) == {"gaussian_copula", "tvae"}
    key = ["dataset", "model", "config", "train_seed", "sample_seed", "split", "metric"]
    assert not on_disk.duplicated(key).any()                                   # one row per key
    ok = on_disk[on_disk.status == "ok"]
    assert {"compound", "discriminator_measure_rf", "ml_efficiency_OS_2y", "survival_auc_abs_opt"} <= set(
        ok[ok.split == "train"].metric
    )
    assert {"compound", "discriminator_measure_rf", *HELDOUT_CRITERIA} <= set(
        ok[ok.split == "test"].metric
    )  # out-of-sample too
    assert (ok[ok.config != "default"].n_trials == 3).all()                    # the evidence behind tuned rows
    assert (ok[ok.metric == "compound"].invalid_rate_final == 0).all()          # enforced rules hold after processing
    prov = json.loads((tmp_path / "results.provenance.json").read_text())
    assert prov["params"]["profile"] == "quick" and prov["git"]["sha"] and prov["packages"]["optuna"]
    for model in ("gaussian_copula", "tvae"):
        for obj in objectives:
            best = json.loads((tmp_path / "hpo" / model / obj / "best.json").read_text())
            assert best["n_finished"] == get_profile("quick")["n_trials"] and best["params"]["objective"] == obj
    imp = relative_improvement(on_disk)
    assert set(imp.config) <= set(objectives) and imp.improvement_pct.notna().all()
    gm = generalisation_matrix(on_disk)
    assert set(gm.index) <= set(objectives) and set(gm.columns) <= set(HELDOUT_CRITERIA)
    assert len(violation_rates(on_disk)) == 10

def test_evaluate_config_rejects_bad_params_before_fitting(tmp_path):
    with pytest.raises(ParameterError, match="unknown hyperparameters"):
        evaluate_config(
            "myeloid", "gaussian_copula", "default", {"nope": 1}, out_csv=tmp_path / "x.csv", progress=False
        )
    assert not (tmp_path / "x.csv").exists()

def block(ts, ss, n, value=0.5):
    return pd.DataFrame({"train_seed": ts, "sample_seed": ss, "split": "test", "metric": [f"m{i}" for i in range(n)],
                         "value": value, "block_rows": n})

def test_resume_keeps_only_complete_blocks(tmp_path):
    p = tmp_path / "rows.csv"
    write_atomic(pd.concat([block(0, 0, 4), block(0, 1, 4)]), p)
    assert len(read_blocks(p)) == 8 and not list(tmp_path.glob(".*.tmp"))     # renamed into place, no temp file left
    # a run killed in the middle of an (old-style) append: the last block is torn — a partial row, then missing rows
    text = p.read_text()
    p.write_text(text + "1,0,test,m0,0.5,4\n1,0,test,m1,0.")
    kept = read_blocks(p)
    assert len(kept) == 8 and set(zip(kept.train_seed, kept.sample_seed)) == {(0, 0), (0, 1)}
    # a block whose rows disagree on its size (a truncated number) is not complete either
    bad = pd.concat([block(0, 0, 3), block(1, 1, 2).assign(block_rows=[2, 20])])
    write_atomic(bad, p)
    assert set(zip(read_blocks(p).train_seed, read_blocks(p).sample_seed)) == {(0, 0)}
    assert len(read_blocks(tmp_path / "missing.csv")) == 0

def test_a_file_without_block_marks_is_recomputed(tmp_path):
    p = tmp_path / "old.csv"
    block(0, 0, 3).drop(columns="block_rows").to_csv(p, index=False)
    assert len(read_blocks(p)) == 0

@pytest.mark.slow
def test_evaluate_config_recomputes_a_torn_block(tmp_path):
    p = tmp_path / "rows.csv"
    first = evaluate_config(
        "myeloid", "gaussian_copula", "default", train_seeds=[0], sample_seeds=[0, 1], out_csv=p, progress=False
    )
    assert (
        set(first.split) == {"train", "test"}
        and first.groupby(["train_seed", "sample_seed"]).size().tolist() == first.block_rows.unique().tolist() * 2
    )
    p.write_text(p.read_text()[:-300])                                        # tear the last block
    assert set(read_blocks(p).sample_seed) == {0}
    again = evaluate_config(
        "myeloid", "gaussian_copula", "default", train_seeds=[0], sample_seeds=[0, 1], out_csv=p, progress=False
    )
    cols = ["sample_seed", "split", "metric", "value"]
    pd.testing.assert_frame_equal(
        again[cols].sort_values(cols[:3]).reset_index(drop=True),
        first[cols].sort_values(cols[:3]).reset_index(drop=True),
    )
