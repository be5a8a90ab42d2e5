"""Benchmark of the evaluation suite (synthtrial.metrics / utility / privacy / scores) on the two public
synthetic AML cohorts of Eckardt et al. 2024 (Zenodo 8334265): CTAB-GAN+ as "real", NFlow as
"synthetic", 1606 x 87 each.

It times every metric of the library, then a straightforward row-wise / pairwise implementation of the
same definitions kept here (not in the library), checks that both give the same numbers and prints the
speed ratio. Random forest, k-means and CatBoost are the same library calls in both versions (there is no
"row-wise" random forest), so they are timed once and counted in both totals.

    python bench/bench_metrics.py [--threads 2] [--data DIR]

Targets (issue 5): library >= 5x faster than the row-wise version on equal results; the full suite
(excluding the one-off CatBoost tuning) <= 10 s on 2 cores.
"""
from __future__ import annotations
import argparse, math, os, sys, time, warnings
from collections import Counter
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--data", default=os.environ.get("SYNTHTRIAL_AML_DIR", "/work/shared/data/aml_synthetic_zenodo_8334265"))
args = ap.parse_args()
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): os.environ[v] = str(args.threads)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import numpy as np, pandas as pd
from synthtrial.schema import Schema, Column, Endpoint, Target
from synthtrial import metrics as M, privacy as P, scores as S, utility as U

# ---------------------------------------------------------------- data
def load_aml(which: str) -> pd.DataFrame:
    return pd.read_csv(Path(args.data) / f"synthetic_aml_data_{which}.csv", sep=";", decimal=",", encoding="utf-8-sig")

from synthtrial import data as D
if {"aml_sal", "aml_sal_nflow"} <= set(D.DATASETS):          # the registered cohorts (checksummed download)
    real, schema = D.load_dataset("aml_sal")
    syn = schema.validate(D.load_dataset("aml_sal_nflow")[0], what="aml_sal_nflow")
    source = "synthtrial.data: aml_sal (CTAB-GAN+) as real, aml_sal_nflow as synthetic"
else:                                                          # fallback: read the CSV files directly
    raw_real, raw_syn = load_aml("ctab"), load_aml("nflow")
    NUM = {"WBC": "numeric", "HB": "numeric", "PLT": "numeric", "OSTM": "numeric", "EFSTM": "numeric", "AGE": "integer"}
    OUT = {"CR1", "OSTM", "OSSTAT", "EFSTM", "EFSSTAT"}
    cols = []
    for c in raw_real.columns:
        if c == "SUBJID": cols.append(Column(c, "identifier"))
        elif c == "AMLSTAT": cols.append(Column(c, "categorical", levels=["de novo", "sAML", "tAML"]))
        else: cols.append(Column(c, NUM.get(c, "boolean"), outcome=c in OUT))
    schema = Schema("aml_zenodo", cols, endpoints=[Endpoint("OS", "OSTM", "OSSTAT")],
                    targets=[Target("CR1", "CR1"), Target("OSTM_2y", "OSTM", below=24.0)])
    def canon(df):
        return schema.validate(df.assign(SEX=df.SEX.map({"m": 1, "f": 0})))
    real, syn = canon(raw_real), canon(raw_syn)
    source = f"CSV files in {args.data}"
print(f"{source}: real {real.shape}, synthetic {syn.shape}, {args.threads} threads")

# ---------------------------------------------------------------- row-wise reference implementations
def rw_basic(real, syn):
    num = schema.of_kind("numeric", "integer"); gm = gmed = gs = 0.0
    def mean(v): return sum(v) / len(v)
    def median(v): v = sorted(v); n = len(v); return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    def std(v): m = mean(v); return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    for c in num:
        r = [float(x) for x in real[c] if not pd.isna(x)]; s = [float(x) for x in syn[c] if not pd.isna(x)]
        sc = abs(mean(r))
        gm += min(1, abs(mean(r) - mean(s)) / sc); gmed += min(1, abs(median(r) - median(s)) / sc); gs += min(1, abs(std(r) - std(s)) / sc)
    k = len(num); return ((1 - gm / k) + (1 - gmed / k) + (1 - gs / k)) / 3

