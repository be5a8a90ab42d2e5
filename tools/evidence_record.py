"""The evidence profile's committed record (make evidence, config/evidence.yaml).

  python tools/evidence_record.py record CONFIG    after a chunk: make the record committable
  python tools/evidence_record.py restore CONFIG   before a chunk: put back what the record keeps outside the sweep
  python tools/evidence_record.py cohorts CONFIG   before a chunk: refit the synthetic cohorts a fresh clone lacks

CONFIG is a sweep config, or several joined by "+" and read in order, later ones overriding (as Snakemake reads
`--configfile a.yaml b.yaml`), e.g. config/evidence.yaml+config/evidence_myeloid.yaml.

`record` (1) rewrites the project folder's absolute path to a relative one in the text files of the sweep's results
and figures folders (run records and studies name their folders; a committed file must not name this machine's
folders, see tools/check_paths.py), keeping each file's modification time so that Snakemake's view of what is up to
date does not change; (2) copies the tuned utility-model parameters of the config's datasets (a cache outside the
sweep folder, read by every HPO and evaluation job) into the sweep folder, so a fresh clone does not tune them again.
`restore` copies those parameters back where the jobs look for them, if they are missing there.
`cohorts` writes again each synthetic cohort an evaluation wrote (its `synthetic_<config>.gate.json` is committed) but
a fresh clone lacks (the cohorts are not committed): the adaptation jobs and the review read them. A cohort is the
evaluation's first fit and sample (its first training and sampling seed, parameters, budget and enforcement, all in
the configuration's committed provenance), so fitting that again gives the same rows: the privacy gate's report of the
refit is compared with the committed one, and a cohort whose report differs is not written (its reason goes to
`synthetic_<config>.error.txt`, which the follow-ups read as "no cohort"), so a follow-up never analyses rows other
than those the evaluation scored. Two processes (one thread each, as the sweep's jobs); each cohort is written in
place when done, so an interrupted run loses only the fits in progress.
"""
import os, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = {".json", ".csv", ".md", ".txt", ".html", ".tex", ".yaml", ".log", ".ipynb"}   # .ipynb: executed notebooks


def _config(path: str) -> dict:
    "The config, or the configs joined by '+' merged in order (later keys override)."
    import yaml
    out = {}
    for part in path.split("+"): out.update(yaml.safe_load(Path(part).read_text()) or {})
    return out


def _folders(cfg: dict) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from synthtrial.core import results_dir, figures_dir
    return results_dir() / "sweep" / cfg["name"], figures_dir() / cfg["name"]


def _prefixes(root: Path) -> dict[str, str]:
    "Machine folders a record may name, and what they become: the project folder, and a virtual environment outside it."
    out = {f"{root}/": ""}
    venv = Path(sys.prefix).resolve()
    if root not in venv.parents: out[f"{venv}/"] = ".venv/"   # warnings name library files: as in a clone's own .venv
    return out


def relativise(folder: Path, root: Path = ROOT) -> int:
    "Make the machine folders relative in every text file under `folder` (mtime kept); the number of files changed."
    prefixes, n = _prefixes(root), 0
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.suffix not in TEXT: continue
        try: text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError: continue
        if not any(k in text for k in prefixes): continue
        st = p.stat()
        tmp = p.with_name(f".{p.name}.relativise.tmp")
        for k, v in prefixes.items(): text = text.replace(k, v)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        n += 1
    return n


def _utility_files(cfg: dict, cache: Path) -> list[Path]:
    "The cache files of the config's datasets tuned with the config's number of trials (other sweeps' stay out)."
    import json
    def ours(p):
        try: return json.loads(p.read_text()).get("key", {}).get("n_trials") == cfg["utility_trials"]
        except (ValueError, AttributeError): return False
    return sorted(p for ds in cfg["datasets"] for p in cache.glob(f"{Path(str(ds)).stem}_*.json") if ours(p))


def record(config: str) -> None:
    cfg = _config(config)
    sweep, figs = _folders(cfg)
    from synthtrial.core import results_dir
    keep = sweep / "utility_params"
    files = _utility_files(cfg, results_dir() / "utility_params")
    if files: keep.mkdir(parents=True, exist_ok=True)
    for p in files: shutil.copy2(p, keep / p.name)
    n = sum(relativise(f) for f in (sweep, figs) if f.is_dir())
    print(
        f"evidence record: {n} file(s) made relative to the project folder; {len(files)} utility parameter file(s) kept"
    )


