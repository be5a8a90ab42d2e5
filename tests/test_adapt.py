"""Tests of synthtrial.adapt on real data: controls (identity, deliberately shifted generator), bad input, composition,
experiment, figure."""
import warnings
import numpy as np, pandas as pd, pytest
from synthtrial.data import load_split
from synthtrial.adapt import (
    AdaptationError,
    AdaptationWarning,
    ShiftedGenerator,
    adapt,
    adaptation_experiment,
    adaptation_figure,
    compose,
    distributional_gap,
    fit_classifier,
    encode_features,
    gap_report,
    privacy_summary,
    real_scores,
    summarise_adaptation,
    violation_rate,
)
from synthtrial.constraints import rules_for
from synthtrial.enforce import repair




# --- control 1: "synthetic" = the real training data -------------------------------------------------
def test_identity_gaps_are_zero(myeloid):
    train, test, schema = myeloid
    g = gap_report(train, test, train, schema, seed=0)
    util = g[g["measure"] != "distributional"]
    assert len(util) == 1 * 2 + 1                                   # 1 target (OS_2y) x (AUC, MCC) + Cox C-index
    assert np.allclose(util["gap"], 0, atol=1e-12)                 # same data, same seed -> same model
    dist = g.loc[g["measure"] == "distributional", "gap"].iloc[0]
    assert abs(dist) < 0.1                                         # train vs test of one random split: AUC ~ 0.5


def test_identity_adaptation_changes_nothing_material(myeloid):
    train, test, schema = myeloid
    co, info = adapt("coral", train, train, schema, seed=0)
    for c in schema.modelled:                                      # identical values (to the real resolution)
        a, b = co[c].reset_index(drop=True), train[c].reset_index(drop=True)
        pd.testing.assert_series_equal(a, b, check_names=False)
    assert info["mean_abs_shift_sd"] < 1e-9
    imp, info = adapt("importance", train, train, schema, seed=0)
    assert info["ess_share"] > 0.6                                 # weights stay near 1 (nothing to correct)
    before, after = distributional_gap(test, train, schema), distributional_gap(test, imp, schema)
    # tolerance 0.1 AUC (about 3 standard errors with 130 test rows); resampling with replacement is a
    # bootstrap even at weights ~1, which moves the AUC by a few hundredths on its own
    assert abs(after - before) < 0.1 and abs(after - 0.5) < 0.1


# --- control 2: a deliberately shifted generator ---------------------------------------------------
def test_shifted_generator_has_a_gap_and_is_seeded(myeloid):
    train, test, schema = myeloid
    g = ShiftedGenerator(train, schema)
    a, b = g.sample(200, seed=4), g.sample(200, seed=4)
    pd.testing.assert_frame_equal(a, b)
    schema.validate(a)
    assert distributional_gap(test, a, schema) > 0.8


@pytest.mark.parametrize("method", ["importance", "rejection"])
def test_resampling_reduces_the_distributional_gap(myeloid, method):
    train, test, schema = myeloid
    g = ShiftedGenerator(train, schema, shift=0.3, scale=1.1, distort=0.15)
    syn = g.sample(len(train), seed=1)
    out, info = adapt(method, syn, train, schema, seed=1, sample_fn=g.sample)
    before, after = distributional_gap(test, syn, schema, seed=0), distributional_gap(test, out, schema, seed=0)
    assert len(out) == len(syn) and out["id"].is_unique
    assert after < before - 0.015, (before, after)


def test_coral_reduces_the_gap_and_restores_types(gbsg2):
    train, test, schema = gbsg2
    g = ShiftedGenerator(train, schema, distort=0.0)               # numeric shift only: CORAL's job
    syn = g.sample(len(train), seed=1)
    out, info = adapt("coral", syn, train, schema, seed=0)
    before, after = distributional_gap(test, syn, schema), distributional_gap(test, out, schema)
    assert after < before - 0.15, (before, after)
    for c in schema.of_kind("integer"):
        assert str(out[c].dtype) == "Int64"
        x = out[c].dropna().astype(float)
        assert (x == np.round(x)).all() and x.min() >= train[c].min() and x.max() <= train[c].max()
    for c in schema.of_kind("boolean", "categorical"):
        pd.testing.assert_series_equal(out[c], syn[c])


def test_finetune_hook_and_clean_skip(myeloid):
    train, test, schema = myeloid
    g = ShiftedGenerator(train, schema, shift=0.8, scale=1.5, distort=0.4)
    syn = g.sample(len(train), seed=1)
    ft, info = adapt("finetune", syn, train, schema, seed=2, generator=g, epochs=10)
    assert g.shift == 0.8 and info["status"] == "ok"
    assert distributional_gap(test, ft, schema) < distributional_gap(test, syn, schema) - 0.1

    class NoHook:
        name = "nohook"
        def sample(self, n, seed=0): return syn.head(n)
    with pytest.warns(AdaptationWarning, match="does not support fine-tuning"):
        out, info = adapt("finetune", syn, train, schema, seed=0, generator=NoHook())
    assert info["status"] == "skipped"
    pd.testing.assert_frame_equal(out, syn)


