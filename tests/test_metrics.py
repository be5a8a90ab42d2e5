"""The evaluation suite (metrics, utility, privacy, scores): cross-checks against independent
implementations, sanity behaviour on real vs itself / shuffles / noise, bad input, determinism."""
import json, warnings
import numpy as np, pandas as pd, pytest
from synthtrial.data import load_split
from synthtrial.schema import SchemaError
from synthtrial.core import ParameterError, SynthtrialError
from synthtrial.transfer import noise_control
from synthtrial import metrics as M, privacy as P, utility as U, scores as S

FAST = {"OS_2y": {"iterations": 60}}

@pytest.fixture(scope="module")
def data():
    train, test, schema = load_split("myeloid")
    return train, test, schema

def uniform_noise(df, schema, seed=0):
    "Every column drawn independently and uniformly over the real range / levels: the library's noise control."
    return noise_control(df, schema, seed=seed, kind="uniform")

def shuffle_columns(df, seed=0):
    rng = np.random.default_rng(seed)
    return df.apply(lambda c: pd.Series(rng.permutation(c.to_numpy()), index=df.index, dtype=c.dtype))

def mix(real, noise, frac, seed=0):
    "Replace a fraction `frac` of the rows by noise rows."
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(real), int(round(frac * len(real))), replace=False)
    out = real.copy(); out.iloc[idx] = noise.iloc[idx].to_numpy()
    return out

# ------------------------------------------------------------------ cross-checks
def dython_matrix(df, schema):
    from dython.nominal import associations
    cols = schema.modelled; num, cat = M.split_kinds(schema, cols)
    d = df[cols].copy()
    for c in cat: d[c] = d[c].astype(object)
    for c in num: d[c] = d[c].astype(float)
    return associations(d, nominal_columns=cat, nom_nom_assoc="theil", nan_strategy="replace", nan_replace_value=-1,
                        compute_only=True)["corr"].loc[cols, cols].astype(float)

@pytest.mark.parametrize("variant", ["train", "noise", "constant_and_missing"])
def test_association_matrix_matches_dython(data, variant):
    train, _, schema = data
    df = {"train": train, "noise": uniform_noise(train, schema, 1),
          "constant_and_missing": train.assign(trt="A", CRTM=train.CRTM.where(train.index % 3 == 0))}[variant]
    ours = M.association_matrix(
        df, schema, theil_u="dython07"
    )  # dython >= 0.6 orientation (the study pins 0.5.1: the transpose)
    ref = dython_matrix(df, schema)
    assert np.abs(ours.values - ref.values).max() < 1e-9
    assert not np.allclose(ours.values, np.eye(len(ours)))   # the test compares something non-trivial

def test_survival_scores_match_lifelines_loop(data):
    from lifelines import KaplanMeierFitter
    train, test, schema = data
    got = M.survival_km_scores(train, test, schema, n_points=300)
    tr, er, ts, es = (
        train.OSTM.astype(float),
        train.OSSTAT.astype(float),
        test.OSTM.astype(float),
        test.OSSTAT.astype(float),
    )
    kr, ks = KaplanMeierFitter().fit(tr, er), KaplanMeierFitter().fit(ts, es)
    tmax = max(tr.max(), ts.max()); grid = np.linspace(max(0, min(tr.min(), ts.min())), tmax, 300)
    diff = np.array([ks.predict(t) - kr.predict(t) for t in grid])
    assert abs(got["survival_auc_opt"] - (1 - abs(np.trapz(diff, grid) / tmax))) < 1e-12
    assert abs(got["survival_auc_abs_opt"] - (1 - np.trapz(np.abs(diff), grid) / tmax)) < 1e-12
    assert got["survival_auc_abs_opt"] < 1

