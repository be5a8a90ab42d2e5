"""The findings' decision rules on results tables whose truth is known (constructed with `simulate_results`), and the
held-out criteria on real data (myeloid)."""
import numpy as np, pandas as pd, pytest
from synthtrial.findings import (
    simulate_results,
    published_findings,
    generalisation,
    improvements,
    naive_bootstrap,
    seed_matrix,
    paired_bootstrap,
    evidence,
    pmse_score,
    km_distance_score,
    cox_concordance,
    dcr_ratio,
    wilson,
)
from synthtrial.data import load_split

GEN = "compound objectives generalise better than single-metric objectives"

def verdicts(table, violations=None):
    return published_findings(table, violations, n_boot=1000).set_index("finding")

def test_compound_that_generalises_and_compound_that_only_wins_its_own_metric_get_different_verdicts():
    generalises = simulate_results(
        effects={
            ("compound", "heldout"): 0.12,
            ("fidelity", "heldout"): 0.02,
            ("survival", "heldout"): 0.02,
            ("compound", "compound"): 0.1,
        }
    )
    own_metric = simulate_results(
        effects={
            ("compound", "compound"): 0.2,
            ("fidelity", "fidelity"): 0.2,
            ("utility", "utility"): 0.2,
            ("survival", "survival"): 0.2,
        },
        seed=1,
    )
    a, b = verdicts(generalises).loc[GEN], verdicts(own_metric).loc[GEN]
    assert a["verdict"] == "supported" and a["ci_low"] > 0
    assert b["verdict"] in ("inconclusive", "contradicted") and b["ci_low"] <= 0
    # the compound objective does win on its own (in-table) metric in the second table: the old, circular test would
    # pass it
    own = own_metric[(own_metric.metric == "compound")].groupby("config")["value"].mean()
    assert own["compound"] > own.drop("compound").max()

def test_compound_that_generalises_worse_is_contradicted():
    worse = simulate_results(effects={("compound", "heldout"): -0.1, ("fidelity", "heldout"): 0.1})
    assert verdicts(worse).loc[GEN, "verdict"] == "contradicted"

def test_seed_clustered_table_gets_a_wider_interval_than_its_naive_bootstrap():
    # the tuning effect differs between training seeds (fit-to-fit), sampling draws of one fit barely differ
    t = simulate_results(models=("tvae",), objectives=("compound",), effects={("compound", "compound"): 0.1},
                         n_train_seeds=5, n_sample_seeds=4, seed_sd=0.05, noise_sd=0.002)
    c = t[t.metric == "compound"]
    cl = improvements(t).iloc[0]
    lo, hi = naive_bootstrap(c[c.config == "default"].value, c[c.config == "compound"].value)
    assert cl.ci_high - cl.ci_low > 1.5 * (hi - lo)
    assert cl.ci_low < cl.estimate < cl.ci_high

def test_hpo_seed_variation_enters_the_interval():
    one = simulate_results(
        models=("tvae",), objectives=("compound",), effects={("compound", "compound"): 0.1}, n_hpo_seeds=1, seed=3
    )
    d, tt, _ = seed_matrix(
        simulate_results(
            models=("tvae",), objectives=("compound",), effects={("compound", "compound"): 0.1}, n_hpo_seeds=3, seed=3
        ).query("metric == 'compound'"),
        "compound",
    )
    assert tt.shape == (5, 3)
    # a second HPO seed that found a much worse configuration: the interval must widen, not average it away silently
    tt_bad = tt.copy(); tt_bad[:, 1] -= 0.1
    w_ok, w_bad = paired_bootstrap(d, tt), paired_bootstrap(d, tt_bad)
    assert w_bad["ci_high"] - w_bad["ci_low"] > w_ok["ci_high"] - w_ok["ci_low"]
    assert evidence(one)["n_hpo_seeds"] == 1

def test_reduced_budget_table_is_not_assessable_whatever_the_effect():
    t = simulate_results(effects={("compound", "compound"): 0.3, ("compound", "heldout"): 0.3}, budget=0.002)
    f = verdicts(t)
    assert (f["verdict"] == "not assessable").all()
    scored = f.drop(index=[i for i in f.index if "EFS" in i or "constraint" in i])
    assert scored["reason"].str.contains("reduced epoch budget").all()
    assert np.isfinite(scored.loc["TVAE improves with compound HPO", "estimate"])   # the estimate is still shown

