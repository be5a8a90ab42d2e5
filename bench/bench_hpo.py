"""Multi-fidelity HPO (issue 19, part 1): the plain protocol against fold-level successive halving.

For every model and HPO seed, two studies of the same (dataset, model, objective) are run from scratch in a
temporary folder, identical but for `pruner` (None = the study's plain protocol, or `--pruner sha|hyperband`;
both with the study's early stopping at 0.9 x best, or `--early-stop none` to compare against a protocol without
it). Per study:

* `cpu_s`: the CPU seconds (user + system) the study took in this process -- the compute HPO costs, and the
  figure that holds on a shared machine where other work stretches the wall clock;
* `fold_s`: the wall seconds spent in folds (fit + sample + metrics: the trials' `fold_seconds`, summed);
  `folds`: how many folds (and rungs) were fitted;
* `best`: the best value reached (in-sample, the K-fold mean on the training split, as the study selects);
* `oos`: the best configuration's out-of-sample score: fitted once on the whole training split (seed 0),
  sampled (seed 0), scored with the same objective against the held-out test split (fidelity vs the test
  split, utility trained on the synthetic rows and tested on it).

Decision rule, written before the run (the issue's goal): multi-fidelity passes for a model if the plain
studies spend >= 3x the CPU seconds of the pruned ones (sums over the seeds) AND the pruned studies' mean
best value lies within the plain studies' seed spread or above it (>= their minimum over seeds); the out-of-sample score
is reported beside it, with the same spread, as the check that the pruned search did not select a worse
configuration.

    python bench/bench_hpo.py [--dataset aml_sal] [--models tvae,ctgan] [--seeds 11,12,13] [--trials 10]
                              [--budget 0.1] [--k-folds 5] [--objective compound] [--pruner sha|hyperband|budget]
                              [--early-stop 0.9|none] [--space-limits JSON] [--json out.json]

The defaults are a reduced scale for a shared 2-core machine (a fraction `--budget` of each model's epochs, few
trials); the study's scale is `--trials 70 --budget 1 --k-folds 5`. The settings are printed with the results.
"""
from __future__ import annotations
import argparse, json, math, os, platform, signal, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd


def out_of_sample(dataset: str, model: str, objective: str, params: dict, budget: float) -> float:
    "The objective of `params` fitted on the whole training split and scored against the test split."
    from synthtrial.data import load_split
    from synthtrial.constraints import rules_for
    from synthtrial.pipeline import SynthesisPipeline
    from synthtrial.hpo import get_objective, suite_metric_fn
    train, test, schema = load_split(dataset)
    pipe = SynthesisPipeline(model, rules_for(dataset, schema), "default", params=params, budget=budget)
    syn = pipe.fit(train, schema, seed=0).sample(len(train), seed=0)
    obj = get_objective(objective)
    scores = suite_metric_fn()(test, test, syn, schema, metrics=list(obj.resolve(schema)), seed=0)
    return obj.combine(scores, schema)


def one_study(a, model: str, seed: int, pruner: str | None, root: Path) -> dict:
    from synthtrial.hpo import run_study
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_study(a.dataset, model, a.objective, n_trials=a.trials, hpo_seed=seed, k_folds=a.k_folds, budget=a.budget,
                  pruner=pruner, early_stop=a.early_stop, out_dir=root / f"{model}_{seed}_{pruner or 'plain'}",
                  progress=False, utility_trials=0, space_limits=(a.space_limits or {}).get(model))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    trials = r.study.trials
    fold_s = sum(sum(t.user_attrs.get("fold_seconds", [])) for t in trials)
    states = pd.Series([t.state.name for t in trials]).value_counts().to_dict()
    oos = (out_of_sample(a.dataset, model, a.objective, r.best_params, a.budget) if r.best_params is not None
           else float("nan"))
    return dict(model=model, seed=seed, mode=pruner or "plain", cpu_s=round(cpu, 1), fold_s=round(fold_s, 1),
                wall_s=round(wall, 1), folds=sum(len(t.user_attrs.get("fold_seconds", [])) for t in trials),
                best=r.best_value, oos=oos,
                complete=states.get("COMPLETE", 0), pruned=states.get("PRUNED", 0), failed=states.get("FAIL", 0),
                machine=machine())