def test_same_seed_same_rows(myeloid):
    train, test, schema = myeloid
    syn = ShiftedGenerator(train, schema).sample(300, seed=2)
    a, _ = adapt("importance", syn, train, schema, seed=5)
    b, _ = adapt("importance", syn, train, schema, seed=5)
    c, _ = adapt("importance", syn, train, schema, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


# --- bad input ---------------------------------------------------------------------------------------
def test_too_few_synthetic_rows(myeloid):
    train, test, schema = myeloid
    syn = ShiftedGenerator(train, schema).sample(12, seed=0)
    for method in ("importance", "rejection"):
        with pytest.raises(AdaptationError, match="synthetic data has 12 rows; at least 30"):
            adapt(method, syn, train, schema, sample_fn=lambda n, s: syn)
    with pytest.raises(AdaptationError, match="synthetic data has 6 rows; at least 10"):
        distributional_gap(test, syn.head(6), schema)


def test_single_class_classifier_errors(myeloid):
    train, test, schema = myeloid
    syn = ShiftedGenerator(train, schema).sample(200, seed=0)
    syn = syn.assign(OSTM=syn.OSTM.clip(upper=700.0))            # every OS_2y label is 1; OS itself still varies
    with pytest.raises(AdaptationError, match="target 'OS_2y': the synthetic data labels have a single class"):
        gap_report(train, test, syn, schema, measures=["utility"])
    with pytest.warns(AdaptationWarning):
        g = gap_report(train, test, syn, schema, measures=["utility", "survival"], on_single_class="nan")
    assert (g["task"] != "OS_2y").any()                           # the Cox row: only the single-class target is NaN
    assert (
        g.loc[g["task"] == "OS_2y", "synthetic"].isna().all() and g.loc[g["task"] != "OS_2y", "synthetic"].notna().all()
    )
    (X,), mask = encode_features([train], schema, ["trt", "OSTM"])
    with pytest.raises(AdaptationError, match="single class"):
        fit_classifier(X, np.ones(len(X), int), mask, seed=0, what="discriminator")


def test_missing_sampler_or_generator(myeloid):
    train, test, schema = myeloid
    syn = ShiftedGenerator(train, schema).sample(100, seed=0)
    with pytest.raises(AdaptationError, match="needs sample_fn"):
        adapt("rejection", syn, train, schema)
    with pytest.raises(AdaptationError, match="needs generator="):
        adapt("finetune", syn, train, schema)
    with pytest.raises(Exception, match="order='sideways' is not allowed"):
        adapt("coral", syn, train, schema, order="sideways")


# --- privacy, constraints, composition ----------------------------------------------------------------
def test_privacy_summary_controls(gbsg2):
    train, test, schema = gbsg2
    p = privacy_summary(train, train, schema)
    assert p["exact_matches"] == len(train) and p["dcr_median"] == 0 and p["exact_share"] == 1
    q = privacy_summary(test, train, schema)                       # held-out real patients: close but not copies
    assert 0 < q["dcr_median"] < 0.2 and q["exact_matches"] == 0
    far = ShiftedGenerator(train, schema, shift=2.0, scale=2.0, distort=0.5).sample(200, seed=0)
    assert privacy_summary(far, train, schema)["dcr_median"] > q["dcr_median"]


def test_composition_orders_with_rules(myeloid):
    train, test, schema = myeloid
    rules = rules_for("myeloid", schema)
    syn = ShiftedGenerator(train, schema).sample(len(train), seed=1)
    fix = lambda df: repair(df, rules)[0]
    v0 = violation_rate(syn, rules)
    assert v0 > 0.3
    res = {}
    for order in ("adapt_then_enforce", "enforce_then_adapt"):
        out, info = adapt("importance", syn, train, schema, seed=0, postprocess=fix, order=order, checker=rules)
        assert info["violation_before"] == pytest.approx(v0)
        res[order] = info["violation_after"]
    # resampling repaired rows keeps them repaired: both orders end at the repair's own residual rate
    assert res["adapt_then_enforce"] < v0 and res["enforce_then_adapt"] < v0
    run = compose("coral", train, schema, postprocess=fix, checker=rules)
    out1, _ = run(syn, seed=0)
    out2, _ = adapt("coral", syn, train, schema, seed=0, postprocess=fix, checker=rules)
    pd.testing.assert_frame_equal(out1, out2)


# --- experiment and figure ----------------------------------------------------------------------------
def test_experiment_tidy_and_figure(myeloid, isolated_outputs):
    train, test, schema = myeloid
    sources = {
        "shifted": ShiftedGenerator(train, schema),
        "fixed_frame": ShiftedGenerator(train, schema).sample(300, seed=9),
    }
    exp = adaptation_experiment(train, test, schema, sources, methods=("importance", "rejection"), seeds=(0,),
                                measures=("distributional",), checker=rules_for("myeloid", schema))
    assert len(exp) == 2 * 2
    row = exp[(exp["generator"] == "shifted") & (exp["method"] == "importance")].iloc[0]
    assert row["reduction_pct"] == pytest.approx(
        100 * (abs(row["gap_before"]) - abs(row["gap_after"])) / abs(row["gap_before"])
    )
    assert row["reduction_pct"] > 0
    failed = exp[(exp["generator"] == "fixed_frame") & (exp["method"] == "rejection")].iloc[0]
    assert (
        failed["status"].startswith("failed:")
        and "needs sample_fn" in failed["status"]
        and np.isnan(failed["gap_after"])
    )
    s = summarise_adaptation(exp)
    assert {"reduction_pct_mean", "dcr_change_pct_mean", "violation_after_mean"} <= set(s.columns)
    fig, png = adaptation_figure(exp, name="test_adapt", params={"seeds": [0]})
    assert png.is_file() and png.with_suffix(".json").is_file() and png.with_suffix(".pdf").is_file()


def test_several_orders_in_one_call_give_the_rows_of_one_call_per_order(myeloid):
    "The sweep's job passes every order at once (the scores before adaptation computed once): the same rows."
    train, test, schema = myeloid
    rules = rules_for("myeloid", schema)
    fix = lambda df: repair(df, rules)[0]
    sources = {"shifted": ShiftedGenerator(train, schema), "frame": ShiftedGenerator(train, schema).sample(300, seed=4)}
    kw = dict(methods=("importance", "rejection", "coral"), seeds=(0,), measures=("distributional",),
              postprocess=fix, checker=rules)
    orders = ["adapt_then_enforce", "enforce_then_adapt"]
    both = adaptation_experiment(train, test, schema, sources, order=orders, **kw)
    apart = pd.concat([adaptation_experiment(train, test, schema, sources, order=o, **kw) for o in orders],
                      ignore_index=True)
    assert list(both["order"].unique()) == orders and len(both) == len(apart) > 0
    pd.testing.assert_frame_equal(both.drop(columns="seconds"), apart.drop(columns="seconds"))
    assert both.groupby("order")["violation_after"].mean().nunique() == 2     # the orders differ: a real comparison
    with pytest.raises(Exception, match="order"):
        adaptation_experiment(train, test, schema, sources, order=["adapt_then_enforce", "enforce_later"], **kw)


@pytest.mark.slow
def test_full_gap_report_on_a_second_dataset(gbsg2):
    train, test, schema = gbsg2
    syn = ShiftedGenerator(train, schema).sample(len(train), seed=1)
    exp = adaptation_experiment(train, test, schema, {"shifted": ShiftedGenerator(train, schema)},
                                methods=("importance", "rejection", "coral", "finetune"), seeds=(0, 1))
    assert set(exp["status"]) == {"ok"}
    assert {"utility", "survival", "distributional"} == set(exp["measure"])
    d = exp[exp["measure"] == "distributional"].groupby("method")["reduction_pct"].mean()
    assert (d > 0).all(), d


# --- the sweep's adaptation notebook refuses a job with nothing to adapt ------------------------------
def test_adapt_notebook_with_no_cohorts_and_no_controls_is_a_clear_failure(tmp_path, capsys):
    import json
    from synthtrial.core import project_root
    from synthtrial.sweep import main
    rc = main(
        [
            "run",
            str(project_root() / "nbs" / "experiments" / "adapt.ipynb"),
            str(tmp_path / "run"),
            "dataset=myeloid",
            f"eval_dir={tmp_path / 'no_eval'}",
            'models=["tvae"]',
            "controls=false",
        ]
    )
    err = capsys.readouterr().err
    assert (
        rc == 1 and "no cohorts found for models ['tvae']" in err and "nothing to adapt" in err and "myeloid" in err
    ), err
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "failed" and "nothing to adapt" in rec["error"]


# --- real domain shift and fine-tuning of real generators ------------------------------------------------
from synthtrial.adapt import (FINE_TUNABLE, domain_split, shift_size, fine_tune, discriminator_auc, domain_experiment,
                              gap_reduction, plot_domain_gaps)
from synthtrial.schema import Schema, Column, Target


def _shifted(n, mu, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(mu, 1, n)
    return pd.DataFrame(
        {
            "id": [f"P{i}" for i in range(n)],
            "x": x,
            "z": rng.normal(0, 1, n) + 0.5 * x,
            "g": (rng.random(n) < (0.2 if mu == 0 else 0.8)).astype(int),
            "y": (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int),
        }
    )

SHIFT = Schema(
    "shift",
    [
        Column("id", "identifier"),
        Column("x", "numeric"),
        Column("z", "numeric"),
        Column("g", "boolean"),
        Column("y", "boolean", outcome=True),
    ],
    targets=[Target("y", "y")],
)


@pytest.mark.slow
@pytest.mark.parametrize("model", FINE_TUNABLE)
def test_fine_tuning_closes_a_known_shift(model):
    from synthtrial.generators import make_generator
    src, tgt = SHIFT.restore_types(_shifted(600, 0.0, 0)), SHIFT.restore_types(_shifted(80, 2.5, 1))
    g0 = make_generator(model, budget=0.2).fit(src, SHIFT, seed=0)
    before, after = g0.sample(500, 0), fine_tune(g0, tgt, epochs=60, seed=0).sample(500, 0)
    assert abs(before.x.mean() - 2.5) > 1.5 and abs(after.x.mean() - 2.5) < 0.6      # the shift of x is closed
    assert after.g.mean() > before.g.mean() + 0.2                                     # and the category frequency moves
    assert np.allclose(g0.sample(500, 0).x, before.x)  # the source generator is untouched
    # the independent discriminator sees the difference: fine-tuned rows are closer to the target than the source's
    tgt_test = SHIFT.restore_types(_shifted(300, 2.5, 2))
    assert discriminator_auc(tgt_test, after, SHIFT) < discriminator_auc(tgt_test, before, SHIFT) - 0.2


def test_fine_tune_refuses_what_it_cannot_do(myeloid):
    from synthtrial.generators import make_generator
    train, test, schema = myeloid
    with pytest.raises(AdaptationError, match="not supported"): fine_tune(make_generator("gaussian_copula"), train)
    with pytest.raises(AdaptationError, match="not fitted"): fine_tune(make_generator("tvae"), train)
    # a target level the source never had (arm B when the source is arm A only) has no output unit: a clear refusal
    sp = domain_split(train, test, schema, "trt == 'B'", n_target=40, seed=0)
    for m in FINE_TUNABLE:
        g = make_generator(m, budget=0.01).fit(sp["source"], schema, seed=0)
        with pytest.raises(AdaptationError, match=r"never saw \(\{'trt': \['B'\]\}\)"):
            fine_tune(g, sp["target_small"], epochs=1)


def test_domain_split_and_shift_size(myeloid):
    train, test, schema = myeloid
    sp = domain_split(train, test, schema, "trt == 'B'", n_target=40, seed=0)
    assert (
        (sp["source"].trt != "B").all()
        and (sp["target_train"].trt == "B").all()
        and (sp["target_test"].trt == "B").all()
    )
    assert len(sp["target_small"]) == 40 and set(sp["target_small"].index) <= set(sp["target_train"].index)
    assert len(sp["source"]) + len(sp["target_train"]) == len(train)
    s = shift_size(sp["source"], sp["target_train"], schema, sp["rule"])
    assert 0.3 < s["disc_auc_logreg"] < 1 and s["max_smd"] >= 0 and s["max_smd_column"] != "trt"
    with pytest.raises(Exception, match="cannot be evaluated"): domain_split(train, test, schema, "NOPE > 1")
    with pytest.raises(AdaptationError, match="n_target"):
        domain_split(train, test, schema, "trt == 'B'", n_target=10_000)


@pytest.mark.slow
def test_domain_experiment_and_gap_reduction(myeloid, isolated_outputs):
    train, test, schema = myeloid
    sp = domain_split(train, test, schema, "(trt == 'B') & (flt3 != 'A')", n_target=40, seed=0)
    f = domain_experiment(sp, schema, "tvae", seeds=(0, 1), source_budget=0.02, ft_epochs=5, warmup=2,
                          methods=("none", "finetune", "coral", "target_sample"), checker=rules_for("myeloid", schema))
    assert (f.status == "ok").all() and len(f) == 2 * 4
    ts = f[f.method == "target_sample"]
    assert (ts.exact_share == 1).all() and (ts.dcr_median == 0).all()            # the real sample copies itself
    assert f[["disc_logreg", "disc_forest", "gap_OS_2y"]].notna().all().all()
    r = gap_reduction(f, "gap_OS_2y", n_boot=200)
    assert set(r.method) == {"none", "finetune", "coral", "target_sample"}
    none = r.set_index("method").loc["none"]
    assert none.reduction_pct == 0 and none.reduction_lo == 0 == none.reduction_hi
    assert (r.reduction_lo <= r.reduction_pct + 1e-9).all() and (r.reduction_pct <= r.reduction_hi + 1e-9).all()
    import matplotlib; matplotlib.use("Agg")
    fig = plot_domain_gaps(r, "myeloid")
    assert len(fig.axes) == 1