def test_one_seed_or_few_trials_is_not_assessable():
    f1 = verdicts(simulate_results(effects={("compound", "compound"): 0.3}, n_train_seeds=1))
    f2 = verdicts(simulate_results(effects={("compound", "compound"): 0.3}, n_trials=3))
    assert (
        f1.loc["TVAE improves with compound HPO", "verdict"] == "not assessable"
        and "training seed" in f1.loc["TVAE improves with compound HPO", "reason"]
    )
    assert (
        f2.loc["TVAE improves with compound HPO", "verdict"] == "not assessable"
        and "optuna trials" in f2.loc["TVAE improves with compound HPO", "reason"]
    )

def test_a_failed_run_is_reported_and_the_model_set_is_the_same_for_every_objective():
    t = simulate_results(effects={("compound", "heldout"): 0.12})
    t = t[~((t.model == "tvae") & (t.config == "utility"))]
    t = pd.concat([t, pd.DataFrame([{"dataset": "aml_sal", "model": "tvae", "config": "utility", "status": "failed",
                                     "error": "HPO: no finished trial", "split": "test", "metric": "compound",
                                     "value": np.nan, "budget": 1.0, "train_seed": 0, "sample_seed": 0}])])
    g = generalisation(t, "aml_sal")
    assert "tvae" not in g["models"] and "no finished trial" in g["excluded"]["tvae"]
    assert "tvae left out" in verdicts(t).loc[GEN, "reason"]

def test_datasets_are_never_pooled_and_aml_sal_is_the_study_comparable_row():
    t = pd.concat([simulate_results(dataset="myeloid", effects={("compound", "compound"): -0.1}),
                   simulate_results(dataset="aml_sal", effects={("compound", "compound"): 0.1}, seed=2)])
    f = published_findings(t, n_boot=500)
    tv = f[f.finding == "TVAE improves with compound HPO"].set_index("dataset")
    assert tv.loc["aml_sal", "verdict"] == "supported" and tv.loc["myeloid", "verdict"] == "contradicted"
    assert tv.loc["aml_sal", "comparability"] == "study-comparable" and f.iloc[0]["dataset"] == "aml_sal"

def violation_table(tuned_rate, n=1000, budget=1.0, final=0.0):
    rows = []
    for m in ("tvae", "ctgan"):
        for cfg, rate in (("default", 0.4), ("compound", tuned_rate if m == "tvae" else 0.2)):
            for strat, fin in (("none", rate), ("default", final)):
                rows.append({"dataset": "aml_sal", "model": m, "config": cfg, "strategy": strat, "rule": "efs_le_os",
                             "rate_raw": rate, "rate_final": fin, "n_rows": n, "budget": budget, "status": "ok"})
    return pd.DataFrame(rows)

def test_violation_findings_use_efs_le_os_alone_and_tuned_configurations():
    res = simulate_results(effects={("compound", "compound"): 0.1})
    f = verdicts(res, violation_table(0.1))
    assert f.loc["HPO alone does not prevent EFS > OS violations", "verdict"] == "supported"
    # 40 % at most, tight interval
    assert f.loc["without processing, up to 61 % of rows have EFS > OS", "verdict"] == "contradicted"
    assert f.loc["domain-constraint processing yields valid rows", "verdict"] == "supported"
    assert "95 % interval [0.0%, " in f.loc["domain-constraint processing yields valid rows", "reason"]   # in rates
    assert "lies below 1%" in f.loc["domain-constraint processing yields valid rows", "reason"]
    assert "0 %" not in f.loc["domain-constraint processing yields valid rows", "published"]
    assert (
        verdicts(res, violation_table(0.0)).loc["HPO alone does not prevent EFS > OS violations", "verdict"]
        == "contradicted"
    )
    hi = violation_table(0.6); hi.loc[hi.rate_raw == 0.6, "n_rows"] = 1000
    assert verdicts(res, hi).loc["without processing, up to 61 % of rows have EFS > OS", "verdict"] == "supported"
    cheap = verdicts(res, violation_table(0.1, budget=0.002))
    assert cheap.loc["HPO alone does not prevent EFS > OS violations", "verdict"] == "not assessable"

# --- gates per finding and the search-limited tier (a profile with a budget and trials per model) ---------------------