def machine() -> str:
    """Which machine measured a study: CPU seconds compare only within one (machines of one class differ ~1.5x).
    The host name and this boot's id (a sandbox's host name repeats across machines), the CPU model and count."""
    info, boot = Path("/proc/cpuinfo"), Path("/proc/sys/kernel/random/boot_id")
    model = next((l.split(":", 1)[1].strip() for l in info.read_text().splitlines() if l.startswith("model name")),
                 platform.processor()) if info.exists() else platform.processor()
    bid = boot.read_text().strip()[:8] if boot.exists() else "?"
    return f"{platform.node()} boot {bid} ({model}, {os.cpu_count()} CPUs)"


def summarise(df: pd.DataFrame, pruner: str) -> pd.DataFrame:
    "Per model, over the HPO seeds run in both modes (a partial run compares paired seeds only)."
    rows = []
    for model, g in df.groupby("model", sort=False):
        paired = set(g.loc[g["mode"] == "plain", "seed"]) & set(g.loc[g["mode"] == pruner, "seed"])
        if not paired: continue
        g = g[g["seed"].isin(paired)]
        p, m = g[g["mode"] == "plain"], g[g["mode"] == pruner]
        # CPU seconds compare only where a seed's two studies ran on one machine (a resumed run may have moved);
        # the best values do not depend on the machine
        unknown = pd.Series(index=g.index, dtype=object)
        on = lambda d: dict(zip(d["seed"], d.get("machine", unknown[d.index]).fillna("unrecorded")))
        same = [s for s in paired if on(p)[s] == on(m)[s]]
        pc, mc = p.loc[p["seed"].isin(same), "cpu_s"].sum(), m.loc[m["seed"].isin(same), "cpu_s"].sum()
        ratio = pc / mc if mc > 0 else float("nan")
        fold_s_ratio = round(p["fold_s"].sum() / m["fold_s"].sum(), 2) if m["fold_s"].sum() > 0 else float("nan")
        within = bool(m["best"].mean() >= p["best"].min())     # within the plain seeds' spread (or above it)
        fold_ratio = round(p["folds"].sum() / max(m["folds"].sum(), 1), 2)
        rows.append(dict(model=model, seeds=len(paired), compute_ratio=round(ratio, 2), compute_seeds=len(same),
                         fold_s_ratio=fold_s_ratio,
                         fold_ratio=fold_ratio,
                         plain_best=f"{p['best'].mean():.4f} [{p['best'].min():.4f}, {p['best'].max():.4f}]",
                         mf_best=f"{m['best'].mean():.4f} [{m['best'].min():.4f}, {m['best'].max():.4f}]",
                         plain_oos=f"{p['oos'].mean():.4f} [{p['oos'].min():.4f}, {p['oos'].max():.4f}]",
                         mf_oos=f"{m['oos'].mean():.4f} [{m['oos'].min():.4f}, {m['oos'].max():.4f}]",
                         best_within_spread=within, passes=bool(ratio >= 3 and within)))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="aml_sal")
    ap.add_argument("--models", default="tvae,ctgan")
    ap.add_argument("--seeds", default="11,12,13", help="HPO seeds (comma-separated); >= 3 for a seed spread")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--budget", type=float, default=0.1, help="fraction of each model's default epochs")
    ap.add_argument("--k-folds", type=int, default=5)
    ap.add_argument("--objective", default="compound")
    ap.add_argument("--pruner", default="sha", choices=["sha", "hyperband", "budget"],
                    help="sha/hyperband: prune on the folds; budget: successive halving over the epoch budget")
    ap.add_argument("--space-limits", default=None, type=json.loads,
                    help="JSON {model: {hyperparameter: values}}: search a part of each space")
    ap.add_argument("--early-stop", default="0.9", type=lambda v: None if v.lower() == "none" else float(v),
                    help="the study's early stopping factor for both modes (none: off)")
    ap.add_argument("--json", default=None, help="write the per-study rows and the summary here, after every study; "
                    "a run with the same settings resumes from it (the studies it holds are not run again)")
    ap.add_argument("--summarise-only", action="store_true",
                    help="run no study: summarise the studies --json holds again (e.g. a stopped run)")
    a = ap.parse_args(argv)
    if a.summarise_only:
        rows = _resumed(a)
        if not rows: sys.exit(f"bench_hpo: {a.json} holds no study with these settings")
        summary = summarise(pd.DataFrame(rows), a.pruner)
        old = json.loads(Path(a.json).read_text())
        _write(a, rows, summary, command=old["command"], note=old.get("note"))
        print(summary.to_string(index=False)); return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch; torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore")
    models, seeds = a.models.split(","), [int(s) for s in a.seeds.split(",")]
    print(f"settings: dataset={a.dataset} models={models} objective={a.objective} seeds={seeds} trials={a.trials} "
          f"k_folds={a.k_folds} budget={a.budget} (share of default epochs) pruner={a.pruner} "
          f"early_stop={a.early_stop} space_limits={a.space_limits} threads={torch.get_num_threads()}", flush=True)
    rows, t0 = _resumed(a), time.perf_counter()
    done = {(r["model"], r["seed"], r["mode"]) for r in rows}
    if rows: print(f"resumed from {a.json}: {len(rows)} studies kept", flush=True)
    def _stop(signum, frame): raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)          # `timeout` stops the run: summarise the studies finished so far
    with tempfile.TemporaryDirectory() as d:
        try:
            for model in models:
                for seed in seeds:
                    for pruner in (None, a.pruner):
                        if (model, seed, pruner or "plain") in done: continue
                        rows.append(one_study(a, model, seed, pruner, Path(d)))
                        print(json.dumps(rows[-1]), flush=True)
                        _write(a, rows, summarise(pd.DataFrame(rows), a.pruner))
        except KeyboardInterrupt:
            print(f"stopped after {len(rows)} studies: the summary covers the seeds run in both modes", flush=True)
    if not rows: return 1
    df = pd.DataFrame(rows)
    summary = summarise(df, a.pruner)
    pd.set_option("display.width", 250); pd.set_option("display.max_columns", 20)
    print("\nper study:\n" + df.to_string(index=False))
    print("\nsummary (compute_ratio = plain CPU seconds / multi-fidelity CPU seconds, summed over seeds; "
          "best/oos: mean [min, max] over seeds):\n" + summary.to_string(index=False))
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")
    _write(a, rows, summary)
    return 0