def test_survival_scores_match_synthcity(data):
    """Against synthcity's SurvivalKMDistance (and the nonparametric_distance it calls); ~17 s, mostly importing
    synthcity."""
    from synthtrial.compat import ensure_torchvision
    ensure_torchvision()
    from synthcity.plugins.core.models.survival_analysis.metrics import nonparametric_distance
    from synthcity.metrics.eval_statistical import SurvivalKMDistance
    from synthcity.plugins.core.dataloader import SurvivalAnalysisDataLoader
    train, test, schema = data
    syn = mix(train, uniform_noise(train, schema, 2), 0.3)
    rT, rE, sT, sE = (x.astype(float).to_numpy() for x in (train.OSTM, train.OSSTAT, syn.OSTM, syn.OSSTAT))
    opt, abs_opt, sight = nonparametric_distance((rT, rE), (sT, sE), n_points=len(train))
    ours = M.survival_km_scores(train, syn, schema)
    assert abs(ours["survival_auc_opt"] - (1 - abs(opt))) < 1e-9
    assert abs(ours["survival_auc_abs_opt"] - (1 - abs_opt)) < 1e-9
    assert abs(ours["survival_sightedness"] - (1 - abs(sight))) < 1e-12
    def loader(df):
        d = df[["SEX", "OSTM", "OSSTAT"]].astype(float)
        return SurvivalAnalysisDataLoader(d, time_to_event_column="OSTM", target_column="OSSTAT")
    km = SurvivalKMDistance(task_type="survival_analysis").evaluate(loader(train), loader(syn))
    ours1000 = M.survival_km_scores(train, syn, schema, n_points=1000)   # synthcity's fixed grid size
    assert abs(ours1000["survival_auc_opt"] - (1 - abs(km["optimism"]))) < 1e-9
    assert abs(ours1000["survival_auc_abs_opt"] - (1 - km["abs_optimism"])) < 1e-9
    assert abs(ours1000["survival_sightedness"] - (1 - abs(km["sightedness"]))) < 1e-12

def test_discriminator_matches_sklearn_by_hand(data):
    "The study's procedure written out with scikit-learn on pandas frames."
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.metrics import accuracy_score
    train, test, schema = data
    syn = mix(train, uniform_noise(train, schema, 3), 0.5).iloc[:400]
    cols = schema.modelled
    r = train[cols].sample(n=len(syn), random_state=42).copy(); s = syn[cols].copy()
    for c in ("trt", "flt3"):
        lev = sorted(pd.concat([r[c], s[c]]).unique()); r[c] = r[c].map(lev.index); s[c] = s[c].map(lev.index)
    r, s = r.astype(float).fillna(M.MISSING_FILL), s.astype(float).fillna(M.MISSING_FILL)
    r_tr, r_te, s_tr, s_te = train_test_split(r.to_numpy(), s.to_numpy(), random_state=42, test_size=0.2)
    X = np.vstack([r_tr, s_tr]); y = np.r_[np.ones(len(r_tr)), np.zeros(len(s_tr))]
    perm = np.random.RandomState(42).permutation(len(X))
    acc = accuracy_score(np.r_[np.ones(len(r_te)), np.zeros(len(s_te))],
                         RandomForestClassifier(random_state=42).fit(X[perm], y[perm]).predict(np.vstack([r_te, s_te])))
    assert M.discriminator_measure_rf(train, syn, schema) == pytest.approx(1 - 2 * (max(acc, .5) - .5), abs=1e-12)

def test_ml_efficiency_matches_catboost_and_sklearn_mcc(data):
    from catboost import CatBoostClassifier
    from sklearn.metrics import matthews_corrcoef
    train, test, schema = data
    Xs, ys, cats = U.utility_frame(train, schema, "OS_2y"); Xt, yt, _ = U.utility_frame(test, schema, "OS_2y")
    m = CatBoostClassifier(iterations=60, random_seed=42, thread_count=2, verbose=False, allow_writing_files=False,
                           cat_features=cats).fit(Xs, ys)
    want = matthews_corrcoef((test.OSTM < 730.5).astype(int), np.asarray(m.predict(Xt)).astype(int).ravel())
    assert U.ml_efficiency(train, test, schema, "OS_2y", {"iterations": 60}) == pytest.approx(want, abs=1e-12)
    assert want > 0.1   # real -> real beats chance