TVAE, TABDDPM = "TVAE improves with compound HPO", "TabDDPM improves the most"
HPO_VIOL, UP_TO_61 = (
    "HPO alone does not prevent EFS > OS violations",
    "without processing, up to 61 % of rows have EFS > OS",
)

def test_mixed_budgets_judge_tvae_on_its_own_rows_and_leave_the_capped_model_out():
    # TVAE and CTGAN at full epochs, CTAB-GAN+ capped at 5 %: the old table-wide gate made every finding not assessable
    t = simulate_results(models=("tvae", "ctgan", "ctabgan_plus", "tabddpm"), budget={"ctabgan_plus": 0.05},
                         effects={("compound", "compound"): 0.1, ("compound", "heldout"): 0.12,
                                  ("fidelity", "heldout"): 0.02})
    f = verdicts(t)
    assert f.loc[TVAE, "verdict"] == "supported" and "reduced epoch budget" not in f.loc[TVAE, "reason"]
    assert f.loc[TVAE, "evidence"].startswith("budget 1,")
    cp = f.loc["CTAB-GAN+ improves with compound HPO"]
    assert cp["verdict"] == "not assessable" and "reduced epoch budget 0.05" in cp["reason"]
    # the comparisons go on without the capped model and say so
    assert (f.loc[GEN, "verdict"] == "supported"
            and "ctabgan_plus left out (reduced epoch budget 0.05" in f.loc[GEN, "reason"])
    assert "models 3" in f.loc[GEN, "reason"] and "ctabgan_plus" not in f.loc[GEN, "evidence"]
    assert f.loc[TABDDPM, "verdict"] != "not assessable" and "ctabgan_plus left out" in f.loc[TABDDPM, "reason"]

def test_a_capped_tabddpm_makes_its_finding_not_assessable_and_a_capped_rival_cannot_win_it():
    capped_ddpm = simulate_results(models=("tvae", "ctgan", "tabddpm"), budget={"tabddpm": 0.25},
                                   effects={("compound", "compound"): 0.1})
    r = verdicts(capped_ddpm).loc[TABDDPM]
    assert r["verdict"] == "not assessable" and r["reason"].startswith("tabddpm: reduced epoch budget 0.25")
    # tabddpm improves more than tvae, a capped ctgan "improves" more than tabddpm: left out, tabddpm is supported
    t = pd.concat([simulate_results(models=("tabddpm",), effects={("compound", "compound"): 0.2}),
                   simulate_results(models=("tvae",), effects={("compound", "compound"): 0.02}, seed=1),
                   simulate_results(models=("ctgan",), effects={("compound", "compound"): 0.4}, budget=0.1, seed=2)])
    r = verdicts(t).loc[TABDDPM]
    assert r["verdict"] == "supported" and "ctgan left out (reduced epoch budget 0.1" in r["reason"]

def test_compound_generalises_needs_two_models_that_pass_the_gates():
    t = simulate_results(models=("tvae", "ctgan", "tabddpm"), budget={"ctgan": 0.5, "tabddpm": 0.25},
                         effects={("compound", "heldout"): 0.15})
    r = verdicts(t).loc[GEN]
    assert r["verdict"] == "not assessable" and "1 model(s) pass the evidence gates (< 2)" in r["reason"]
    assert "ctgan left out" in r["reason"] and "tabddpm left out" in r["reason"]

@pytest.mark.parametrize("effect, n_trials, verdict", [
    (0.1, 10, "supported"),          # less search is conservative for "HPO improves": the improvement stands
    (-0.1, 10, "inconclusive"),      # a failure to improve may be for lack of search: never contradicted
    (0.1, 5, "not assessable"),      # below min_trials_one_sided: whatever the effect
    (-0.1, 20, "contradicted"),      # a full search may contradict
])
def test_search_limited_tier_on_an_improvement(effect, n_trials, verdict):
    f = verdicts(simulate_results(models=("tvae", "ctgan"), n_trials=n_trials,
                                  effects={("compound", "compound"): effect}))
    r = f.loc[TVAE]
    assert r["verdict"] == verdict, r["reason"]
    if n_trials == 10:
        assert (r["ci_high"] < 0) if effect < 0 else (r["ci_low"] > 0)      # the interval itself is clear-cut
        assert "search-limited (10 trials < 20)" in r["reason"]
    if verdict == "inconclusive":
        assert r["reason"].startswith("search-limited (10 trials < 20): a failure to improve may be for lack of search")
    if verdict == "not assessable":
        assert "5 optuna trials (< 10)" in r["reason"]