def rw_assoc(df):
    from dython.nominal import associations
    cols = schema.modelled; num, cat = M.split_kinds(schema, cols)
    d = df[cols].copy()
    for c in cat: d[c] = d[c].astype(object)
    for c in num: d[c] = d[c].astype(float)
    return associations(d, nominal_columns=cat, nom_nom_assoc="theil", nan_strategy="replace", nan_replace_value=-1,
                        compute_only=True)["corr"].loc[cols, cols].astype(float)

def rw_logcorr(real, syn):
    a, b = rw_assoc(real), rw_assoc(syn)
    def t(x): return np.sign(x) * np.log(np.abs(x), out=np.zeros_like(x), where=x != 0)
    rel = (abs((t(a.values) - t(b.values)) / t(a.values)))
    return 1 - pd.DataFrame(rel).clip(upper=1).mean().mean()

def rw_rsc(real, syn):
    f = len(real) / len(syn); total = 0.0; cols = schema.modelled; num, cat = M.split_kinds(schema, cols)
    for c in cat:
        rc = real[c].astype(object).fillna("NA").value_counts(); sc = syn[c].astype(object).fillna("NA").value_counts()
        cov = sum(min(1, f * sc.get(k, 0) / rc[k]) for k in rc.index) / len(rc); total += min(cov, 1)
    for c in num:
        x = real[c].astype(float); y = syn[c].astype(float)
        edges = pd.qcut(x, q=10, retbins=True, duplicates="drop")[1]; cov, nb = 0.0, 0
        for i in range(len(edges) - 1):
            lo, hi = edges[i], edges[i + 1]; last = i + 1 == len(edges) - 1
            nr = ((x >= lo) & ((x <= hi) if last else (x < hi))).sum(); ns = ((y >= lo) & ((y <= hi) if last else (y < hi))).sum()
            if nr == 0: continue
            cov += min(1, f * ns / nr); nb += 1
        total += min(cov / nb, 1)
    return total / len(cols)

def rw_survival(real, syn):
    from lifelines import KaplanMeierFitter
    tr, er, ts, es = real.OSTM.astype(float), real.OSSTAT.astype(float), syn.OSTM.astype(float), syn.OSSTAT.astype(float)
    kr, ks = KaplanMeierFitter().fit(tr, er), KaplanMeierFitter().fit(ts, es)
    tmax = max(tr.max(), ts.max()); grid = np.linspace(max(0, min(tr.min(), ts.min())), tmax, len(tr))
    diff = [ks.predict(t) - kr.predict(t) for t in grid]
    area = sum((diff[i] + diff[i + 1]) / 2 * (grid[i + 1] - grid[i]) for i in range(len(grid) - 1))
    aarea = sum((abs(diff[i]) + abs(diff[i + 1])) / 2 * (grid[i + 1] - grid[i]) for i in range(len(grid) - 1))
    return {"survival_auc_opt": 1 - abs(area / tmax), "survival_auc_abs_opt": 1 - aarea / tmax,
            "survival_sightedness": 1 - abs((tr.max() - ts.max()) / tmax)}

def rw_hamming(source, target, bins=10):
    "Row by row: minimum number of differing columns (numerics in target deciles, missing = own value)."
    cols = schema.modelled; num, _ = M.split_kinds(schema, cols)
    s, t = source[cols].copy(), target[cols].copy()
    for c in cols:
        if c in num:
            q = np.unique(np.quantile(t[c].dropna().astype(float), np.linspace(0, 1, bins + 1)))
            e = np.r_[-np.inf, q[1:-1], np.inf]
            s[c] = pd.cut(s[c].astype(float), e, labels=False); t[c] = pd.cut(t[c].astype(float), e, labels=False)
        s[c] = s[c].astype(object).fillna("NA").astype(str); t[c] = t[c].astype(object).fillna("NA").astype(str)
    tv = t.to_numpy()
    return np.array([(tv != row).sum(axis=1).min() for row in s.to_numpy()])

