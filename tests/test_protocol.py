"""The evaluation protocol end to end (slow tier): quick profile, one dataset x two models x four objectives."""
import json
import numpy as np, pandas as pd, pytest
from synthtrial.evaluation import run_protocol, evaluate_config, relative_improvement, generalisation_matrix, violation_rates
from synthtrial.core import ParameterError

@pytest.mark.slow
def test_quick_protocol_writes_the_tidy_results_table(tmp_path):
    objectives = ["compound", "fidelity", "utility", "survival"]
    table = run_protocol("myeloid", ["gaussian_copula", "tvae"], objectives, "quick", out_dir=tmp_path, progress=False)
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(on_disk) == len(table) > 0
    assert set(on_disk.config) == {"default", *objectives} and set(on_disk.model) == {"gaussian_copula", "tvae"}
    key = ["dataset", "model", "config", "train_seed", "sample_seed", "metric"]
    assert not on_disk.duplicated(key).any()                                   # one row per key
    ok = on_disk[on_disk.status == "ok"]
    assert {"compound", "discriminator_measure_rf", "ml_efficiency_CR1", "survival_auc_abs_opt"} <= set(ok.metric)
    assert (ok[ok.metric == "compound"].invalid_rate_final == 0).all()          # enforced rules hold after processing
    prov = json.loads((tmp_path / "results.provenance.json").read_text())
    assert prov["params"]["profile"] == "quick" and prov["git"]["sha"] and prov["packages"]["optuna"]
    for model in ("gaussian_copula", "tvae"):
        for obj in objectives:
            best = json.loads((tmp_path / "hpo" / model / obj / "best.json").read_text())
            assert best["n_finished"] == 4 and best["params"]["objective"] == obj
    imp = relative_improvement(on_disk)
    assert set(imp.config) <= set(objectives) and imp.improvement_pct.notna().all()
    gm = generalisation_matrix(on_disk)
    assert set(gm.index) <= set(objectives) and "compound" in gm.columns
    assert len(violation_rates(on_disk)) == 10

def test_evaluate_config_rejects_bad_params_before_fitting(tmp_path):
    with pytest.raises(ParameterError, match="unknown hyperparameters"):
        evaluate_config("myeloid", "gaussian_copula", "default", {"nope": 1}, out_csv=tmp_path / "x.csv", progress=False)
    assert not (tmp_path / "x.csv").exists()
