"""The evidence profile's committed record (make evidence, config/evidence.yaml).

  python tools/evidence_record.py record CONFIG    after a chunk: make the record committable
  python tools/evidence_record.py restore CONFIG   before a chunk: put back what the record keeps outside the sweep

CONFIG is a sweep config, or several joined by "+" and read in order, later ones overriding (as Snakemake reads
`--configfile a.yaml b.yaml`), e.g. config/evidence.yaml+config/evidence_myeloid.yaml.

`record` (1) rewrites the project folder's absolute path to a relative one in the text files of the sweep's results
and figures folders (run records and studies name their folders; a committed file must not name this machine's
folders, see tools/check_paths.py), keeping each file's modification time so that Snakemake's view of what is up to
date does not change; (2) copies the tuned utility-model parameters of the config's datasets (a cache outside the
sweep folder, read by every HPO and evaluation job) into the sweep folder, so a fresh clone does not tune them again.
`restore` copies those parameters back where the jobs look for them, if they are missing there.
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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "restore"):
        sys.exit(__doc__)
    {"record": record, "restore": restore}[sys.argv[1]](sys.argv[2])
