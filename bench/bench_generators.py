"""Fit time and peak memory of every generator at its default settings (or a reduced --budget).

Each model runs in a fresh Python process (so imports and memory of one model do not leak into the
next) with `torch.set_num_threads(--threads)`. Reported per model:

* fit_s      -- wall seconds of `Generator.fit` (includes synthcity's own preprocessing, not the import);
* sample_s   -- wall seconds to sample as many rows as the training split;
* peak_rss_mb -- peak resident set size of the process (resource.getrusage ru_maxrss) after fit+sample;
* fit_rss_mb  -- that peak minus the RSS just before fit (libraries imported, data loaded), i.e. the
                 memory the fit itself added (psutil RSS before vs getrusage peak after).

Usage:  python bench/bench_generators.py [--dataset aml_sal] [--budget 1.0] [--models a,b] [--threads 2] [--seed 0]
                                         [--cap SECONDS] [--probes 0.01,0.03]
Prints a markdown table, and writes the rows to --out (default bench/measured/generators.csv; '' = do not
write) with the command that produced them, the date and the CPU count; rows of other models already in
that file are kept, so a re-measured subset (--models) replaces only its own rows. 04_generators shows
that file. --json FILE also writes the raw rows. Default dataset: aml_sal when registered, else myeloid
(the script says which).

--cap: on a small CPU machine some study defaults take hours (SurvivalGAN: 10 000 epochs). With a cap,
a model with epoch-like hyperparameters is first run at two reduced budgets (--probes), the fit time is
fitted as a + b * budget (fixed cost + per-epoch cost) and extrapolated to budget 1; only models whose
prediction is within the cap are then run at their defaults. The others are reported as *extrapolated*
(marked ~), with the peak memory of the larger probe (epochs add little memory). TabDDPM's sampling
time is scaled by the diffusion steps (the probes run a shortened chain, see 04b_synthcity).
"""
from __future__ import annotations
import argparse, csv, datetime, json, os, subprocess, sys, time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "measured" / "generators.csv"
COLUMNS = [
    "model",
    "dataset",
    "n_train",
    "budget",
    "threads",
    "seed",
    "cpus",
    "how",
    "fit_s",
    "sample_s",
    "peak_rss_mb",
    "fit_rss_mb",
    "probe_fit_s",
    "date",
    "command",
    "note",
]


