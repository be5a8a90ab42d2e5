"""The study's numbers, pinned on a small real frame.

Each metric of the study (Hahn et al.; the authors' `src/evaluation_functions.py` and
`src/privacy_evaluation.py`, with their pinned dython 0.5.1) is re-implemented here in plain
pandas/numpy the way the authors' code computes it — per-column and per-pair loops, dython 0.5.1's
`_comp_assoc` orientation, the study's missing-value encoding (a missing boolean is -1, a missing
categorical value is the string 'empty_val', label-encoded afterwards) — and compared with
`synthtrial`'s defaults on the first rows of the two public AML cohorts. Nothing here calls the
library's metric code; the library only loads the data and names the column kinds.

Tolerances: 1e-9 for every deterministic metric (the log-correlation score with one stated
numerical-zero rule, see `study_log_corr`); the seeded ones (random forest, k-means per seed,
CatBoost with the same seed and one thread) must be equal to 1e-12.

The AML files come through `synthtrial.data.load_dataset` (checksummed); when they cannot be had the
loader's error fails these tests — they are never skipped.

`bench/bench_metrics.py` imports the `study_*` functions below as its baseline.
"""
from __future__ import annotations
import copy, heapq, math, warnings
from collections import Counter
import numpy as np, pandas as pd, pytest

N_TRAIN, N_TEST, N_SYN = 200, 100, 240     # rows of aml_sal (train, then test) and of aml_sal_nflow
MISSING = -9999999999
CAT_ITER = 100                             # CatBoost iterations in the test (the suite's default is 300)

# ------------------------------------------------------------------ the study's preprocessing
def study_frame(df: pd.DataFrame, schema) -> pd.DataFrame:
    "A canonical synthtrial frame as the study's code sees it: missing boolean -1 (int), missing category 'empty_val'."
    out = {}
    for c in schema.modelled:
        k = schema[c].kind
        if k == "boolean": out[c] = df[c].astype("Float64").fillna(-1).astype(int).to_numpy()
        elif k == "categorical": out[c] = df[c].astype(object).where(df[c].notna(), "empty_val").astype(str).to_numpy()
        elif k == "integer" and not df[c].isna().any(): out[c] = df[c].astype(int).to_numpy()
        else: out[c] = df[c].astype(float).to_numpy()
    return pd.DataFrame(out)

def column_lists(schema):
    "(numeric columns, categorical columns incl. booleans, outcome columns) as in the study's columns.json."
    num = [c for c in schema.modelled if schema[c].kind in ("numeric", "integer")]
    cat = [c for c in schema.modelled if schema[c].kind in ("boolean", "categorical")]
    return num, cat, [c for c in schema.modelled if schema[c].outcome]

# ------------------------------------------------------------------ 1. basic statistics
def study_basic(orig_df, synth_df, num_columns, clip_val=1):
    mean_dif = abs((orig_df[num_columns].mean() - synth_df[num_columns].mean()) / orig_df[num_columns].mean())
    median_dif = abs((orig_df[num_columns].median() - synth_df[num_columns].median()) / orig_df[num_columns].mean())
    std_dif = abs((orig_df[num_columns].std() - synth_df[num_columns].std()) / orig_df[num_columns].mean())
    mean_dif, median_dif, std_dif = (d.clip(upper=clip_val) for d in (mean_dif, median_dif, std_dif))
    scores = [1 - sum(d) / len(d) for d in (mean_dif, median_dif, std_dif)]
    return sum(scores) / 3

# ------------------------------------------------------------------ 2. dython 0.5.1 associations, log-correlation
def _entropy(counts):
    tot = sum(counts)
    return -sum((n / tot) * math.log(n / tot) for n in counts if n > 0)

def _theils_u(x, y):
    "dython 0.5.1 theils_u(x, y) = U(x | y), by counting pairs."
    y_counter = Counter(y); xy_counter = Counter(list(zip(x, y))); tot = sum(y_counter.values())
    s_xy = 0.0
    for xy, nxy in xy_counter.items():
        p_xy = nxy / tot; p_y = y_counter[xy[1]] / tot
        s_xy += p_xy * math.log(p_y / p_xy)
    s_x = _entropy(list(Counter(x).values()))
    return 1 if s_x == 0 else (s_x - s_xy) / s_x