def test_hamming_and_dcr_match_brute_force(data):
    train, test, schema = data
    cols = schema.modelled
    src, tgt = test.iloc[:40], train.iloc[:120]
    S_, T_ = P._hamming_codes(src, tgt, schema, cols)
    d1, d2 = P.nearest_hamming(S_, T_)
    # code -1 (a missing numeric value, the study's NaN != NaN) differs from everything, itself included
    brute = np.array(
        [[int(((S_[i] != T_[j]) | (S_[i] < 0) | (T_[j] < 0)).sum()) for j in range(len(T_))] for i in range(len(S_))]
    )
    assert (S_ < 0).any()   # the frames exercise it
    assert (d1 == brute.min(1)).all() and (d2 == np.sort(brute, 1)[:, 1]).all()
    # numeric codes are target deciles with open outer edges: check one column against pd.cut
    q = np.unique(np.quantile(tgt.OSTM.astype(float), np.linspace(0, 1, 11)))
    cut = pd.cut(src.OSTM.astype(float), np.r_[-np.inf, q[1:-1], np.inf], labels=False).to_numpy()
    assert (S_[:, cols.index("OSTM")] == cut).all()
    num, cat = M.split_kinds(schema, cols)
    rng_ = (tgt[num].astype(float).max() - tgt[num].astype(float).min())
    def gower(a, b):
        d = 0.0
        for c in num:
            x, y = a[c], b[c]
            d += (
                0.0
                if (pd.isna(x) and pd.isna(y))
                else 1.0
                if (pd.isna(x) or pd.isna(y))
                else min(1, abs(float(x) - float(y)) / rng_[c])
            )
        d += sum(
            0.0 if (pd.isna(a[c]) and pd.isna(b[c])) else float(pd.isna(a[c]) or pd.isna(b[c]) or a[c] != b[c])
            for c in cat
        )
        return d / len(cols)
    want = [min(gower(src.iloc[i], tgt.iloc[j]) for j in range(len(tgt))) for i in range(10)]
    assert np.allclose(P.dcr(src.iloc[:10], tgt, schema, cols, rng_), want)

# ------------------------------------------------------------------ sanity
def test_real_vs_itself_scores_one(data):
    train, test, schema = data
    s = S.evaluate_all(train, test, train, schema, utility_params=FAST)
    for m in S.FIDELITY_METRICS + S.SURVIVAL_METRICS:
        assert s[m] == pytest.approx(1.0, abs=1e-9), m

def test_shuffles_and_noise_score_clearly_lower(data):
    train, test, schema = data
    fid = lambda syn: S.evaluate_all(train, test, syn, schema, metrics="fidelity")
    same, shuf, noise = fid(train), fid(shuffle_columns(train)), fid(uniform_noise(train, schema))
    # shuffling keeps the marginals: the correlation score and the discriminator must see it
    assert shuf["log_transformed_correlation_score"] < same["log_transformed_correlation_score"] - 0.2
    assert shuf["discriminator_measure_rf"] < 0.5
    for m in S.FIDELITY_METRICS:
        assert noise[m] < same[m] - 0.05, m
    assert S.compound_score(noise, "fidelity") < S.compound_score(shuf, "fidelity") < S.compound_score(same, "fidelity")

def test_monotone_decline_as_noise_grows(data):
    train, test, schema = data
    noise = uniform_noise(train, schema, 5)
    res = [S.evaluate_all(train, test, mix(train, noise, f), schema, metrics="fidelity") for f in (0, .25, .5, .75, 1)]
    comp = [S.compound_score(r, "fidelity") for r in res]
    assert all(a > b for a, b in zip(comp, comp[1:])), comp
    for m in (
        "basic_statistical_measure_num",
        "discriminator_measure_rf",
        "regularized_support_coverage",
        "k_means_score",
    ):
        vals = [r[m] for r in res]
        assert all(a >= b - 0.02 for a, b in zip(vals, vals[1:])) and vals[0] - vals[-1] > 0.1, (m, vals)

def test_deterministic_given_seed(data):
    train, test, schema = data
    syn = mix(train, uniform_noise(train, schema, 7), 0.3)
    a = S.evaluate_all(train, test, syn, schema, utility_params=FAST, seed=3)
    b = S.evaluate_all(train, test, syn, schema, utility_params=FAST, seed=3)
    assert a == b
    assert P.privacy_report(train, test, syn, schema, seed=2) == P.privacy_report(train, test, syn, schema, seed=2)

