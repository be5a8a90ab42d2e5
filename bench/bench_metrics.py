"""Benchmark: the evaluation suite (synthtrial.scores.evaluate_all, defaults = the study's definitions) against
the study's own definitions run as written, metric by metric, on the issue's pair.

Data (through the library, checksummed): real = the `aml_sal` split (CTAB-GAN+ release of Zenodo 8334265,
1285 train / 321 test rows), synthetic = the `aml_sal_nflow` cohort (1606 rows), 86 modelled columns.

Baseline ("study code"): the `study_*` functions of tests/test_study_reference.py — plain pandas/numpy
re-implementations of the authors' `src/evaluation_functions.py` / `src/privacy_evaluation.py` with their loops
(dython 0.5.1's pairwise `_comp_assoc`, per-bucket masks, three `nonparametric_distance` calls with a lifelines
`predict` per time point, one Python iteration per row for Hamming), on frames in the study's encoding. Random
forest, k-means and CatBoost are computed on both sides (same seeds: k-means one fit per seed of the suite's
`kmeans_seeds`; CatBoost seed 42 with the same thread count), and every difference printed is computed, never
assumed. The log-correlation baseline is the code as written (no numerical-zero rule).

    python bench/bench_metrics.py [--repeat 3] [--threads 2] [--iterations 300] [--out bench/measured/metrics.csv]

The table is printed and written to `--out` (a CSV whose `# key: value` header lines record the command, the
machine's load and the CPU times); `nbs/05c_scores.ipynb` shows the recorded file.

Times are the minimum over `--repeat` runs of each side; the two sides alternate within each repeat so that
both see the same machine load (on a shared machine wall times still move with the load; CPU times are printed
too). Goal (issue 17): the whole suite >= 10x faster than the study's definitions as written, with equal numbers.
"""
from __future__ import annotations
import argparse, os, sys, time, warnings
from datetime import datetime, timezone
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the minimum time is reported")
ap.add_argument("--threads", type=int, default=2, help="threads for both sides (OMP/BLAS, CatBoost, random forest)")
ap.add_argument("--iterations", type=int, default=300, help="CatBoost iterations (untuned, both sides)")
ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "measured" / "metrics.csv"),
                help="CSV the table is written to, with the command line in its header ('' = do not write)")
args = ap.parse_args()
if args.repeat < 1: ap.error("--repeat must be >= 1")
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): os.environ[v] = str(args.threads)
root = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(root), str(root / "tests")]
warnings.filterwarnings("ignore")

import numpy as np, pandas as pd
from synthtrial import data as D, scores as S, privacy as P
from test_study_reference import (
    study_frame,
    column_lists,
    study_basic,
    study_log_corr,
    study_rsc,
    study_discriminator,
    study_kmeans,
    study_ml_efficiency,
    study_survival_scores,
    study_privacy,
)

train, test, schema = D.load_split("aml_sal")
syn = schema.validate(D.load_dataset("aml_sal_nflow")[0], what="aml_sal_nflow")
Tr, Te, Sy = (study_frame(d, schema) for d in (train, test, syn))
num, cat, outcomes = column_lists(schema)
settings = S.suite_settings()
seeds = list(range(settings["seed"], settings["seed"] + settings["kmeans_seeds"]))
uparams = {t.name: {"iterations": args.iterations} for t in schema.targets}
print(
    f"real: aml_sal split {train.shape[0]} train / {test.shape[0]} test; synthetic: aml_sal_nflow {syn.shape[0]} rows; "
    f"{len(schema.modelled)} columns; {args.threads} threads; repeat {args.repeat}; suite settings {settings}"
)

def study_catboost(target):
    t = schema.target(target)
    p = {"iterations": args.iterations, "random_seed": 42, "thread_count": args.threads,
         "cat_features": [c for c in cat if c not in outcomes]}
    return study_ml_efficiency(Tr, Te, Sy, target, outcomes, p, below=t.below, source=t.column)

baseline = {"basic_statistical_measure_num": lambda: study_basic(Tr, Sy, num),
            "log_transformed_correlation_score": lambda: study_log_corr(Tr, Sy, cat, zero_tol=0),
            "regularized_support_coverage": lambda: study_rsc(Tr, Sy, cat),
            "discriminator_measure_rf": lambda: study_discriminator(Tr, Sy),
            "k_means_score": lambda: float(np.mean([study_kmeans(Tr, Sy, s) for s in seeds])),
            **{f"ml_efficiency_{t.name}": (lambda t=t: study_catboost(t.name)) for t in schema.targets},
            "survival": lambda: study_survival_scores(Tr, Sy, "OSTM", "OSSTAT")}

# warm-up, untimed: imports (sklearn, CatBoost, lifelines) and first-call costs land on neither side
import sklearn.ensemble, sklearn.cluster, catboost, lifelines  # noqa: F401
S.evaluate_all(train.iloc[:300], test.iloc[:100], syn.iloc[:300], schema,
               utility_params={t.name: {"iterations": 5} for t in schema.targets})

