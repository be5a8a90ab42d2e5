"""README.md is generated from nbs/index.ipynb (nbdev's `nbdev_readme` needs Quarto, which cannot be
installed offline). Markdown cells are copied; code cells become ```python blocks; cells starting with
`#| hide` are left out; outputs are not copied, so README.md is deterministic.

Two directives in a markdown cell bring the committed evidence record into the README (and are kept, as HTML
comments, in front of what they produce), so the README changes exactly when the record does:
  <!-- findings: FOLDER [FOLDER ...] -->   the findings table of each figure folder (tables/published_comparison.csv),
                                           one row per trial x published finding about a model in that sweep; a
                                           sentence when none exists yet
  <!-- figure: PATH.png -->               the figure with the caption of its JSON sidecar; nothing when absent

  python tools/check_readme.py          exit 1 if README.md is stale
  python tools/check_readme.py --write  rewrite README.md"""
import csv, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("<!-- generated from nbs/index.ipynb by tools/check_readme.py (make readme): "
          "edit the notebook, not this file -->\n\n")
FINDINGS = re.compile(r"^<!-- findings: (.+?) -->$", re.M)
FIGURE = re.compile(r"^<!-- figure: (\S+) -->$", re.M)
NO_RECORD = "_The evidence record has no findings table yet: `make evidence` writes it._"


def findings_table(folders: list[str], root: Path = ROOT) -> str:
    "A compact Markdown table of the findings tables under `folders` (trial, finding, published, ours, verdict)."
    rows = []
    for folder in folders:
        path = root / folder / "tables" / "published_comparison.csv"
        if not path.is_file(): continue
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r.get("reason", "").endswith("is not in this sweep"): continue    # e.g. CTAB-GAN+ on the 2nd trial
                rows.append([f"{r['dataset']} ({Path(folder).name})", r["finding"], r["published"],
                             r.get("ours") or "–", f"**{r['verdict']}**"])
    if not rows: return NO_RECORD
    head = ["trial (sweep)", "published finding", "published", "this compendium (95 % interval)", "verdict"]
    cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows])


def figure(path: str, root: Path = ROOT) -> str:
    "The figure as Markdown with its sidecar's caption, or nothing when the record has no such figure."
    png = root / path
    if not png.is_file(): return ""
    side = png.with_suffix(".json")
    caption = json.loads(side.read_text())["caption"] if side.is_file() else png.stem
    return f"![{png.stem}]({path})\n\n*{caption}*"


def expand(text: str, root: Path = ROOT) -> str:
    "Each directive kept, followed by what it produces from the record."
    text = FINDINGS.sub(lambda m: m.group(0) + "\n\n" + findings_table(m.group(1).split(), root), text)
    return FIGURE.sub(lambda m: (m.group(0) + "\n\n" + figure(m.group(1), root)).rstrip(), text)


def render(root: Path = ROOT) -> str:
    nb = json.loads((root / "nbs" / "index.ipynb").read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"]).strip("\n")
        if not src or src.lstrip().startswith("#| hide"): continue
        parts.append(expand(src, root) if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--write" in sys.argv:
        readme.write_text(text); print(f"wrote {readme}")
    elif not readme.is_file() or readme.read_text() != text:
        sys.exit("error: README.md is stale; run `make readme` (it is generated from nbs/index.ipynb)")
    else:
        print("README.md matches nbs/index.ipynb")