# ------------------------------------------------------------------ bad input
def test_bad_input_has_defined_behaviour(data):
    train, test, schema = data
    with pytest.raises(SchemaError, match="missing columns \\['flt3'\\]"):
        S.evaluate_all(train, test, test.drop(columns="flt3"), schema)
    with pytest.raises(SchemaError, match="not in the real data"):
        M.regularized_support_coverage(train, test.assign(extra=1), schema)
    with pytest.raises(SchemaError, match="'trt'"):   # a dtype that cannot be made canonical
        M.k_means_score(train, test.assign(trt=1.5), schema)
    # lossless dtype differences are coerced: booleans as float, integers as strings of digits
    assert M.regularized_support_coverage(train, test.assign(SEX=test.SEX.astype(float)), schema) == \
        M.regularized_support_coverage(train, test, schema)
    # all-missing real column: left out with a warning; all-missing synthetic column: worst gap, no crash
    with pytest.warns(M.MetricWarning, match="TXTM"):
        v = M.basic_statistical_measure(train.assign(TXTM=np.nan), test, schema)
    assert 0 <= v <= 1
    assert M.basic_statistical_measure(train, test.assign(TXTM=np.nan), schema) < M.basic_statistical_measure(
        train, test, schema
    )
    # constant columns in either frame: every fidelity metric stays defined and in range
    for r, s in ((train.assign(trt="A"), test), (train, test.assign(trt="A", OSTM=100.0))):
        out = S.evaluate_all(r, test, s, schema, metrics="fidelity")
        assert all(0 <= v <= 1 for v in out.values()), out
    # single-class synthetic target: the last label is flipped (study rule), with a warning
    with pytest.warns(M.MetricWarning, match="flipped"):
        # every OS_2y label is 1
        v = U.ml_efficiency(train.assign(OSTM=100.0), test, schema, "OS_2y", {"iterations": 30})
    assert -1 <= v <= 1
    with pytest.raises(ParameterError, match="matches no metric"):
        S.compound_score({"k_means_score": 1.0}, {"kmeans": 1})
    with pytest.raises(ParameterError, match="not known"):
        S.evaluate_all(train, test, test, schema, metrics=["k_means"])

# ------------------------------------------------------------------ privacy, utility tuning, compound
def test_privacy_flags_copies(data):
    train, test, schema = data
    honest = P.privacy_report(train, test, test.copy(), schema)
    assert not honest["copies_training_rows"]
    leaky = pd.concat([train.iloc[:200], uniform_noise(test, schema, 4)])
    with pytest.warns(M.MetricWarning, match="exact copies"):
        rep = P.privacy_report(train, test, leaky, schema)
    assert rep["copies_training_rows"] and rep["exact_copies"] >= 200
    assert rep["hamming_syn_train"]["mean"] < rep["hamming_syn_test"]["mean"]

def test_min_hamming_measures_from_each_source_row(data):
    "Five copied training rows are five source rows at distance 0 (the earlier version measured from the target)."
    train, test, schema = data
    complete = train[train.notna().all(axis=1)]
    copied = P.min_hamming(complete.iloc[:5], train, schema)
    assert copied["mean"] == 0 and copied["exact_matches"] == 5
    mixed = P.min_hamming(pd.concat([complete.iloc[:5], uniform_noise(test, schema, 7).iloc[:20]]), train, schema)
    assert mixed["exact_matches"] == 5 and mixed["p5"] == 0 and mixed["mean"] > 0

def test_min_hamming_numeric_nan_as_the_study(data):
    """The study's pandas `!=`: a missing numeric value matches nothing, itself included; `numeric_nan_matches` is the
    named deviation."""
    train, _, schema = data
    with_nan = train[train.CRTM.isna()].iloc[:5]
    assert P.min_hamming(with_nan, train, schema)["exact_matches"] == 0
    assert P.min_hamming(with_nan, train, schema)["mean"] >= 1
    assert P.min_hamming(with_nan, train, schema, numeric_nan_matches=True)["exact_matches"] == 5

