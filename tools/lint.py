"""The 120-column limit (make test): `ruff check` (settings in .ruff.toml) over synthtrial/, tests/, bench/, tools/.

One exception, which ruff cannot express: nbdev_export writes each module's `__all__` itself (pprint at 160 columns
when it updates a module) under `# %% auto 0`, and rewrites it on every export, so those generated lines are left
out. Everything else over 120 columns fails, printed as ruff prints it.
  python tools/lint.py [PATH ...]"""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
PATHS = ["synthtrial", "tests", "bench", "tools"]


def nbdev_all_lines(path: Path) -> set[int]:
    "Line numbers (1-based) of the `__all__` assignment nbdev writes after `# %% auto 0`."
    lines, out = path.read_text(encoding="utf-8").splitlines(), set()
    for i, line in enumerate(lines):
        if line.strip() == "# %% auto 0" and i + 1 < len(lines) and lines[i + 1].startswith("__all__ = ["):
            j = i + 1
            while j < len(lines):
                out.add(j + 1)
                if lines[j].rstrip().endswith("]"): break
                j += 1
    return out


def main(paths: list[str]) -> int:
    r = subprocess.run([str(RUFF), "check", "--output-format", "json", *paths],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 1): sys.stderr.write(r.stderr); return r.returncode
    found = [d for d in json.loads(r.stdout or "[]")
             if not (d["code"] == "E501" and d["location"]["row"] in nbdev_all_lines(Path(d["filename"])))]
    for d in found:
        rel = Path(d["filename"]).relative_to(ROOT)
        print(f"{rel}:{d['location']['row']}:{d['location']['column']}: {d['code']} {d['message']}")
    print(f"lint: {len(found)} line(s) over the limit" if found else "lint: every line within 120 columns")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or PATHS))