def test_a_study_on_a_part_of_the_space_is_search_limited_at_any_trial_count():
    "space_limits: 20 trials on a part of the space cannot contradict, but an improvement there still stands."
    def run(effect):
        t = simulate_results(models=("tvae", "ctgan"), n_trials=20, effects={("compound", "compound"): effect})
        return verdicts(t.assign(space_limited=t["config"] != "default")).loc[TVAE]
    worse, better = run(-0.1), run(0.1)
    assert worse["ci_high"] < 0 and worse["verdict"] == "inconclusive", worse["reason"]
    assert worse["reason"].startswith("search-limited (a part of the search space): a failure to improve")
    assert better["verdict"] == "supported" and "a part of the search space" in better["reason"]

def test_search_limited_tier_on_generalisation():
    worse = simulate_results(n_trials=10, effects={("compound", "heldout"): -0.1, ("fidelity", "heldout"): 0.1})
    better = simulate_results(n_trials=10, effects={("compound", "heldout"): 0.12, ("fidelity", "heldout"): 0.02})
    w, b = verdicts(worse).loc[GEN], verdicts(better).loc[GEN]
    assert w["ci_high"] < 0 and w["verdict"] == "inconclusive" and "search-limited" in w["reason"]
    assert b["ci_low"] > 0 and b["verdict"] == "supported"

def test_search_limited_tier_on_tabddpm_most_counts_against_the_side_with_less_search():
    def table(ddpm_effect, ddpm_trials, rival_trials):
        return pd.concat([simulate_results(models=("tabddpm",), n_trials=ddpm_trials,
                                           effects={("compound", "compound"): ddpm_effect}),
                          simulate_results(models=("tvae", "ctgan"), n_trials=rival_trials,
                                           effects={("compound", "compound"): 0.1}, seed=1)])
    assert verdicts(table(0.3, 10, 70)).loc[TABDDPM, "verdict"] == "supported"    # tabddpm's own limit understates it
    r = verdicts(table(0.3, 70, 10)).loc[TABDDPM]                       # the rivals' limit may understate them
    assert r["verdict"] == "inconclusive" and "improvements may be understated" in r["reason"]
    assert verdicts(table(-0.1, 70, 10)).loc[TABDDPM, "verdict"] == "contradicted"  # limited rivals still beat it
    r = verdicts(table(-0.1, 10, 70)).loc[TABDDPM]                      # tabddpm searched less: may catch up
    assert r["verdict"] == "inconclusive" and r["reason"].startswith("search-limited (tabddpm 10 trials < 20)")

def test_violation_findings_use_full_budget_models_only_and_name_the_capped_ones():
    res = simulate_results(models=("tvae", "ctgan", "survival_gan"), budget={"survival_gan": 0.02})
    v = violation_table(0.1)
    # a capped survival_gan whose tuned output has no violations and whose default breaks 61 %: would flip both verdicts
    for cfg, rate in (("default", 0.61), ("compound", 0.0)):
        for strat in ("none", "default"):
            v.loc[len(v)] = {"dataset": "aml_sal", "model": "survival_gan", "config": cfg, "strategy": strat,
                             "rule": "efs_le_os", "rate_raw": rate, "rate_final": 0.0, "n_rows": 1000, "budget": 0.02,
                             "status": "ok"}
    f = verdicts(res, v)
    assert f.loc[HPO_VIOL, "verdict"] == "supported" and f.loc[UP_TO_61, "verdict"] == "contradicted"
    for k in (HPO_VIOL, UP_TO_61, "domain-constraint processing yields valid rows"):
        assert "left out (capped epoch budget: not the study's generator): survival_gan 0.02" in f.loc[k, "reason"]
        assert "full-budget models: ctgan, tvae" in f.loc[k, "evidence"]
    # the budget of a violation run without its own budget column comes from its model's results rows
    g = verdicts(res, v.drop(columns="budget"))
    assert g.loc[HPO_VIOL, "verdict"] == "supported" and "survival_gan 0.02" in g.loc[HPO_VIOL, "reason"]
    # only capped models: not assessable, and the reason names them
    h = verdicts(res, v[v.model == "survival_gan"])
    assert (h.loc[[HPO_VIOL, UP_TO_61], "verdict"] == "not assessable").all()
    assert ("no full-budget model's run" in h.loc[HPO_VIOL, "reason"]
            and "survival_gan 0.02" in h.loc[HPO_VIOL, "reason"])