def _correlation_ratio(categories, measurements):
    fcat, _ = pd.factorize(np.asarray(categories))
    m = np.asarray(measurements, dtype=float)
    avg, cnt = [], []
    for i in range(fcat.max() + 1):
        sel = m[fcat == i]; cnt.append(len(sel)); avg.append(sel.mean())
    avg, cnt = np.array(avg), np.array(cnt)
    tot = (avg * cnt).sum() / cnt.sum()
    num = (cnt * (avg - tot) ** 2).sum()
    return 0.0 if num == 0 else math.sqrt(num / ((m - tot) ** 2).sum())

def study_assoc(dataset, nominal_columns, nan_replace_value=-1):
    "dython 0.5.1 `_comp_assoc(..., theil_u=True, nan_strategy='replace')`: entry [i, j] = theils_u(col_j, col_i)."
    dataset = dataset.fillna(nan_replace_value)
    columns = list(dataset.columns)
    corr = pd.DataFrame(index=columns, columns=columns, dtype=float)
    single = [c for c in columns if dataset[c].unique().size == 1]
    vals = {c: dataset[c].tolist() for c in columns}
    for i, ci in enumerate(columns):
        if ci in single:
            corr.loc[:, ci] = 0.0; corr.loc[ci, :] = 0.0; continue
        for cj in columns[i:]:
            if cj in single: continue
            if ci == cj: corr.loc[ci, cj] = 1.0; continue
            if ci in nominal_columns and cj in nominal_columns:
                ji, ij = _theils_u(vals[ci], vals[cj]), _theils_u(vals[cj], vals[ci])
            elif ci in nominal_columns: ij = ji = _correlation_ratio(vals[ci], vals[cj])
            elif cj in nominal_columns: ij = ji = _correlation_ratio(vals[cj], vals[ci])
            else: ij = ji = float(np.corrcoef(np.asarray(vals[ci], float), np.asarray(vals[cj], float))[0, 1])
            corr.loc[ci, cj] = ij if not np.isnan(ij) and abs(ij) < np.inf else 0.0
            corr.loc[cj, ci] = ji if not np.isnan(ji) and abs(ji) < np.inf else 0.0
    return corr

ZERO_TOL = 1e-12   # see study_log_corr