def restore(config: str) -> None:
    cfg = _config(config)
    sweep, _ = _folders(cfg)
    from synthtrial.core import results_dir
    cache = results_dir() / "utility_params"
    n = 0
    for p in sorted((sweep / "utility_params").glob("*.json")):
        if (cache / p.name).exists(): continue
        cache.mkdir(parents=True, exist_ok=True); shutil.copy2(p, cache / p.name); n += 1
    if n: print(f"evidence: {n} tuned utility parameter file(s) restored from the record")


def missing_cohorts(config: str) -> list[tuple[Path, str]]:
    "(evaluation folder, config) of every cohort the record's gate reports name but this checkout lacks."
    cfg = _config(config)
    sweep, _ = _folders(cfg)
    out = []
    for gate in sorted(sweep.glob("eval/*/*/synthetic_*.gate.json")):
        name = gate.name[len("synthetic_"):-len(".gate.json")]
        if not any((gate.parent / f"synthetic_{name}{s}").is_file() for s in (".csv", ".error.txt")):
            out.append((gate.parent, name))
    return out


def _provenance(folder: Path, name: str) -> dict:
    "The committed provenance of evaluation `folder`'s configuration `name` (exactly one)."
    import json
    found = sorted((folder / "configs").glob(f"{name}_*.provenance.json"))
    if len(found) != 1:
        raise SystemExit(f"evidence cohorts: {folder}/configs holds {len(found)} provenance files of {name!r}, not 1")
    return json.loads(found[0].read_text())["params"]


def refit_cohort(folder: str, name: str) -> str:
    "Fit and sample `name`'s cohort again as its evaluation did; write it if its gate report equals the committed one."
    import json
    from synthtrial.constraints import rules_for
    from synthtrial.core import write_csv, _jsonable
    from synthtrial.data import load_split
    from synthtrial.gate import privacy_gate
    from synthtrial.pipeline import SynthesisPipeline, resolve_strategies
    folder = Path(folder)
    p = _provenance(folder, name)
    train, test, schema = load_split(p["dataset"])
    pipe = SynthesisPipeline(p["model"], rules_for(p["dataset"], schema), resolve_strategies(p["enforcement"]),
                             params=p["params"], budget=p["budget"])
    syn = pipe.fit(train, schema, seed=p["train_seeds"][0]).sample(len(train), seed=p["sample_seeds"][0])
    path = folder / f"synthetic_{name}.csv"
    committed = json.loads(path.with_name(path.stem + ".gate.json").read_text())
    try: now = privacy_gate(syn, train, test, schema, what=path.name)
    except Exception as e: now = {"passed": False, "error": str(e), "cohort": path.name}   # write_cohort's report
    now = json.loads(json.dumps(now, default=_jsonable))  # the committed report as write_json wrote it
    if now != committed:
        keys = sorted(set(committed) | set(now))
        diff = {k: (committed.get(k), now.get(k)) for k in keys if committed.get(k) != now.get(k)}
        (folder / f"synthetic_{name}.error.txt").write_text(
            f"RefitMismatch: refitting this cohort for the evidence record gave other rows than the evaluation's "
            f"(gate report committed vs refit: {diff}); not written\n")
        return f"{folder}/{name}: refit differs from the evaluation's cohort {diff}: not written"
    write_csv(syn, path)
    return f"{folder}/{name}: written (gate report identical)"


def cohorts(config: str, workers: int = 2) -> None:
    todo = missing_cohorts(config)
    if not todo: return
    print(f"evidence: refitting {len(todo)} synthetic cohort(s) the record names but this checkout lacks", flush=True)
    os.environ["OMP_NUM_THREADS"] = "1"     # before a worker imports torch: one thread each, as the sweep's jobs
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    bad = 0
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(refit_cohort, str(f), n) for f, n in todo]
        for i, fut in enumerate(as_completed(futs), 1):
            msg = fut.result()
            bad += "not written" in msg
            print(f"  [{i}/{len(todo)}] {msg}", flush=True)
    if bad: print(f"evidence: {bad} cohort(s) could not be reproduced; their follow-ups record them as missing")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "restore", "cohorts"):
        sys.exit(__doc__)
    {"record": record, "restore": restore, "cohorts": cohorts}[sys.argv[1]](sys.argv[2])
