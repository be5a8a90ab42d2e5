"""The walking skeleton end to end: papermill run, run record, figure, determinism, bad parameters."""
import json, os, subprocess, sys
import nbformat, pandas as pd, pytest
from synthtrial.data import load_split
from synthtrial.generators import make_generator
from synthtrial.runs import run_notebook, RunFailed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def test_same_seed_same_rows_and_different_seed_differs():
    train, _, schema = load_split("myeloid")
    a = make_generator("gaussian_copula").fit(train, schema, seed=3).sample(300, seed=4)
    b = make_generator("gaussian_copula").fit(train, schema, seed=3).sample(300, seed=4)
    c = make_generator("gaussian_copula").fit(train, schema, seed=3).sample(300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    schema.validate(a)  # synthetic rows fit the schema

def test_skeleton_runs_through_papermill_and_keeps_the_record(isolated_outputs):
    params = {"dataset": "myeloid", "model": "gaussian_copula", "seed": 0, "n_rows": 120, "budget": 1.0}
    run_dir = run_notebook("skeleton", params, progress=False)
    nb = nbformat.read(run_dir / "skeleton.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n_rows = 120" in injected[0].source
    assert all(c.get("outputs") is not None for c in nb.cells if c.cell_type == "code")
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "ok" and rec["params"] == params and rec["packages"]["sdv"]
    assert len(pd.read_csv(run_dir / "synthetic.csv")) == 120
    scores = json.loads((run_dir / "metrics.json").read_text())["scores"]
    assert 0 < scores["survival_auc_abs_opt"] <= 1
    fig = isolated_outputs / "figures" / "skeleton_km_myeloid_gaussian_copula"
    for ext in (".png", ".pdf", ".json"): assert fig.with_suffix(ext).stat().st_size > 0
    side = json.loads(fig.with_suffix(".json").read_text())
    assert side["producer"] == "nbs/experiments/skeleton.ipynb" and side["params"]["seed"] == 0

def test_a_bad_parameter_inside_the_notebook_is_reported_in_one_line(isolated_outputs):
    with pytest.raises(RunFailed, match=r"ParameterError: model='nope' is not allowed; choose one of: .*'tvae'"):
        run_notebook("skeleton", {"model": "nope"}, progress=False)

@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--dataset", "mieloid"],
            "dataset='mieloid' is not allowed; choose one of: "
            "'actg320', 'aml_sal', 'aml_sal_nflow', 'colon', 'gbsg2', 'myeloid'",
        ),
        (["--model", "gan"], "model='gan' is not allowed; choose one of: "),
        (["--n-rows", "0"], "n_rows=0 is not allowed; it must be a whole number > 0"),
        (["--n-rows", "-5"], "n_rows=-5 is not allowed"),
    ],
)
def test_cli_rejects_bad_parameters_with_one_line(args, message, isolated_outputs):
    r = subprocess.run([sys.executable, "-m", "synthtrial", "skeleton", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert message in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    if "--model" in args: assert "'gaussian_copula'" in r.stderr and "'tvae'" in r.stderr

def test_doctor_prints_versions_and_gpu():
    r = subprocess.run(
        [sys.executable, "-m", "synthtrial", "doctor"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "numpy" in r.stdout and "GPU:" in r.stdout and "optional parts missing" in r.stdout

@pytest.mark.parametrize("nb", sorted(f"{p.parent.name}/{p.name}" for d in ("experiments", "figures")
                                     for p in __import__("pathlib").Path(ROOT, "nbs", d).glob("*.ipynb")))
def test_papermill_reads_every_parameter_of_the_parameterised_notebooks(nb):
    # papermill parses the parameters cell line by line; a comment holding "=" hides a parameter from it
    # ("Unable to parse line", then "Passed unknown parameter" on every run that sets it)
    import ast, papermill
    path = os.path.join(ROOT, "nbs", nb)
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = {t.id for node in ast.parse(cell.source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert assigned and set(papermill.inspect_notebook(path)) == assigned
