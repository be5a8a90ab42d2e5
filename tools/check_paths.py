"""No tracked file may name a machine's own folders: an absolute home/work path, or the reference folder that
lies beside CI's clone only. Data is found through the library's resolution (`SYNTHTRIAL_*` variables, `cache_dir()`,
the checksum-verified download), so a test passes on a fresh clone with nothing beside it.
`.ci/` is exempt: it is the one place that knows where CI's copy of the reference data lies.
  python tools/check_paths.py           exit 1 and list every offending line
  python tools/check_paths.py FILE...   check these files only (used by the self-test)"""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXEMPT = (".ci/",)
# The patterns are assembled from pieces so that this file does not name what it forbids.
_ABS = (
    r"(?<![\w.~-])/(?:" + "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me", "Us" + "ers", "m" + "nt"]) + r")/[A-Za-z_]"
)
_WIN = r"[A-Za-z]:\\\\?(?:Users|home)\\"
_SHARED = r"\.\./" + "sha" + r"red\b|['\"]" + "sha" + r"red['\"]\s*/\s*['\"]data['\"]"
PATTERNS = {"absolute machine path": re.compile(_ABS), "Windows user folder": re.compile(_WIN),
            "the reference folder beside CI's clone": re.compile(_SHARED)}

def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / f for f in out.decode().split("\0") if f and not f.startswith(EXEMPT)]

def offending_lines(path: Path) -> list[str]:
    "`path:line: what: text` for every line of a text file that names a machine path."
    try: text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError): return []   # binary, or deleted in the worktree
    hits = []
    for i, line in enumerate(text.splitlines(), 1):
        for what, pat in PATTERNS.items():
            if pat.search(line):
                rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                hits.append(f"{rel}:{i}: {what}: {line.strip()[:160]}")
    return hits

if __name__ == "__main__":
    files = [Path(a).resolve() for a in sys.argv[1:]] or tracked_files()
    bad = [h for f in files for h in offending_lines(f)]
    if bad:
        print("error: tracked files name machine paths (find data through SYNTHTRIAL_* / cache_dir(), not a folder):")
        print("\n".join(bad)); sys.exit(1)
    print(f"check-paths: {len(files)} files, no machine paths")
