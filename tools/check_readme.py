"""README.md is generated from nbs/index.ipynb (nbdev's `nbdev_readme` needs Quarto, which cannot be
installed offline). Markdown cells are copied; code cells become ```python blocks; cells starting with
`#| hide` are left out; outputs are not copied, so README.md is deterministic.
  python tools/check_readme.py          exit 1 if README.md is stale
  python tools/check_readme.py --write  rewrite README.md"""
import sys, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("<!-- generated from nbs/index.ipynb by tools/check_readme.py (make readme): "
          "edit the notebook, not this file -->\n\n")

def render() -> str:
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"]).strip("\n")
        if not src or src.lstrip().startswith("#| hide"): continue
        parts.append(src if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
    return HEADER + "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--write" in sys.argv:
        readme.write_text(text); print(f"wrote {readme}")
    elif not readme.is_file() or readme.read_text() != text:
        sys.exit("error: README.md is stale; run `make readme` (it is generated from nbs/index.ipynb)")
    else:
        print("README.md matches nbs/index.ipynb")