# ------------------------------------------------------------ both sides, interleaved per repeat (same machine load)
lib_secs, lib_wall, lib_cpu = {}, [], []
ref_secs, ref_cpu, refs = {}, {}, {}
for _ in range(args.repeat):
    secs = {}
    t0, c0 = time.perf_counter(), time.process_time()
    lib = S.evaluate_all(train, test, syn, schema, utility_params=uparams, timings=secs)
    lib_wall.append(time.perf_counter() - t0); lib_cpu.append(time.process_time() - c0)
    for k, v in secs.items(): lib_secs[k] = min(v, lib_secs.get(k, np.inf))
    for name, fn in baseline.items():
        t0, c0 = time.perf_counter(), time.process_time(); refs[name] = fn()
        ref_secs[name] = min(time.perf_counter() - t0, ref_secs.get(name, np.inf))
        ref_cpu[name] = min(time.process_time() - c0, ref_cpu.get(name, np.inf))
study_cpu = sum(ref_cpu.values())
rows = []
for name, ref in refs.items():
    diff = max(abs(lib[k] - ref[k]) for k in S.SURVIVAL_METRICS) if name == "survival" else abs(lib[name] - ref)
    rows.append((name, lib_secs[name], ref_secs[name], diff, ref))

# privacy (not part of the ten): balanced Hamming report, library vs the study's eval_hamming_distances loop
pt_lib, pt_ref = [], []
for _ in range(args.repeat):
    t0 = time.perf_counter(); prep = P.privacy_report(train, test, syn, schema); pt_lib.append(time.perf_counter() - t0)
    t0 = time.perf_counter(); pref = study_privacy(Tr, Te, Sy, cat); pt_ref.append(time.perf_counter() - t0)
pkeys = ["dif_syn_train_test", "dif_orig_train_test", "dif_syn_train_orig_train", "dif_syn_test_orig_test"]
pdiff = max(
    [abs(prep[k] - pref[k]) for k in pkeys]
    + [
        abs(prep[b][k] - v)
        for b in ("hamming_syn_train", "hamming_syn_test", "hamming_train_test", "hamming_train_train")
        for k, v in pref[b].items()
    ]
)

print("\n| metric | library s | study code s | ratio | abs difference |\n|---|---:|---:|---:|---:|")
for name, a, b, d, _ in rows: print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.1f}x | {d:.1e} |")
lt, st = sum(r[1] for r in rows), sum(r[2] for r in rows)
print(f"| **suite (ten metrics)** | **{lt:.2f}** | **{st:.2f}** | **{st / lt:.1f}x** | "
      f"max {max(r[3] for r in rows):.1e} |")
nc = [r for r in rows if not r[0].startswith("ml_efficiency")]
print(f"| suite without CatBoost | {sum(r[1] for r in nc):.2f} | {sum(r[2] for r in nc):.2f} | "
      f"{sum(r[2] for r in nc) / sum(r[1] for r in nc):.1f}x | |")
print(f"| privacy: balanced Hamming report (not in the suite; library time includes DCR) | {min(pt_lib):.3f} | "
      f"{min(pt_ref):.3f} | {min(pt_ref) / min(pt_lib):.1f}x | {pdiff:.1e} |")
print(f"\nevaluate_all wall time {min(lib_wall):.2f} s (min of {args.repeat}); CPU time (all threads): library suite "
      f"{min(lib_cpu):.2f} s, study code {study_cpu:.2f} s, ratio {study_cpu / min(lib_cpu):.1f}x; "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with the load)")
ref_scores = {}
for name, *_, v in rows:
    if name == "survival": ref_scores.update(v)
    else: ref_scores[name] = v
print("library scores:   ", {k: round(v, 6) for k, v in lib.items()})
print("study code scores:", {k: round(float(ref_scores[k]), 6) for k in lib})
print(f"study compound: library {S.compound_score(lib):.6f}, study code {S.compound_score(ref_scores):.6f}")
print(f"k-means per seed {seeds}: {[round(v, 4) for v in [study_kmeans(Tr, Sy, s) for s in seeds]]}")
print(
    f"privacy dif_syn_train_test: library {prep['dif_syn_train_test']:.6f}, study code {pref['dif_syn_train_test']:.6f}"
)

# ---------------------------------------------------------------- the recorded file (read by nbs/05c_scores.ipynb)
if args.out:
    nc_lib, nc_ref = sum(r[1] for r in nc), sum(r[2] for r in nc)
    table = [(name, a, b, b / a, d) for name, a, b, d, _ in rows]
    table += [("suite", lt, st, st / lt, max(r[3] for r in rows)),
              ("suite_without_catboost", nc_lib, nc_ref, nc_ref / nc_lib, None),
              ("privacy_hamming_report", min(pt_lib), min(pt_ref), min(pt_ref) / min(pt_lib), pdiff)]
    meta = {"command": "python bench/bench_metrics.py " + " ".join(sys.argv[1:]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.threads} threads per side",
            "cpu_seconds": f"library suite {min(lib_cpu):.2f}, study code {study_cpu:.2f} (all threads)",
            "study_compound": f"library {S.compound_score(lib):.6f}, study code {S.compound_score(ref_scores):.6f}"}
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {k}: {v}" for k, v in meta.items()] + ["metric,library_s,study_code_s,ratio,abs_difference"]
    lines += [f"{n},{a:.6g},{b:.6g},{r:.6g}," + ("" if d is None else f"{d:.1e}") for n, a, b, r, d in table]
    out.write_text("\n".join(lines) + "\n")
    print(f"written: {out}")
