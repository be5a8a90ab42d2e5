"""Tests of synthtrial.transfer: the 2 x 3 grid, test-set isolation, controls that can fail, bad input."""
import json
import numpy as np, pandas as pd, pytest
import synthtrial.transfer as T
from synthtrial.core import SynthtrialError, ParameterError
from synthtrial.data import load_split




def test_grid_complete_and_labelled(myeloid):
    train, test, schema = myeloid
    syn = T.noise_control(train, schema, seed=3)
    res = T.transfer_analysis(train, test, syn, schema, n_trials=3, n_shared=4, seeds=(0, 1),
                              labels={"generator": "noise", "config": "default"})
    g = res["grid"]
    # families x tunings x trained_on x seeds x metrics, each combination exactly once
    assert len(g) == 2 * 3 * 2 * 2 * 2
    assert not g.duplicated(["family", "tuning", "trained_on", "seed", "metric"]).any()
    assert (
        set(g.tuning) == set(T.TUNINGS)
        and set(g.trained_on) == {"real", "synthetic"}
        and set(g.metric) == {"auc", "mcc"}
    )
    assert (
        g.value.notna().all()
        and g[g.metric == "auc"].value.between(0, 1).all()
        and g[g.metric == "mcc"].value.between(-1, 1).all()
    )
    assert (g.generator == "noise").all() and (g.config == "default").all()
    d = res["divergence"]
    assert len(d) == 4 and d[["dist_synth", "dist_synth_real", "regret"]].notna().all().all()
    assert d.dist_synth.between(0, 1).all()
    # regret is exactly AUC(H_real) - AUC(H_synth), both trained on real, on the real test split
    a = g[(g.metric == "auc") & (g.trained_on == "real")].set_index(["family", "seed", "tuning"]).value
    for _, r in d.iterrows():
        assert r.regret == pytest.approx(a[r.family, r.seed, "H_real"] - a[r.family, r.seed, "H_synth"])
    h = res["hyperparameters"]
    assert len(h) == 2 * 2 * 3 and (h.n_trials == 3).all()
    assert len(res["shared"]) == 2 * 2 * 4
    s = T.transfer_summary(res, by=["generator"])
    assert ("regret", "mean") in s.columns and len(s) == 2


def test_real_test_never_enters_tuning(myeloid, monkeypatch):
    train, test, schema = myeloid
    test = test.copy()
    test.index = [f"TEST-{i}" for i in range(len(test))]          # sentinel row labels
    syn = T.bootstrap_control(train, schema, seed=0)
    seen = {"tuning": [], "fit": [], "encoder_fit": [], "evaluate": []}

    def rows(xy): return {str(i) for i in xy.index}
    orig = {
        k: getattr(T, k)
        for k in ("tune_family", "fit_score", "shared_scores", "fit_model", "evaluate_grid", "split_xy")
    }

    def spy_tune(family, train, val, *a, **k):
        seen["tuning"] += [rows(train), rows(val)]; return orig["tune_family"](family, train, val, *a, **k)
    def spy_score(family, params, train, val, *a, **k):
        seen["tuning"] += [rows(train), rows(val)]; return orig["fit_score"](family, params, train, val, *a, **k)
    def spy_shared(family, real, syn, *a, **k):
        seen["tuning"] += [rows(x) for x in (*real, *syn)]; return orig["shared_scores"](family, real, syn, *a, **k)
    def spy_split(xy, *a, **k):
        seen["tuning"].append(rows(xy)); return orig["split_xy"](xy, *a, **k)
    def spy_fit(family, params, train, *a, **k):
        seen["fit"].append(rows(train)); return orig["fit_model"](family, params, train, *a, **k)
    def spy_eval(family, hsets, trains, test_xy, *a, **k):
        seen["evaluate"].append(rows(test_xy)); return orig["evaluate_grid"](family, hsets, trains, test_xy, *a, **k)
    orig_enc_fit = T.TransferEncoder.fit
    def spy_enc_fit(self, df):
        seen["encoder_fit"].append({str(i) for i in df.index}); return orig_enc_fit(self, df)

    for name, f in (("tune_family", spy_tune), ("fit_score", spy_score), ("shared_scores", spy_shared),
                    ("split_xy", spy_split), ("fit_model", spy_fit), ("evaluate_grid", spy_eval)):
        monkeypatch.setattr(T, name, f)
    monkeypatch.setattr(T.TransferEncoder, "fit", spy_enc_fit)
    T.transfer_analysis(train, test, syn, schema, n_trials=3, n_shared=3, seeds=(0,))

    leaked = lambda sets: {r for s in sets for r in s if r.startswith("TEST-")}
    assert seen["tuning"] and seen["fit"] and seen["encoder_fit"]
    assert not leaked(seen["tuning"]), "real test rows reached a tuning step"
    assert not leaked(seen["fit"]), "a model was fitted on real test rows"
    assert seen["encoder_fit"] == [{str(i) for i in train.index}]     # encoder fitted on real train only
    # the sentinel does flow into the final evaluation, so the spy would have seen a leak
    assert seen["evaluate"] and all(s == set(test.index) for s in seen["evaluate"])