def study_log_corr(orig_df, synth_df, categorical_cols, clip_val=1, zero_tol=ZERO_TOL):
    """The study's score. One deviation from the code as written, on both sides of the comparison: an entry
    with |r| < 1e-12 is an exact zero computed with rounding noise (dython's counting loop gives e.g. 4e-16 for
    two exactly independent genes); ln of that noise (about -35) depends only on the order of the float sums,
    so it is set to 0 before the logarithm. `zero_tol=0` is the code as written (the benchmark's baseline)."""
    oc, sc = study_assoc(orig_df, categorical_cols), study_assoc(synth_df, categorical_cols)
    oc, sc = oc.where(oc.abs() >= zero_tol, 0.0), sc.where(sc.abs() >= zero_tol, 0.0)
    so, ss_ = np.sign(oc), np.sign(sc)
    lo = np.log(abs(oc), out=np.zeros_like(oc), where=(oc != 0))
    ls = np.log(abs(sc), out=np.zeros_like(sc), where=(sc != 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = abs(((so * lo) - (ss_ * ls)) / (so * lo))
    return 1 - rel.clip(upper=clip_val).mean().mean()

# ------------------------------------------------------------------ 3. regularized support coverage
def study_rsc(orig_df, synth_df, categorical_cols, num_bins=10):
    f = len(orig_df) / len(synth_df); total = 0
    for col in categorical_cols:
        ovc = orig_df[col].value_counts(sort=False, dropna=False)
        svc = synth_df[col].value_counts(sort=False, dropna=False)
        n = len(ovc); cov = 0
        for key in ovc.keys():
            if key not in svc.keys(): continue
            if ovc[key] == 0: n -= 1; continue
            cov += min(svc[key] / ovc[key] * f, 1)
        total += min(cov / n, 1)
    for col in [c for c in orig_df.columns if c not in categorical_cols]:
        cuts = pd.qcut(orig_df[col], q=num_bins, retbins=True, duplicates="drop")[1]; cov = 0
        for i in range(len(cuts) - 1):
            lo, hi = cuts[i], cuts[i + 1]
            if i + 1 == len(cuts) - 1:
                oc = len(orig_df[(orig_df[col] >= lo) & (orig_df[col] <= hi)])
                sc = len(synth_df[(synth_df[col] >= lo) & (synth_df[col] <= hi)])
            else:
                oc = len(orig_df[(orig_df[col] >= lo) & (orig_df[col] < hi)])
                sc = len(synth_df[(synth_df[col] >= lo) & (synth_df[col] < hi)])
            cov += min(sc / oc * f, 1)
        total += min(cov / (len(cuts) - 1), 1)
    return total / len(orig_df.columns)

# ------------------------------------------------------------------ 4. random-forest discriminator
def _label_encode(fit_values, values):
    classes = np.unique(np.asarray(fit_values))            # what sklearn's LabelEncoder does
    return np.searchsorted(classes, np.asarray(values))

def study_discriminator(orig_df, synth_df, test_ratio=0.2):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    orig_df, synth_df = copy.deepcopy(orig_df), copy.deepcopy(synth_df)
    if len(synth_df) > len(orig_df): synth_df = synth_df.sample(n=len(orig_df), random_state=42).reset_index(drop=True)
    elif len(orig_df) > len(synth_df): orig_df = orig_df.sample(n=len(synth_df), random_state=42).reset_index(drop=True)
    both = pd.concat([orig_df, synth_df], axis=0)
    for col in orig_df.select_dtypes(exclude=[int, float]).columns:
        orig_df[col] = _label_encode(both[col], orig_df[col]); synth_df[col] = _label_encode(both[col], synth_df[col])
    if orig_df.isna().any().any():
        orig_df = orig_df.fillna(MISSING); synth_df = synth_df.fillna(MISSING)
    orig_df["real_point"] = 1; synth_df["real_point"] = 0
    o_tr, o_te, s_tr, s_te = train_test_split(orig_df, synth_df, random_state=42, test_size=test_ratio)
    tr = pd.concat([o_tr, s_tr], ignore_index=True).sample(frac=1, random_state=42).reset_index(drop=True)
    te = pd.concat([o_te, s_te], ignore_index=True)
    rf = RandomForestClassifier(random_state=42).fit(tr.drop(columns="real_point"), tr.real_point)
    acc = (rf.predict(te.drop(columns="real_point")) == te.real_point).mean()
    return 1 - (max(acc, 0.5) - 0.5) * 2

# ---------------------------------------------------------- 5. k-means (the study sets no seed: one per call here)
def study_kmeans(orig_df, synth_df, seed, k=10):
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import OneHotEncoder, StandardScaler, RobustScaler
    f = len(orig_df) / len(synth_df)
    orig_df, synth_df = copy.deepcopy(orig_df), copy.deepcopy(synth_df)
    numeric = list(orig_df.select_dtypes(include=[int, float]).columns)
    num_cols = [c for c in numeric if len(orig_df[c].unique()) > 3]
    non_num = list(orig_df.select_dtypes(exclude=[int, float]).columns) + [
        c for c in numeric if len(orig_df[c].unique()) == 3
    ]
    nan_cols = orig_df.columns[orig_df.isna().any()].tolist(); num_nan = []
    if nan_cols:
        num_nan = [c for c in numeric if c in nan_cols]
        for c in num_nan: orig_df[c] = orig_df[c].fillna(MISSING); synth_df[c] = synth_df[c].fillna(MISSING)
        num_nan = [c for c in num_nan if c not in non_num]
    oe = OneHotEncoder().fit(orig_df[non_num])
    r_cat, s_cat = oe.transform(orig_df[non_num]).toarray(), oe.transform(synth_df[non_num]).toarray()
    orig_df, synth_df = orig_df.drop(columns=non_num), synth_df.drop(columns=non_num)
    parts_r, parts_s = [orig_df, r_cat], [synth_df, s_cat]
    if num_nan:
        num_cols = [c for c in num_cols if c not in num_nan]
        rs = RobustScaler().fit(orig_df[num_nan])
        r_nn, s_nn = rs.transform(orig_df[num_nan]), rs.transform(synth_df[num_nan])
        orig_df, synth_df = orig_df.drop(columns=num_nan), synth_df.drop(columns=num_nan)
    ss = StandardScaler().fit(orig_df[num_cols])
    r_num, s_num = ss.transform(orig_df[num_cols]), ss.transform(synth_df[num_cols])
    orig_df, synth_df = orig_df.drop(columns=num_cols), synth_df.drop(columns=num_cols)
    real = np.concatenate([orig_df.to_numpy(), r_cat, r_num] + ([r_nn] if num_nan else []), axis=1)
    syn = np.concatenate([synth_df.to_numpy(), s_cat, s_num] + ([s_nn] if num_nan else []), axis=1)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(real)
    rc, sc = list(model.predict(real)), list(model.predict(syn))
    return sum(min(sc.count(i) / rc.count(i) * f, 1) for i in range(k)) / k

# ------------------------------------------------------------------ 6. ML efficiency (CatBoost, MCC)
def study_ml_efficiency(
    orig_train, orig_test, synth, predict_col, outcome_cols, training_params, below=None, source=None
):
    from catboost import CatBoostClassifier
    from sklearn.metrics import matthews_corrcoef
    orig_train, orig_test, synth = (copy.deepcopy(d) for d in (orig_train, orig_test, synth))
    if predict_col not in orig_train.columns:  # the study's create_column_lambda: 1 if OSTM < 24 else 0
        for d in (orig_train, orig_test, synth):
            d[predict_col] = d.apply(lambda row: 1 if row[source] < below else 0, axis=1)
    drop = [c for c in outcome_cols if c != predict_col]
    orig_train, orig_test, synth = (d.drop(columns=drop) for d in (orig_train, orig_test, synth))
    orig = pd.concat([orig_train, orig_test], ignore_index=True)
    for col in orig.select_dtypes(exclude=[int, float]).columns:
        for d in (orig_train, orig_test, synth): d[col] = _label_encode(orig[col], d[col])
    if orig.isna().any().any():
        orig_train, orig_test, synth = (d.fillna(MISSING) for d in (orig_train, orig_test, synth))
    y_test, y_syn = orig_test.pop(predict_col), synth.pop(predict_col); orig_train.pop(predict_col)
    model = CatBoostClassifier(**training_params, verbose=False, allow_writing_files=False)
    if len(y_syn.unique()) == 1:
        y_syn = y_syn.copy(); y_syn.iloc[-1] = 1 - y_syn.iloc[-1]
    model.fit(synth, y_syn)
    return matthews_corrcoef(y_test, model.predict(orig_test))

# ---------------------------------------------------------- 7. survival (synthcity 0.2.6 nonparametric_distance)
def study_survival(real_T, real_E, syn_T, syn_E, n_points):
    "One `nonparametric_distance` call: lifelines KM `predict` per time point, numpy trapezoid."
    from lifelines import KaplanMeierFitter
    tmax = max(real_T.max(), syn_T.max()); tmin = max(0, min(real_T.min(), syn_T.min()))
    pts = np.linspace(tmin, tmax, n_points)
    kr, ks = KaplanMeierFitter().fit(real_T, real_E), KaplanMeierFitter().fit(syn_T, syn_E)
    opt = [ks.predict(t) - kr.predict(t) for t in pts]
    trapz = getattr(np, "trapezoid", None) or np.trapz
    return (trapz(opt, pts) / tmax, trapz(np.abs(opt), pts) / tmax, (real_T.max() - syn_T.max()) / tmax)

def study_survival_scores(orig, synth, time, event):
    "The study calls nonparametric_distance once per survival metric (three times)."
    args = (orig[time], orig[event], synth[time], synth[event], len(orig))
    return {"survival_auc_opt": 1 - abs(study_survival(*args)[0]),
            "survival_auc_abs_opt": 1 - abs(study_survival(*args)[1]),
            "survival_sightedness": 1 - abs(study_survival(*args)[2])}

# ------------------------------------------------------------------ 8. privacy: Hamming distances
def study_hamming(df_from, df_to, categorical_cols, num_bins=10):
    df_from, df_to = copy.deepcopy(df_from), copy.deepcopy(df_to)
    for col in [c for c in df_to.columns if c not in categorical_cols]:
        cuts = pd.qcut(df_to[col], q=num_bins, retbins=True, duplicates="drop")[1]
        cuts[0], cuts[-1] = -np.inf, np.inf
        df_to[col] = pd.cut(df_to[col], bins=cuts, labels=list(range(len(cuts) - 1)))
        df_from[col] = pd.cut(df_from[col], bins=cuts, labels=list(range(len(cuts) - 1)))
    mins, gaps = [], []
    # the study compares `df_to != df_from.iloc[i]` in pandas; the same elementwise != on object arrays
    # (NaN != NaN is True in both) is 20x faster and keeps the row loop
    T, F = df_to.to_numpy(object), df_from.to_numpy(object)
    for i in range(len(F)):
        dists = (T != F[i]).sum(axis=1)
        two = heapq.nsmallest(2, dists); mins.append(two[0]); gaps.append(two[1] - two[0])
    return np.mean(mins), np.mean(gaps), np.percentile(sorted(mins), [5, 25, 50, 75, 95]), mins.count(0)

def study_eval_hamming(df_from, df_to, categorical_cols, balanced_count, same=False):
    df_from = df_from.sample(frac=1, random_state=1).reset_index(drop=True)
    df_to = df_to.sample(frac=1, random_state=1).reset_index(drop=True)
    A = np.array_split(df_from, round(len(df_from) / balanced_count))
    B = np.array_split(df_to, round(len(df_to) / balanced_count))
    res = [study_hamming(A[i], B[j], categorical_cols)
           for i in range(len(A)) for j in range(len(B)) if not (same and j <= i)]
    return {"mean": np.mean([r[0] for r in res]), "mean_gap_2nd": np.mean([r[1] for r in res]),
            **{f"p{q}": np.mean([r[2][k] for r in res]) for k, q in enumerate((5, 25, 50, 75, 95))},
            "exact_matches": sum(r[3] for r in res)}

def study_privacy(train, test, syn, categorical_cols):
    m = len(test)
    out = {"hamming_syn_train": study_eval_hamming(syn, train, categorical_cols, m),
           "hamming_syn_test": study_eval_hamming(syn, test, categorical_cols, m),
           "hamming_train_test": study_eval_hamming(train, test, categorical_cols, m),
           "hamming_train_train": study_eval_hamming(train, train, categorical_cols, m, same=True)}
    st, ss_, tt, trtr = (
        out[k]["mean"] for k in ("hamming_syn_train", "hamming_syn_test", "hamming_train_test", "hamming_train_train")
    )
    out.update(dif_syn_train_test=1 - st / ss_, dif_orig_train_test=1 - trtr / tt,
               dif_syn_train_orig_train=st / trtr - 1, dif_syn_test_orig_test=ss_ / tt - 1)
    return out

# ------------------------------------------------------------------ the pinned comparison
@pytest.fixture(scope="module")
def frames():
    "First rows of both public AML files; the loader's error (not a skip) when they cannot be had."
    from synthtrial.data import load_dataset
    real, schema = load_dataset("aml_sal")
    syn = schema.validate(load_dataset("aml_sal_nflow")[0], what="aml_sal_nflow").iloc[:N_SYN]
    train, test = real.iloc[:N_TRAIN], real.iloc[N_TRAIN:N_TRAIN + N_TEST]
    return train, test, syn, schema, tuple(study_frame(d, schema) for d in (train, test, syn))

@pytest.fixture(scope="module")
def suite(frames):
    from synthtrial import scores as S
    train, test, syn, schema, _ = frames
    details = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("OMP_NUM_THREADS", "1")
            got = S.evaluate_all(train, test, syn, schema, details=details,
                                 utility_params={t.name: {"iterations": CAT_ITER} for t in schema.targets})
    return got, details

def test_frames_exercise_the_encodings(frames):
    "The pinned frames contain what the encodings are about: a missing category, missing booleans, unequal sizes."
    train, test, syn, schema, (Tr, Te, Sy) = frames
    assert (Tr.AMLSTAT == "empty_val").any() and (
        Tr[[c for c in schema.modelled if schema[c].kind == "boolean"]] == -1
    ).any().any()
    assert len(Tr) != len(Sy)

@pytest.mark.parametrize("metric", ["basic_statistical_measure_num", "log_transformed_correlation_score",
                                    "regularized_support_coverage", "survival"])
def test_deterministic_metrics_equal_the_study(frames, suite, metric):
    train, test, syn, schema, (Tr, Te, Sy) = frames
    got, _ = suite
    num, cat, _ = column_lists(schema)
    if metric == "survival":
        ref = study_survival_scores(Tr, Sy, "OSTM", "OSSTAT")
        for k, v in ref.items(): assert abs(got[k] - v) <= 1e-9, (k, got[k], v)
        return
    ref = {"basic_statistical_measure_num": lambda: study_basic(Tr, Sy, num),
           "log_transformed_correlation_score": lambda: study_log_corr(Tr, Sy, cat),
           "regularized_support_coverage": lambda: study_rsc(Tr, Sy, cat)}[metric]()
    assert abs(got[metric] - ref) <= 1e-9, (got[metric], ref)

def test_theil_orientation_matters_here(frames):
    """Where the orientation matters, the default follows dython 0.5.1 and dython >= 0.6's convention (a named
    option) does not: NPM1 := [AMLSTAT is de novo] in both frames makes U(NPM1 | AMLSTAT) = 1, a 0/0 entry that
    drops out of the mean of column means in one orientation only."""
    from synthtrial.metrics import log_transformed_correlation_score
    train, test, syn, schema, (Tr, Te, Sy) = frames
    det = lambda d: d.assign(NPM1=(d.AMLSTAT == "de novo").astype("Int64"))
    r, s = det(train), det(syn)
    ref = study_log_corr(study_frame(r, schema), study_frame(s, schema), column_lists(schema)[1])
    assert abs(log_transformed_correlation_score(r, s, schema) - ref) <= 1e-9
    assert abs(log_transformed_correlation_score(r, s, schema, theil_u="dython07") - ref) > 1e-6

def test_random_forest_equals_the_study(frames, suite):
    train, test, syn, schema, (Tr, Te, Sy) = frames
    got, _ = suite
    assert got["discriminator_measure_rf"] == pytest.approx(study_discriminator(Tr, Sy), abs=1e-12)

def test_missing_category_sentinel_is_a_named_deviation(frames):
    "The earlier encoding (sentinel after encoding) is still available by name, and differs on this frame."
    from synthtrial.metrics import discriminator_measure_rf
    train, test, syn, schema, (Tr, Te, Sy) = frames
    # many missing: the codes matter
    amlstat_missing = syn.assign(AMLSTAT=syn.AMLSTAT.where(np.arange(len(syn)) % 4 > 0))
    ref = study_discriminator(Tr, study_frame(amlstat_missing, schema))
    assert discriminator_measure_rf(train, amlstat_missing, schema) == pytest.approx(ref, abs=1e-12)
    assert discriminator_measure_rf(train, amlstat_missing, schema, missing_category="sentinel") != pytest.approx(
        ref, abs=1e-12
    )

def test_kmeans_equals_the_study_per_seed(frames, suite):
    from synthtrial.scores import suite_settings
    train, test, syn, schema, (Tr, Te, Sy) = frames
    got, details = suite
    st = suite_settings()
    seeds = list(range(st["seed"], st["seed"] + st["kmeans_seeds"]))
    ref = [study_kmeans(Tr, Sy, s) for s in seeds]
    assert np.abs(np.array(details["k_means_score_per_seed"]) - ref).max() <= 1e-12
    assert abs(got["k_means_score"] - np.mean(ref)) <= 1e-12

@pytest.mark.parametrize("target", ["CR1", "OSTM_2y"])
def test_catboost_equals_the_study(frames, suite, target):
    "Booleans and AMLSTAT as cat_features, the study's label encoding; same seed (42) and one thread."
    train, test, syn, schema, (Tr, Te, Sy) = frames
    got, _ = suite
    _, cat, outcomes = column_lists(schema)
    t = schema.target(target)
    params = {"iterations": CAT_ITER, "random_seed": 42, "thread_count": 1,
              "cat_features": [c for c in cat if c not in outcomes]}
    ref = study_ml_efficiency(Tr, Te, Sy, target, outcomes, params, below=t.below, source=t.column)
    assert got[f"ml_efficiency_{target}"] == pytest.approx(ref, abs=1e-12)

def test_privacy_equals_the_study(frames):
    from synthtrial.privacy import privacy_report
    train, test, syn, schema, (Tr, Te, Sy) = frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = privacy_report(train, test, syn, schema)
    ref = study_privacy(Tr, Te, Sy, column_lists(schema)[1])
    for block in ("hamming_syn_train", "hamming_syn_test", "hamming_train_test", "hamming_train_train"):
        for k, v in ref[block].items(): assert abs(got[block][k] - v) <= 1e-9, (block, k, got[block][k], v)
    for k in ("dif_syn_train_test", "dif_orig_train_test", "dif_syn_train_orig_train", "dif_syn_test_orig_test"):
        assert abs(got[k] - ref[k]) <= 1e-9, (k, got[k], ref[k])
