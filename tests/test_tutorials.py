"""The tutorials in nbs/tutorials/: their structure (fast) and a full papermill run of each (slow, `--slow`)."""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest

ROOT = Path(__file__).resolve().parents[1]
TUT = ROOT / "nbs" / "tutorials"
DATA = TUT / "data"
TUTORIALS = ["01_first_synthetic_trial", "02_constraints_lab", "03_hpo_lab", "04_bring_your_own_trial"]
MIN_FIGURES = {"01_first_synthetic_trial": 3, "02_constraints_lab": 3, "03_hpo_lab": 2, "04_bring_your_own_trial": 1}

def _nb(path: Path) -> dict: return json.loads(Path(path).read_text())
def _src(cell) -> str: return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def _exercises(cells) -> tuple[int, list[str]]:
    "Index of the '## Exercises' cell and the text of each '### Exercise N' after it."
    idx = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and re.search(r"^## Exercises\s*$", _src(c), re.M)
    ]
    assert len(idx) == 1, f"expected one '## Exercises' heading, found {len(idx)}"
    text = "\n".join(_src(c) for c in cells[idx[0]:])
    return idx[0], re.split(r"^### Exercise \d+\s*$", text, flags=re.M)[1:]

def test_the_four_tutorials_and_their_data_are_there():
    assert sorted(p.stem for p in TUT.glob("*.ipynb")) == TUTORIALS
    for f in ["gbsg2_trial.csv", "gbsg2_schema.yaml", "gbsg2_rules.yaml", "README.md"]:
        assert (DATA / f).stat().st_size > 0, f

@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_structure(name):
    cells = _nb(TUT / f"{name}.ipynb")["cells"]
    # a title and a one-line summary, like every notebook of the project
    first = _src(cells[0]).splitlines()
    assert cells[0]["cell_type"] == "markdown" and first[0].startswith("# ") and len(first[0]) > 5
    assert any(l.startswith("> ") and len(l) > 20 for l in first), "no '> one-line summary' in the first cell"
    # not a library notebook: nothing exported, committed without outputs (nbdev_clean)
    for c in cells:
        if c["cell_type"] != "code": continue
        s = _src(c)
        assert not re.search(r"^#\|\s*(export|exports|exporti|default_exp)\b", s, re.M), (
            f"library directive in {name}: {s[:80]!r}"
        )
        assert "nbdev_export" not in s
        assert c.get("outputs", []) == [] and c.get("execution_count") is None, f"{name} has outputs; run nbdev_clean"
    # an essay: prose between code cells
    i_ex, exercises = _exercises(cells)
    body = cells[:i_ex]
    assert sum(c["cell_type"] == "markdown" for c in body) >= 5 and sum(c["cell_type"] == "code" for c in body) >= 5
    # it ends with 2-4 exercises, each followed by a collapsible solution holding code, shown as text only
    assert all(c["cell_type"] == "markdown" for c in cells[i_ex:]), "solutions must be markdown, not executed cells"
    assert 2 <= len(exercises) <= 4, f"{name}: {len(exercises)} exercises"
    nums = [int(m) for m in re.findall(r"^### Exercise (\d+)", "\n".join(_src(c) for c in cells[i_ex:]), re.M)]
    assert nums == list(range(1, len(exercises) + 1))
    for k, ex in enumerate(exercises, 1):
        q, sep, sol = ex.partition("<details><summary>Solution</summary>")
        assert sep and len(q.strip()) > 20, (
            f"{name} exercise {k}: no question or no <details><summary>Solution</summary>"
        )
        assert "</details>" in sol and re.search(r"```python\n.+?```", sol.split("</details>")[0], re.S), (
            f"{name} exercise {k}: solution has no code block"
        )