def test_controls_logreg(gbsg2):
    """Bootstrap of the real data: regret ~ 0 and rankings agree. Noise (independent column shuffles,
    4x rows so chance correlations are small): clear regret, rankings do not agree."""
    train, test, schema = gbsg2
    d = T.run_controls(train, test, schema, seeds=range(6), families=("logreg",), n_trials=15, n_shared=15,
                       labels={"dataset": "gbsg2"})["divergence"]
    assert set(d.generator) == {"control: bootstrap", "control: noise (shuffle)"} and (d.dataset == "gbsg2").all()
    boot, noise = d[d.generator == "control: bootstrap"], d[d.generator == "control: noise (shuffle)"]
    assert len(boot) == len(noise) == 6
    assert abs(boot.regret.mean()) < 0.02             # measured 0.001 (SD 0.015 over 6 seeds)
    assert boot.spearman.mean() > 0.4                 # measured 0.58
    assert noise.regret.mean() > 0.04                 # measured 0.067
    assert noise.spearman.mean() < boot.spearman.mean() - 0.3   # measured 0.13 vs 0.58


def test_trained_on_noise_is_chance(gbsg2):
    train, test, schema = gbsg2
    res = T.transfer_analysis(train, test, T.noise_control(train, schema, seed=1, kind="uniform"), schema,
                              families=("logreg",), n_trials=5, n_shared=3, seeds=(0, 1))
    g = res["grid"]
    auc = g[g.metric == "auc"].groupby("trained_on").value.mean()
    assert auc["real"] > 0.62 and abs(auc["synthetic"] - 0.5) < 0.1


def test_deterministic(myeloid):
    train, test, schema = myeloid
    syn = T.bootstrap_control(train, schema, seed=5)
    kw = dict(families=("logreg",), n_trials=4, n_shared=4, seeds=(2,))
    a, b = (T.transfer_analysis(train, test, syn, schema, **kw) for _ in range(2))
    pd.testing.assert_frame_equal(a["grid"], b["grid"])
    pd.testing.assert_frame_equal(a["shared"], b["shared"])


def test_space_normalisation():
    rng = np.random.default_rng(0)
    for fam in T.FAMILIES:
        d = len(T.family_space(fam))
        for _ in range(20):
            p = T.denormalise(fam, rng.random(d))
            u = T.normalise(fam, p)
            assert ((u >= 0) & (u <= 1)).all()
            assert T.denormalise(fam, u) == p          # round trip on the grid of ints/choices
        assert T.config_distance(fam, p, p) == 0.0
    lo = T.denormalise("hgb", [0] * 6); hi = T.denormalise("hgb", [1] * 6)
    assert T.config_distance("hgb", lo, hi) == pytest.approx(1.0)
    # log dimension: the geometric mean sits in the middle
    assert T.normalise("logreg", {"C": 0.1, "penalty": "l1", "class_weight": "none"})[0] == pytest.approx(0.5)


def test_bad_input(myeloid):
    train, test, schema = myeloid
    one = T.bootstrap_control(train, schema, seed=1); one["OSTM"] = 100.0      # every OS_2y label is 1
    with pytest.raises(SynthtrialError, match="synthetic data: target 'OS_2y' has a single class"):
        T.transfer_analysis(train, test, one, schema, n_trials=2, seeds=(0,))
    with pytest.raises(SynthtrialError, match="only 25 rows"):
        T.transfer_analysis(train, test, train.head(25), schema, n_trials=2, seeds=(0,))
    with pytest.raises(SynthtrialError, match="real data: only 30 rows"):
        T.transfer_analysis(train.head(30), test, train, schema, n_trials=2, seeds=(0,))
    with pytest.raises(ParameterError, match="family='xgb' is not allowed"):
        T.transfer_analysis(train, test, train, schema, families=("xgb",))
    with pytest.raises(ParameterError, match="n_trials=0"):
        T.transfer_analysis(train, test, train, schema, n_trials=0)
    with pytest.raises(ParameterError, match="objective='f1'"):
        T.transfer_analysis(train, test, train, schema, objective="f1")
    with pytest.raises(ParameterError, match="target='nope'"):
        T.transfer_analysis(train, test, train, schema, target="nope")
    bad_test = test.copy(); bad_test["OSTM"] = 100.0
    with pytest.raises(SynthtrialError, match="real test: target 'OS_2y' has a single class"):
        T.transfer_analysis(train, bad_test, T.bootstrap_control(train, schema), schema, families=("logreg",),
                            n_trials=2, n_shared=3, seeds=(0,))