def _settings(a) -> dict:
    "The settings that make two runs' studies comparable (all but where the record goes)."
    return {k: v for k, v in vars(a).items() if k not in ("json", "summarise_only")}


def _resumed(a) -> list[dict]:
    "The studies an earlier run with the same settings recorded in `--json` (none without the file)."
    if not a.json or not Path(a.json).is_file(): return []
    rec = json.loads(Path(a.json).read_text())
    plain = lambda d: json.loads(json.dumps(d, default=str))      # as the file holds it
    if plain(rec.get("settings", {})) != plain(_settings(a)):
        sys.exit(f"bench_hpo: {a.json} holds a run with other settings ({rec.get('settings')}); give another --json")
    return rec.get("studies", [])


def _write(a, rows: list[dict], summary: pd.DataFrame, command: str | None = None, note: str | None = None) -> None:
    if not a.json: return
    root = f"{Path(__file__).resolve().parents[1]}/"     # a committed record names no machine's folders
    command = command or "python bench/bench_hpo.py " + " ".join(sys.argv[1:]).replace(root, "")
    record = {"settings": _settings(a), "command": command,
              "cpus": os.cpu_count(), "studies": rows, "summary": summary.to_dict("records"),
              **({"note": note} if note else {})}
    tmp = Path(a.json).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str)); os.replace(tmp, a.json)


if __name__ == "__main__":
    sys.exit(main())