@pytest.mark.parametrize("name", TUTORIALS)
def test_every_fit_and_sample_call_gets_a_seed(name):
    "Every random step takes a seed: in the code cells and in the solutions."
    cells = _nb(TUT / f"{name}.ipynb")["cells"]
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    code += "\n".join(
        re.findall(r"```python\n(.*?)```", "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown"), re.S)
    )
    calls = re.findall(r"\.(?:fit|sample)\(((?:[^()]|\([^()]*\))*)\)", code)
    assert calls, "no fit/sample call found"
    unseeded = [c for c in calls if "seed" not in c]
    assert not unseeded, f"{name}: fit/sample without a seed: {unseeded}"

def test_tutorial_data_files_load_and_obey_their_rules():
    from synthtrial.core import SynthtrialError
    from synthtrial.data import dataset_from_files
    from synthtrial.constraints import RuleSet
    ds = dataset_from_files(DATA / "gbsg2_trial.csv", DATA / "gbsg2_schema.yaml", register=False)
    df = ds.load()
    assert len(df) == len(pd.read_csv(DATA / "gbsg2_trial.csv")) and list(df.columns) == ds.schema.names
    assert [e.name for e in ds.schema.endpoints] == ["OS", "RFS"] and ds.schema.targets
    rules = RuleSet.from_yaml(DATA / "gbsg2_rules.yaml", schema=ds.schema)
    assert rules["rfs_le_os"].spec["reparam"] and rules.violation_report(df).n_invalid_enforced == 0
    # the kind of error tutorial 4 shows
    with pytest.raises(SynthtrialError, match=r"missing columns \[.tumour_size.\]"):
        ds.schema.validate(df.rename(columns={"tumour_size": "tumor_size"}))

def _execute(name: str, tmp_path: Path) -> tuple[dict, float]:
    """Run a tutorial with papermill in its own process (cwd = nbs/tutorials, outputs to tmp_path); returns the
    executed notebook and its wall time."""
    out = tmp_path / f"{name}.ipynb"
    # PATH: kernel = this venv's python
    env = {**os.environ, "SYNTHTRIAL_RESULTS": str(tmp_path / "results"),
           "SYNTHTRIAL_FIGURES": str(tmp_path / "figures"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    before = sorted(p.relative_to(TUT) for p in TUT.rglob("*"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "papermill", str(TUT / f"{name}.ipynb"), str(out), "-k", "python3",
                           "--cwd", str(TUT), "--no-progress-bar", "--execution-timeout", "600"],
                          env=env, capture_output=True, text=True, timeout=900)
    secs = time.perf_counter() - t0
    print(f"\n{name}: {secs:.1f} s")
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"
    assert sorted(p.relative_to(TUT) for p in TUT.rglob("*")) == before, f"{name} wrote files into nbs/tutorials"
    return _nb(out), secs

@pytest.mark.slow
@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs_top_to_bottom(name, tmp_path):
    nb, secs = _execute(name, tmp_path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "a code cell was not executed"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors[0]["ename"] + ": " + errors[0]["evalue"]
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert figures >= MIN_FIGURES[name], f"{name}: {figures} figures rendered"
    _exercises(nb["cells"])   # the exercises survive execution
    assert secs < 600, f"{name} took {secs:.0f} s"
    if name == "04_bring_your_own_trial":
        from synthtrial.schema import schema_from_yaml
        from synthtrial.constraints import RuleSet
        csv = tmp_path / "results" / "tutorials" / "gbsg2_synthetic.csv"
        syn = pd.read_csv(csv)
        schema = schema_from_yaml(DATA / "gbsg2_schema.yaml")
        syn = schema.validate(syn, what=str(csv))
        assert len(syn) > 0 and syn["patient"].str.startswith("SYN").all()
        assert RuleSet.from_yaml(DATA / "gbsg2_rules.yaml", schema=schema).violation_report(syn).n_invalid_enforced == 0
        rec = json.loads((csv.with_suffix(".json")).read_text())
        assert rec["n_rows"] == len(syn) and rec["params"]["fit_seed"] == 0