def test_a_failed_violation_run_is_named_not_dropped():
    v = violation_table(0.1).assign(error="")          # the violation notebook's columns
    v.loc[len(v)] = {"dataset": "aml_sal", "model": "ctgan", "config": "utility", "strategy": "none", "rule": "",
                     "budget": 1.0, "status": "failed", "error": "HPO: no finished trial"}
    f = verdicts(simulate_results(effects={("compound", "compound"): 0.1}), v)
    assert "failed runs: ctgan/utility (HPO: no finished trial)" in f.loc[HPO_VIOL, "reason"]

def test_wilson_interval_matches_the_closed_form():
    lo, hi = wilson(0.5, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3        # textbook value for 50/100
    assert wilson(0.0, 100)[0] == 0 and wilson(0.0, 100)[1] > 0

def test_heldout_criteria_separate_good_from_bad_cohorts(myeloid):
    train, test, schema = myeloid
    # a cohort of real training rows; one with its columns shuffled independently (marginals kept, structure gone);
    # one with shifted marginals (survival times tripled, one sex only)
    good = train.sample(len(train), random_state=0)
    bad = train.apply(lambda c: c.sample(frac=1, random_state=1).to_numpy())
    shifted = train.assign(OSTM=train["OSTM"] * 3, EFSTM=train["EFSTM"] * 3, SEX=train["SEX"].iloc[0])
    assert pmse_score(test, good, schema) > pmse_score(test, shifted, schema) + 0.2
    assert km_distance_score(test, good, schema) > km_distance_score(test, shifted, schema) + 0.1
    assert km_distance_score(test, test, schema) == pytest.approx(1.0)
    assert km_distance_score(test, good, schema) > 0.9
    assert cox_concordance(good, test, schema) > cox_concordance(bad, test, schema) - 0.02
    assert dcr_ratio(good, train, test, schema) == 0.0        # copies of training patients: no privacy
    assert dcr_ratio(test, train, test, schema) == pytest.approx(1.0)

@pytest.mark.slow
def test_data_card_flags_a_utility_target_at_chance():
    from synthtrial.data import target_signal, get_dataset
    from synthtrial.schema import Target
    targets = get_dataset("myeloid").schema.targets
    assert [t.name for t in targets] == ["OS_2y"]                              # CR1 was dropped as a utility target ...
    my, aml = target_signal("myeloid", targets=[Target("CR1", "CR1"), *targets]), target_signal("aml_sal")
    # ... because it carries no signal in trt, SEX, flt3
    assert my.loc["CR1", "at_chance"] and not my.loc["OS_2y", "at_chance"]
    assert not aml["at_chance"].any() and (aml["auc"] > 0.7).all()


def test_a_sweep_without_a_findings_model_says_so():
    "The second trial runs TVAE and CTGAN only: its CTAB-GAN+ and TabDDPM findings name the absent model."
    f = verdicts(simulate_results(models=("tvae", "ctgan")))
    for key, model in ((TABDDPM, "tabddpm"), ("CTAB-GAN+ improves with compound HPO", "ctabgan_plus")):
        assert f.loc[key, "verdict"] == "not assessable" and f.loc[key, "reason"] == f"{model} is not in this sweep"

def test_a_compound_study_that_chose_the_best_single_objectives_configuration_is_named():
    "Compound and fidelity picking the same trial (few trials, shared TPE seeds) give identical rows: a tie, said so."
    t = simulate_results(models=("tvae", "ctgan"), effects={("fidelity", "heldout"): 0.1})
    t = pd.concat([t[t.config != "compound"], t[t.config == "fidelity"].assign(config="compound")])
    r = verdicts(t).loc[GEN]
    assert r["estimate"] == 0 and r["ci_low"] == r["ci_high"] == 0, r
    assert "compound and fidelity chose the same configuration for every model" in r["reason"], r["reason"]
    other = verdicts(simulate_results(models=("tvae", "ctgan"), effects={("fidelity", "heldout"): 0.1})).loc[GEN]
    assert "same configuration" not in other["reason"]