def rw_dcr(source, target, cols, ranges):
    num, cat = M.split_kinds(schema, cols); out = []
    T = target[cols]
    Tn = T[num].astype(float).to_numpy() / ranges[num].to_numpy(); Tc = T[cat].astype(object).fillna("NA").to_numpy()
    Sn = source[num].astype(float).to_numpy() / ranges[num].to_numpy(); Sc = source[cat].astype(object).fillna("NA").to_numpy()
    for i in range(len(source)):
        d = np.minimum(np.abs(Tn - Sn[i]), 1); bn, one = np.isnan(Tn) & np.isnan(Sn[i]), np.isnan(Tn) ^ np.isnan(Sn[i])
        d = np.where(bn, 0, np.where(one, 1, d)).sum(axis=1) + (Tc != Sc[i]).sum(axis=1)
        out.append(d.min() / len(cols))
    return np.array(out)

# ---------------------------------------------------------------- timing
def timed(fn, *a, **k):
    t0 = time.perf_counter(); v = fn(*a, **k); return v, time.perf_counter() - t0

rows = []
secs = {}
c0 = time.process_time()
lib, t_suite = timed(S.evaluate_all, real, real, syn, schema, timings=secs)
cpu_suite = time.process_time() - c0
# ML efficiency / RF / k-means: identical library calls in both versions
shared = {m: secs[m] for m in ["discriminator_measure_rf", "k_means_score"] + [f"ml_efficiency_{t.name}" for t in schema.targets]}
pairs = [("basic_statistical_measure_num", lambda: rw_basic(real, syn)),
         ("log_transformed_correlation_score", lambda: rw_logcorr(real, syn)),
         ("regularized_support_coverage", lambda: rw_rsc(real, syn)),
         ("survival", lambda: rw_survival(real, syn))]
for name, fn in pairs:
    v, t = timed(fn)
    lv = {k: lib[k] for k in S.SURVIVAL_METRICS} if name == "survival" else lib[name]
    diff = max(abs(v[k] - lv[k]) for k in lv) if name == "survival" else abs(v - lv)
    rows.append((name, secs[name], t, diff))
for name, t in shared.items(): rows.append((name, t, t, 0.0))

# privacy: Hamming syn->real (full sets) and DCR, library vs row-wise
cols = schema.modelled
(d1, _), t_h = timed(lambda: P.nearest_hamming(*P._hamming_codes(syn, real, schema, cols)))
rw_h, t_rh = timed(rw_hamming, syn, real)
numc = M.split_kinds(schema, cols)[0]
ranges = real[numc].astype(float).max() - real[numc].astype(float).min()
d_lib, t_d = timed(P.dcr, syn, real, schema, cols, ranges)
d_rw, t_rd = timed(rw_dcr, syn, real, cols, ranges)

print(f"\n| metric | library s | row-wise s | ratio | max abs diff |\n|---|---:|---:|---:|---:|")
for name, a, b, d in rows: print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.1f}x | {d:.1e} |")
print(f"| privacy: min Hamming syn→real (1606×1606) | {t_h:.3f} | {t_rh:.3f} | {t_rh / t_h:.1f}x | {np.abs(d1 - rw_h).max():.1e} |")
print(f"| privacy: DCR syn→real (1606×1606) | {t_d:.3f} | {t_rd:.3f} | {t_rd / t_d:.1f}x | {np.abs(d_lib - d_rw).max():.1e} |")
lib_total = sum(r[1] for r in rows); rw_total = sum(r[2] for r in rows)
print(f"| **suite (ten metrics)** | {lib_total:.2f} | {rw_total:.2f} | {rw_total / lib_total:.1f}x | |")
own_l = sum(r[1] for r in rows if r[0] not in shared) + t_h + t_d
own_r = sum(r[2] for r in rows if r[0] not in shared) + t_rh + t_rd
print(f"| metrics implemented here (no RF/k-means/CatBoost) + privacy | {own_l:.2f} | {own_r:.2f} | {own_r / own_l:.1f}x | |")
print(f"\nevaluate_all wall time: {t_suite:.2f} s, CPU time {cpu_suite:.2f} s (target <= 10 s on 2 cores); "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
print("scores:", {k: round(v, 4) for k, v in lib.items()}, f"\nstudy compound: {S.compound_score(lib):.4f}")