def run_one(model: str, dataset: str, budget: float, threads: int, seed: int) -> dict:
    import resource, psutil, torch
    torch.set_num_threads(threads)
    from synthtrial.data import load_split
    from synthtrial.generators import make_generator
    train, _, schema = load_split(dataset)
    gen = make_generator(model, budget=budget)
    if "synthcity" in type(gen).requires:
        from synthtrial.synthcity_models import load_synthcity
        load_synthcity()                                   # import cost is not fit cost
    rss0 = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    gen.fit(train, schema, seed=seed)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    syn = gen.sample(len(train), seed=seed + 1)
    sample_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024        # KiB on Linux
    steps = getattr(gen, "timesteps", None)
    return {"model": model, "dataset": dataset, "n_train": len(train), "budget": budget, "threads": threads,
            "epoch_like": bool(type(gen).epoch_params), "timesteps": steps,
            "fit_s": round(fit_s, 2), "sample_s": round(sample_s, 2), "peak_rss_mb": round(peak),
            "fit_rss_mb": round(peak - rss0), "rows_out": len(syn)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--models", default=None, help="comma-separated registry names (default: every available model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per model")
    ap.add_argument(
        "--cap", type=float, default=0, help="seconds: extrapolate defaults predicted to fit longer (0 = always run)"
    )
    ap.add_argument("--probes", default="0.01,0.03", help="two reduced budgets for the extrapolation")
    ap.add_argument("--json", default=None)
    ap.add_argument("--out", default=str(OUT), help="CSV the notebook reads ('' = do not write)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print("RESULT " + json.dumps(run_one(a.one, a.dataset, a.budget, a.threads, a.seed)))
        return
    from synthtrial.data import DATASETS
    from synthtrial.generators import available_generators
    dataset = a.dataset or ("aml_sal" if "aml_sal" in DATASETS else "myeloid")
    if a.dataset is None and dataset != "aml_sal":
        print("note: aml_sal is not registered; using myeloid", file=sys.stderr)
    status = available_generators()
    models = a.models.split(",") if a.models else [m for m, s in status.items() if s == "ok"]
    def one(m, budget):
        cmd = [sys.executable, __file__, "--one", m, "--dataset", dataset, "--budget", str(budget),
               "--threads", str(a.threads), "--seed", str(a.seed)]
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(a.threads)}
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
            res = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            r = (
                json.loads(res[-1][7:])
                if res
                else {"model": m, "error": (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
            )
        except subprocess.TimeoutExpired:
            r = {"model": m, "error": f"timeout after {a.timeout} s"}
        print(json.dumps(r), file=sys.stderr, flush=True)
        return r
    b1, b2 = (float(x) for x in a.probes.split(","))
    rows = []
    for m in models:
        if status.get(m) != "ok":
            rows.append({"model": m, "error": status.get(m, "unknown model")}); continue
        if a.cap and a.budget == 1.0:
            p1 = one(m, b1)
            if "error" in p1 or not p1["epoch_like"]:        # no epochs: the probe *is* the default run
                rows.append({**p1, "how": "measured"} if "error" not in p1 else p1); continue
            p2 = one(m, b2)
            if "error" in p2: rows.append(p2); continue
            slope = (p2["fit_s"] - p1["fit_s"]) / (b2 - b1)
            pred_fit = max(p2["fit_s"], p1["fit_s"] + slope * (1.0 - b1))
            T = p2.get("timesteps")
            pred_sample = p2["sample_s"] * (1000 / T) if T else p2["sample_s"]   # TabDDPM: chain of 1000 at defaults
            if pred_fit + pred_sample <= a.cap:
                r = one(m, 1.0); rows.append({**r, "how": "measured", "predicted_fit_s": round(pred_fit, 1)})
            else:
                rows.append(
                    {
                        **p2,
                        "budget": 1.0,
                        "fit_s": round(pred_fit, 1),
                        "sample_s": round(pred_sample, 1),
                        "how": "extrapolated",
                        "probes": {str(b1): p1["fit_s"], str(b2): p2["fit_s"]},
                        "fit_rss_mb": p2["fit_rss_mb"],
                    }
                )
        else:
            r = one(m, a.budget); rows.append({**r, "how": "measured"} if "error" not in r else r)
    how = (
        f", defaults extrapolated from budgets {b1} and {b2} where predicted > {a.cap:.0f} s (~)"
        if a.cap and a.budget == 1.0
        else ""
    )
    print(f"\nFit time and peak memory, {dataset} train split, budget {a.budget}, torch threads {a.threads}, "
          f"seed {a.seed}{how}\n")
    print("| model | n_train | fit s | sample s | peak RSS MB | RSS added by fit MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t = "~" if r.get("how") == "extrapolated" else ""
        if "error" in r:
            print(f"| {r['model']} | | failed: {r['error']} | | | |")
        else:
            print(f"| {r['model']} | {r['n_train']} | {t}{r['fit_s']} | {t}{r['sample_s']} | "
                  f"{t}{r['peak_rss_mb']} | {t}{r['fit_rss_mb']} |")
    if a.json:
        with open(a.json, "w") as f: json.dump(rows, f, indent=1)
    if a.out:
        write_csv(
            rows,
            Path(a.out),
            command=" ".join(["python bench/bench_generators.py", *(argv or sys.argv[1:])]),
            seed=a.seed,
        )


def write_csv(rows: list[dict], path: Path, command: str, seed: int) -> None:
    "Replace the rows of the measured models in `path` (other models' rows stay), each with its command and date."
    old = list(csv.DictReader(path.open())) if path.exists() else []
    done = {r["model"] for r in rows}
    stamp = {"command": command, "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
             "cpus": os.cpu_count(), "seed": seed}
    new = []
    for r in rows:
        probes = ";".join(f"{b}:{t}" for b, t in r.get("probes", {}).items())
        note = r.get("error", "")
        new.append({**{k: r.get(k, "") for k in COLUMNS}, **stamp, "probe_fit_s": probes, "note": note,
                    "how": r.get("how", "failed")})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader(); w.writerows([r for r in old if r["model"] not in done] + new)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