def test_figures(myeloid, isolated_outputs):
    import matplotlib; matplotlib.use("Agg")
    from synthtrial.figures import save_figure
    train, test, schema = myeloid
    res = [T.transfer_analysis(train, test, syn, schema, families=("logreg",), n_trials=2, n_shared=3, seeds=(0, 1),
                               labels={"generator": gen, "config": cfg})
           for gen, cfg, syn in (("boot", "default", T.bootstrap_control(train, schema)),
                                 ("noise", "default", T.noise_control(train, schema)),
                                 ("noise", "tuned", T.noise_control(train, schema, seed=2)))]
    grid = pd.concat([r["grid"] for r in res]); div = pd.concat([r["divergence"] for r in res])
    fig = T.plot_transfer_bars(grid)
    assert len(fig.axes) >= 2
    fig2 = T.plot_regret_heatmap(div)
    png = save_figure(fig2, "transfer_regret_test", "regret", "tests/test_transfer.py", {"n": 1})
    meta = json.loads(png.with_suffix(".json").read_text())
    assert png.is_file() and meta["caption"] == "regret"
    with pytest.raises(ParameterError, match="by='dataset'"):
        T.plot_transfer_bars(grid, by="dataset")


# --- the real-vs-real ceiling design ------------------------------------------------------------------

def _faithful_and_scrambled(b, s):
    "Two cohorts per 'generator', both from half B: fresh rows of the true population, and B with shuffled labels."
    out = {}
    for r in range(2):
        out[f"faithful#{r}"] = T.constructed_trial(len(b), seed=1000 + 10 * s + r)[0]
        scr = b.copy(); scr["y"] = np.random.default_rng([s, r]).permutation(scr["y"].to_numpy())
        out[f"scrambled#{r}"] = scr
    return out


@pytest.mark.slow
def test_ceiling_verdicts_differ_when_ranking_is_kept_or_scrambled():
    real, sc = T.constructed_trial(400, seed=0)
    test_rows, _ = T.constructed_trial(300, seed=99)
    res = T.transfer_ceiling(
        real, test_rows, sc, _faithful_and_scrambled, target="y", families=["logreg"], n_configs=20, splits=(0, 1, 2)
    )
    v = T.ceiling_test(res["scores"], res["test"], n_boot=300).set_index("generator")
    assert v.loc["faithful", "verdict"] == "tunes like real data"
    assert v.loc["scrambled", "verdict"] == "worse than real data"
    assert v.loc["scrambled", "delta_spearman_lo"] > 0 >= v.loc["faithful", "delta_spearman_lo"]


def test_ceiling_without_signal_is_not_answerable():
    real, sc = T.constructed_trial(300, seed=1, strength=0.0)
    test_rows, _ = T.constructed_trial(200, seed=2, strength=0.0)
    res = T.transfer_ceiling(
        real,
        test_rows,
        sc,
        lambda b, s: {"faithful#0": T.constructed_trial(len(b), seed=50 + s, strength=0.0)[0]},
        target="y",
        families=["logreg"],
        n_configs=10,
        folds=2,
        splits=(0,),
    )
    v = T.ceiling_test(res["scores"], res["test"], n_boot=200)
    assert v.verdict.tolist() == ["not answerable"] and not v.answerable.any()


def test_ceiling_design_isolation_and_shape(monkeypatch):
    real, sc = T.constructed_trial(240, seed=3, n_noise=4)
    test_rows, _ = T.constructed_trial(120, seed=4, n_noise=4)
    seen = []
    def make(b, s):
        seen.append(set(b["id"]))
        return {"copy#0": b.assign(id=[f"C{i}" for i in range(len(b))])}
    res = T.transfer_ceiling(
        real, test_rows, sc, make, target="y", families=["logreg"], n_configs=6, folds=2, repeats=2, splits=(0, 1)
    )
    # the cohort maker sees half B only: disjoint from A, half the rows
    for s, ids in zip((0, 1), seen):
        assert 100 <= len(ids) <= 140 and ids < set(real["id"])
    sc_ = res["scores"]
    assert set(sc_.source) == {"real-A", "real-B", "copy#0"} and (sc_.n_fits == 4).all()
    assert len(res["test"]) == 2 * 6 and res["test"].test_auc.between(0, 1).all()
    d = res["divergence"]
    assert set(d.kind) == {"ceiling", "synthetic"} and len(d) == 2 * 2
    # a copy of half B is the ceiling itself: same ranking, same regret
    for s in (0, 1):
        c, b = d[(d.split == s) & (d.source == "copy#0")].iloc[0], d[(d.split == s) & (d.source == "real-B")].iloc[0]
        assert c.spearman == pytest.approx(b.spearman) and c.regret == pytest.approx(b.regret)


def test_ceiling_bad_input():
    real, sc = T.constructed_trial(120, seed=5, n_noise=2)
    with pytest.raises(ParameterError, match="folds=1"):
        T.cv_scores(
            "logreg",
            T.random_configs("logreg", 2, 0),
            T.TransferEncoder(sc, sc.targets[0]).fit(real).transform(real, "r"),
            0,
            folds=1,
        )
    with pytest.raises(ParameterError, match="families"):
        T.transfer_ceiling(real, real, sc, lambda b, s: {}, families=[])