def test_min_hamming_hand_computed():
    "Four source rows against four target rows, distances counted by hand (see 05a_privacy)."
    from synthtrial.schema import Schema, Column
    hs = Schema(
        "h", [Column("a", "boolean"), Column("b", "boolean"), Column("c", "categorical", levels=["x", "y", "z"])]
    )
    T = hs.validate(pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 1, 1, 0], "c": ["x", "y", "x", "z"]}))
    S_ = hs.validate(pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 1, 1, 0], "c": ["x", "x", "z", "y"]}))
    h = P.min_hamming(S_, T, hs)
    assert (h["mean"], h["mean_gap_2nd"], h["exact_matches"], h["p50"]) == (0.75, 0.5, 1, 1.0)
    assert P.min_hamming(T.iloc[[0, 0, 0, 0]], T, hs)["mean"] == 0            # from the copies: all 0
    assert P.min_hamming(T, T.iloc[[0, 0, 0, 0]], hs)["mean"] == 1.5          # the other direction: (0+3+1+2)/4

def test_privacy_train_vs_test_sign(data):
    "Synthetic rows copied from training patients: positive train-vs-test difference; from hold-out patients: negative."
    train, test, schema = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.MetricWarning)
        from_train = P.privacy_report(train, test, train.sample(len(test), random_state=0), schema)
        from_test = P.privacy_report(
            train, test, pd.concat([test.sample(100, random_state=1), train.sample(30, random_state=1)]), schema
        )
    assert from_train["dif_syn_train_test"] > 0 > from_test["dif_syn_train_test"]
    # balanced mode: every chunk pair, no row dropped (516 train rows, chunks of ~130: 4 chunks, 6 train-train pairs)
    k = round(len(train) / len(test))
    assert (
        from_train["hamming_syn_train"]["n_pairs"] == k
        and from_train["hamming_train_train"]["n_pairs"] == k * (k - 1) // 2
    )
    assert sum(len(c) for c in P.study_chunks(train, len(test))) == len(train)

def test_theil_u_default_is_dython_051_orientation(data):
    """The default is the transpose of dython >= 0.6 in the categorical block (dython 0.5.1's
    `ij = theils_u(col_j, col_i)`)."""
    train, _, schema = data
    _, cat = M.split_kinds(schema, schema.modelled)
    a = M.association_matrix(train, schema).loc[cat, cat].values
    b = M.association_matrix(train, schema, theil_u="dython07").loc[cat, cat].values
    assert np.abs(a - b.T).max() < 1e-15 and np.abs(a - b).max() > 1e-3

def test_utility_tuning_is_cached_by_key(data, isolated_outputs):
    train, test, schema = data
    e1 = U.tune_utility_params(train, schema, "OS_2y", n_trials=2, iterations=40, seed=5)
    path = U.utility_params_path("myeloid", "OS_2y")
    assert path.is_file() and json.loads(path.read_text())["key"]["n_trials"] == 2
    assert U.tune_utility_params(train, schema, "OS_2y", n_trials=2, iterations=40, seed=5) == e1
    e3 = U.tune_utility_params(train, schema, "OS_2y", n_trials=3, iterations=40, seed=5)
    assert e3["key"]["n_trials"] == 3 and e3["n_trials_done"] == 3
    assert 1 <= e1["params"]["iterations"] <= 40 and -1 <= e1["cv_mcc"] <= 1

def test_study_compound_preset(data):
    from synthtrial.data import get_dataset
    schema = get_dataset("aml_sal").schema                  # the study's variables: two utility targets
    names = S.metric_names(schema)
    w = S.resolve_weights("study", names)
    assert len(w) == 10 and sum(w.values()) == 12 and w["ml_efficiency_CR1"] == w["ml_efficiency_OSTM_2y"] == 2
    w1 = S.resolve_weights("study", S.metric_names(data[2]))  # myeloid: one utility target
    assert len(w1) == 9 and sum(w1.values()) == 10 and w1["ml_efficiency_OS_2y"] == 2
    scores = {n: float(i) / 10 for i, n in enumerate(names)}
    assert S.compound_score(scores, "study") == pytest.approx(sum(w[n] * scores[n] for n in names) / 12)
    assert S.compound_score(scores, "k_means_score") == scores["k_means_score"]

# ------------------------------------------------------------------ the metric registry
@pytest.fixture
def registry():
    "The metric registry, restored after the test: a toy metric registered here does not leak into other tests."
    saved = dict(M.METRICS)
    yield M.METRICS
    M.METRICS.clear(); M.METRICS.update(saved)

def test_registered_metric_is_computed_on_request_and_leaves_the_study_unchanged(data, registry):
    "A toy fidelity and a toy per-target metric: registered, computed on request; the study's suite and compound stay."
    train, test, schema = data
    syn = mix(train, uniform_noise(train, schema, 6), 0.4)
    before = S.evaluate_all(train, test, syn, schema, utility_params=FAST)

    @M.register_metric("toy_median_ostm_ratio", family="fidelity", weight=3.0)
    def toy_median(x):
        a, b = x.real_train.OSTM.astype(float).median(), x.syn.OSTM.astype(float).median()
        return float(min(a, b) / max(a, b))

    @M.register_metric("toy_prevalence_{target}", family="utility")
    def toy_prevalence(x, target):
        return 1 - abs(U.target_label(x.real_test, target).mean() - U.target_label(x.syn, target).mean())

    assert registry["toy_median_ostm_ratio"].family == "fidelity"
    assert "toy_median_ostm_ratio" in S.metric_names(schema)
    assert "toy_prevalence_OS_2y" in S.metric_names(schema)
    assert "toy_prevalence_{target}" in S.metric_templates()
    assert S.family_weights("fidelity")["toy_median_ostm_ratio"] == 3.0
    toy = S.evaluate_all(train, test, syn, schema, metrics=["toy_median_ostm_ratio", "toy_prevalence_OS_2y"])
    med_r, med_s = train.OSTM.astype(float).median(), syn.OSTM.astype(float).median()
    assert toy["toy_median_ostm_ratio"] == min(med_r, med_s) / max(med_r, med_s)
    assert toy["toy_median_ostm_ratio"] < 1                   # the noise moved the median: the check is not trivial
    lab = lambda d: (d.OSTM.astype(float) < 730.5).where(d.OSTM.notna()).astype(float).mean()   # OS_2y by hand
    assert toy["toy_prevalence_OS_2y"] == pytest.approx(1 - abs(lab(test) - lab(syn)), abs=1e-12)

    after = S.evaluate_all(train, test, syn, schema, utility_params=FAST)
    assert list(after) == list(before)                        # the default suite: the study's metrics, in order
    assert after == before                                    # ... and their values, bit for bit
    assert S.compound_score(after) == S.compound_score(before)
    assert S.compound_score({**after, **toy}) == S.compound_score(before)   # in the scores, still not in the study
    assert S.preset_metrics("fidelity", schema) == list(S.FIDELITY_METRICS)

def test_registry_refuses_what_would_change_the_study(registry):
    with pytest.raises(ParameterError, match="pinned suite"):   # ml_efficiency_* is the study's utility pattern
        M.register_metric("ml_efficiency_brier_{target}", family="utility")(lambda x, t: 0.0)
    with pytest.raises(ParameterError, match="already registered"):
        M.register_metric("k_means_score", family="fidelity")(lambda x: 1.0)
    with pytest.raises(ParameterError, match="already produced"):
        M.register_metric("km_again", family="survival", outputs=("survival_auc_opt",))(lambda x: {})
    with pytest.raises(ParameterError, match="metric family"):
        M.register_metric("toy", family="beauty")
    S.check_study_suite()
    del registry["k_means_score"]
    with pytest.raises(SynthtrialError, match="k_means_score"):
        S.check_study_suite()

def test_missing_fill_is_the_studys():
    "One fill value in the library (metrics; utility and transfer import it), equal to the study reference's own."
    from test_study_reference import MISSING
    assert M.MISSING_FILL == MISSING
    assert U.MISSING_FILL is M.MISSING_FILL
