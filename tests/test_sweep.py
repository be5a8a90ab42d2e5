"""The reproduction sweep: config validation, Snakemake dry runs (local and SLURM profile), the planned figures and
tables, and a reduced sweep end to end."""
import json, os, re, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
from synthtrial.core import ParameterError
from synthtrial.sweep import validate_config, load_config
from synthtrial.figures import planned_files, declared

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDUCED = [
    "--config",
    "models=[gaussian_copula,tvae]",
    "objectives=[compound,fidelity]",
    "datasets=[myeloid]",
    "name=reduced",
]

def snake(args, tmp, timeout=600):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNTHTRIAL_RESULTS": str(tmp / "results"), "SYNTHTRIAL_FIGURES": str(tmp / "figures")}
    return subprocess.run(
        [str(BIN / "snakemake"), "--scheduler", "greedy", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

def job_counts(out: str) -> dict:
    "The `job  count` table of a Snakemake (dry) run."
    m = re.search(r"job\s+count\n[-\s]+\n(.*?)\ntotal\s+(\d+)", out, re.S)
    assert m, f"no job table in:\n{out[-2000:]}"
    return {l.split()[0]: int(l.split()[1]) for l in m.group(1).splitlines() if l.strip()}

def dry_jobs(out: str) -> list[dict]:
    "Each job of a Snakemake dry run: its rule, input files and output files."
    jobs = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", out, re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", m.group(2), re.M))
        jobs.append(
            {
                "rule": m.group(1),
                "input": fields.get("input", "").split(", "),
                "output": fields.get("output", "").split(", "),
            }
        )
    return jobs

@pytest.fixture(scope="module")
def quick_dry(tmp_path_factory):
    "The quick profile's dry run (stdout) and its temporary results root."
    tmp = tmp_path_factory.mktemp("quick_dry")
    r = snake(["-n", "--cores", "2", "--configfile", "config/quick.yaml"], tmp, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, tmp

def test_validate_config_names_the_problem():
    good = {"datasets": ["myeloid"], "models": ["tvae"], "objectives": ["compound"]}
    assert validate_config(good)["n_trials"] > 0
    for key, bad, msg in (("models", ["tvae", "ctgn"], r"unknown models \['ctgn'\]"),
                          ("datasets", ["myloid"], r"unknown datasets \['myloid'\]"),
                          ("objectives", ["speed"], r"unknown objectives \['speed'\]"),
                          ("violation_strategies", ["magic"], r"unknown enforcement strategies \['magic'\]")):
        with pytest.raises(ParameterError, match=msg): validate_config({**good, key: bad})
    with pytest.raises(ParameterError, match="profile"): validate_config({**good, "profile": "huge"})
    with pytest.raises(ParameterError, match="storage"): validate_config({**good, "storage": "my.db"})
    with pytest.raises(ParameterError, match="budget"): validate_config({**good, "budget": 2})
    assert validate_config({**good, "storage": "postgresql://db/optuna"})["storage"] == "postgresql://db/optuna"

def test_missing_offline_dataset_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTRIAL_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.delenv("SYNTHTRIAL_AML_SAL_DIR", raising=False)
    cfg = {"datasets": ["myeloid", "aml_sal"], "models": ["tvae"], "objectives": ["compound"]}
    with pytest.raises(ParameterError, match=r"dataset 'aml_sal' needs synthetic_aml_data_ctab.csv, which is not in "
                                             r"the offline cache"):
        validate_config(cfg)
    assert validate_config(cfg, check_data=False)["datasets"] == ["myeloid", "aml_sal"]

def test_shipped_configs_are_valid():
    for name in ("quick", "paper", "evidence"):
        cfg = load_config(ROOT / "config" / f"{name}.yaml", check_data=False)
        assert cfg["name"] == name and len(cfg["models"]) == 8 and len(cfg["objectives"]) == 4
    ev = load_config(ROOT / "config" / "evidence.yaml", check_data=False)   # the design: AML cohort, >= 3 x 2 seeds
    assert ev["datasets"] == ["aml_sal"] and ev["train_seeds"] == [0, 1, 2] and ev["sample_seeds"] == [0, 1]
    assert {"myeloid", "aml_sal"} <= set(load_config(ROOT / "config" / "quick.yaml", check_data=False)["datasets"])

def test_quick_dry_run_lists_every_job(quick_dry):
    out, tmp_path = quick_dry
    cfg = load_config(ROOT / "config" / "quick.yaml")
    nd, nm, no = len(cfg["datasets"]), len(cfg["models"]), len(cfg["objectives"])
    assert job_counts(out) == {
        "all": 1,
        "collect": 1,
        "evaluate": nd * nm,
        "figures": 1,
        "hpo": nd * nm,                       # hpo_jobs: per_model -- a job runs a model's four studies in turn
        "report": 1,
        "tables": 1,
        "violations": nd * nm,
        "utility": nd,
        "transfer": nd,
        "adapt": nd * nm,
        "adapt_controls": nd,
        "transfer_figures": 1,
        "adapt_figures": 1,
        "review": 1,
    }
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]   # a dry run writes nothing

def test_planned_figures_and_tables_are_the_registry(quick_dry):
    "Snakemake plans exactly the declared figures and tables, each in the rule that runs its one producer notebook."
    out, tmp = quick_dry
    F = tmp / "figures" / "quick"
    datasets = load_config(ROOT / "config" / "quick.yaml")["datasets"]
    jobs = [j for j in dry_jobs(out) if j["rule"] != "all"]
    made = {
        f for j in jobs for f in j["output"] if f.startswith(str(F)) and "/review/" not in f and not f.endswith(".html")
    }
    assert made == set(planned_files(F, datasets)), sorted(made ^ set(planned_files(F, datasets)))
    for producer in {o.producer for o in declared()}:
        runs = [j for j in jobs if producer in j["input"]]
        assert len(runs) == 1, (producer, [j["rule"] for j in runs])            # one rule runs each producer …
        assert set(planned_files(F, datasets, producer)) <= set(runs[0]["output"]), producer   # … and plans its outputs
    everything = {f for j in dry_jobs(out) if j["rule"] == "all" for f in j["input"]}
    assert set(planned_files(F, datasets)) <= everything                          # every output is a target of `all`

def test_bad_config_stops_before_any_job(tmp_path):
    r = snake(["-n", "--cores", "1", "--config", "models=[tvae,tvea]"], tmp_path, timeout=300)
    assert r.returncode != 0 and "unknown models ['tvea']" in r.stdout + r.stderr
    assert "rule hpo" not in r.stdout

def test_slurm_profile_dry_run(tmp_path):
    r = snake(["-n", "--profile", "config/slurm", "--configfile", "config/paper.yaml"], tmp_path, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    counts = job_counts(r.stdout)
    cfg = load_config(ROOT / "config" / "paper.yaml", check_data=False)
    assert counts["hpo"] == len(cfg["datasets"]) * len(cfg["models"]) * len(cfg["objectives"])   # per_objective
    # paper.yaml is read alone, not on top of the Snakefile's default quick.yaml: keys it leaves out are its profile's
    assert cfg["n_violation_rows"] is None and "n_rows='null'" in r.stdout and "n_rows='500'" not in r.stdout
    assert f"domain_seeds='{json.dumps(cfg['adapt']['domain_seeds'])}'" in r.stdout, r.stdout[-2000:]

def expected_outputs(tmp: Path) -> list[Path]:
    R, F = tmp / "results" / "sweep" / "reduced", tmp / "figures" / "reduced"
    out = [F / "index.html", R / "results.csv", R / "utility" / "myeloid.json"]
    for m in ("gaussian_copula", "tvae"):
        out += [R / "hpo" / "myeloid" / m / f for f in ("hpo.ipynb", "run.json")]   # one job ran both studies
        for o in ("compound", "fidelity"):
            d = R / "hpo" / "myeloid" / m / o
            out += [d / "study" / "best.json", d / "study" / "trials.csv", d / "study" / "study.journal"]
        out += [
            R / "eval" / "myeloid" / m / f
            for f in ("evaluate.ipynb", "run.json", "results.csv", "synthetic_default.csv")
        ]
        out += [R / "violations" / "myeloid" / m / f for f in ("violations.ipynb", "run.json", "violations.csv")]
    out += [R / "runs" / k / f"{k}.ipynb" for k in ("figures", "tables")]
    out += [
        R / "runs" / k / f"{nb}.ipynb"
        for k, nb in (("transfer_figures", "transfer"), ("adapt_figures", "adapt"), ("review", "review"))
    ]
    out += [
        R / "transfer" / "myeloid" / f
        for f in ("transfer.ipynb", "run.json", "grid.csv", "divergence.csv", "hyperparameters.csv", "status.csv")
    ]
    out += [
        R / "adapt" / "myeloid" / p / f
        for p in ("gaussian_copula", "tvae", "controls")
        for f in ("adapt.ipynb", "run.json", "adapt.csv")
    ]
    out += [F / "review" / f for f in ("review.md", "review.csv")]
    out += [Path(f) for f in planned_files(F, ["myeloid"])]          # every declared figure and table
    return out

@pytest.mark.slow
def test_reduced_sweep_end_to_end(tmp_path):
    t0 = time.time()
    r = snake(["--cores", "2", *REDUCED], tmp_path, timeout=3000)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    print(f"reduced sweep: {time.time() - t0:.0f} s")
    missing = [str(p) for p in expected_outputs(tmp_path) if not p.is_file() or p.stat().st_size == 0]
    assert not missing, missing
    R = tmp_path / "results" / "sweep" / "reduced"
    for rec in R.rglob("run.json"): assert json.loads(rec.read_text())["status"] == "ok", rec
    import pandas as pd
    res = pd.read_csv(R / "results.csv")
    assert set(res["model"]) == {"gaussian_copula", "tvae"} and {"default"} <= set(res["config"])
    assert res[res["metric"] == "compound"]["value"].notna().any()
    page = (tmp_path / "figures" / "reduced" / "index.html").read_text()
    assert "published_comparison" in page and "km_myeloid" in page and "figures.html" in page
    assert "transfer_regret" in page and "adaptation_myeloid" in page and "methods_review" in page
    # the follow-up runs analysed every cohort and both controls
    div = pd.read_csv(R / "transfer" / "myeloid" / "divergence.csv")
    assert {"control:bootstrap", "control:noise"} <= set(div["generator"]) and div["regret"].notna().all()
    ad = pd.concat(
        [pd.read_csv(R / "adapt" / "myeloid" / p / "adapt.csv") for p in ("gaussian_copula", "tvae", "controls")]
    )
    assert {"control:real_train", "control:shifted", "gaussian_copula/default", "tvae/default"} <= set(ad["generator"])
    assert set(pd.read_csv(R / "adapt" / "myeloid" / "tvae" / "adapt.csv")["model"]) == {"tvae"}  # one model per job
    assert set(ad["order"]) == {"adapt_then_enforce", "enforce_then_adapt"}
    # the two objectives' studies of a model used one fold cache: each stored fold was fitted by a study (a miss);
    # how many folds were shared depends on whether the two studies ran one after the other (tests/test_hpo.py
    # checks the sharing itself)
    for m in ("gaussian_copula", "tvae"):
        kinds = [
            k
            for o in ("compound", "fidelity")
            for v in pd.read_csv(R / "hpo" / "myeloid" / m / o / "study" / "trials.csv")["user_attrs_fold_cache"]
            for k in json.loads(v.replace("'", '"'))
        ]
        stored = len(list((R / "hpo" / "myeloid" / m / "shared_folds").glob("*.pkl")))
        assert 0 < stored <= kinds.count("miss") and set(kinds) <= {"miss", "hit", "partial"}, (m, stored, kinds)
    # a second run does no work
    again = snake(["-n", "--cores", "2", *REDUCED], tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]
    # deleting one result file re-runs only its producer and what depends on it
    hpo_rec = R / "hpo" / "myeloid" / "tvae" / "run.json"
    before = hpo_rec.stat().st_mtime
    (R / "violations" / "myeloid" / "tvae" / "violations.csv").unlink()
    dry = snake(["-n", "--cores", "2", *REDUCED], tmp_path)
    assert job_counts(dry.stdout) == {"all": 1, "figures": 1, "report": 1, "tables": 1, "violations": 1}
    rerun = snake(["--cores", "2", *REDUCED], tmp_path, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (
        hpo_rec.stat().st_mtime == before
        and (R / "violations" / "myeloid" / "tvae" / "violations.csv").stat().st_size > 0
    )


def test_scheduler_never_exceeds_cores(tmp_path):
    """snakemake#3913's minimal workflow: one upstream job, then two 2-thread jobs on 2 cores must run one after the
    other."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent('''
        from synthtrial.sweep import fix_snakemake_single_job_selection
        fix_snakemake_single_job_selection()
        rule final:
            input: "file1", "file2"
        rule prepare:
            output: "common"
            threads: 2
            shell: "touch {output}"
        rule do_something:
            input: "common"
            output: "file{n}"
            threads: 2
            shell:
                "python -c 'import time; print(time.time())' > {output}.start; sleep 2; "
                "python -c 'import time; print(time.time())' > {output}"
        '''))
    r = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "2", "--scheduler", "greedy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    spans = sorted(
        (float((tmp_path / f"file{i}.start").read_text()), float((tmp_path / f"file{i}").read_text())) for i in (1, 2)
    )
    assert spans[1][0] >= spans[0][1], f"the two 2-thread jobs overlapped on 2 cores: {spans}"


# --- a notebook is an input of the rule that executes it --------------------------------------------------------------
def test_editing_a_notebook_reruns_exactly_its_outputs_and_dependants(tmp_path):
    """Every output made up to date (--touch), then one producer notebook edited: the dry run lists its rule and what
    depends on it."""
    import shutil
    work = tmp_path / "work"
    (work / "nbs").mkdir(parents=True)
    shutil.copytree(ROOT / "config", work / "config")
    for sub in ("experiments", "figures", "review"): shutil.copytree(ROOT / "nbs" / sub, work / "nbs" / sub)
    base = ["-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "1", *REDUCED]
    summary = snake([*base, "--summary"], tmp_path)
    assert summary.returncode == 0, summary.stderr[-2000:]
    outs = [l.split("\t")[0] for l in summary.stdout.splitlines()[1:] if l.startswith("/")]
    assert len(outs) > 50
    for o in outs:
        Path(o).parent.mkdir(parents=True, exist_ok=True); Path(o).touch()
    assert snake([*base, "--touch"], tmp_path).returncode == 0                  # every output newer than its inputs
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snake([*base, "-n"], tmp_path))
    future = time.time() + 60
    os.utime(work / "nbs" / "figures" / "tables.ipynb", (future, future))        # "edit" the tables notebook
    assert job_counts(snake([*base, "-n"], tmp_path).stdout) == {"all": 1, "report": 1, "tables": 1}
    os.utime(work / "nbs" / "figures" / "tables.ipynb", (time.time() - 3600, time.time() - 3600))
    os.utime(
        work / "nbs" / "experiments" / "hpo.ipynb", (future, future)
    )  # an experiment notebook: its studies and all after
    counts = job_counts(snake([*base, "-n"], tmp_path).stdout)
    # violations too: it samples the tuned configurations (their best.json are its inputs)
    assert counts == {
        "all": 1,
        "hpo": 2,                        # one per model (the quick config's hpo_jobs: per_model)
        "evaluate": 2,
        "violations": 2,
        "collect": 1,
        "figures": 1,
        "tables": 1,
        "review": 1,
        "transfer": 1,
        "adapt": 2,
        "transfer_figures": 1,
        "adapt_figures": 1,
        "report": 1,
    }, counts


def test_sweep_config_from_the_command_line_is_typed_and_checked(tmp_path):
    r = snake(["-n", "--cores", "1", "--config", "name=../../x", "datasets=[myeloid]"], tmp_path, timeout=300)
    assert r.returncode != 0 and "name='../../x' is not allowed" in r.stdout + r.stderr
    r = snake(["-n", "--cores", "1", *REDUCED, "train_seeds=[0,1]", "hpo_seed=3"], tmp_path, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert job_counts(r.stdout)["hpo"] == 2

@pytest.mark.slow
def test_paper_profile_plans_every_job_and_runs_one_real_hpo_job(tmp_path):
    "`make paper` proven: the paper profile's whole DAG plans, and one of its HPO jobs (the cheapest model, 1 trial,"
    "5 folds, full epochs) runs end to end through the command Snakemake would run."
    cfg = load_config(ROOT / "config" / "paper.yaml")
    nd, nm, no = len(cfg["datasets"]), len(cfg["models"]), len(cfg["objectives"])
    assert (cfg["k_folds"], cfg["budget"], cfg["trial_timeout"]) == (5, 1.0, None)        # the study's protocol
    r = snake(["-n", "--cores", "2", "--configfile", "config/paper.yaml"], tmp_path, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert job_counts(r.stdout) == {"all": 1, "collect": 1, "evaluate": nd * nm, "figures": 1, "hpo": nd * nm * no,
                                    "report": 1, "tables": 1, "violations": nd * nm, "utility": nd,
                                    "transfer": nd, "adapt": nd * nm, "adapt_controls": nd, "transfer_figures": 1,
                                    "adapt_figures": 1, "review": 1}
    # the job itself: planned with only n_trials changed, and run with the shell command Snakemake prints for it.
    # TVAE is the cheapest study model at the defaults; the fidelity objective needs no CatBoost tuning
    # (paper: 200 trials)
    r = snake(
        ["-n", "-p", "--cores", "1", "--configfile", "config/paper.yaml", "--config", "n_trials=1"],
        tmp_path,
        timeout=300,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    job = "/hpo/aml_sal/tvae/fidelity "
    cmds = [
        l.split(":", 1)[1].strip()
        for l in r.stdout.splitlines()
        if l.strip().startswith("Shell command:") and job in l + " "
    ]
    assert len(cmds) == 1, r.stdout[-3000:]
    for setting in ("n_trials='1'", "k_folds='5'", "budget='1.0'", "trial_timeout='null'", "profile=paper"):
        assert setting in cmds[0], cmds[0]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNTHTRIAL_RESULTS": str(tmp_path / "results"), "SYNTHTRIAL_FIGURES": str(tmp_path / "figures")}
    t0 = time.time()
    p = subprocess.run(
        cmds[0], shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )  # ~30 min on a busy 2-core machine
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    run_dir = tmp_path / "results" / "sweep" / "paper" / "hpo" / "aml_sal" / "tvae" / "fidelity"
    best = json.loads((run_dir / "study" / "best.json").read_text())
    assert (best["params"]["k_folds"], best["params"]["budget"], best["params"]["n_trials"]) == (5, 1.0, 1)
    assert (
        best["n_finished"] == 1
        and 0 <= best["best_value"] <= 1
        and best["best_params"]["epochs"] in (300, 500, 1000, 5000, 10000)
    )
    import pandas as pd
    trials = pd.read_csv(run_dir / "study" / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE"]
    assert len(json.loads(trials["user_attrs_fold_seconds"][0])) == 5                      # all five folds were fitted
    run = json.loads((run_dir / "run.json").read_text())
    assert (run_dir / "hpo.ipynb").is_file() and run  # the executed notebook: the record
    print(
        f"one paper-setting HPO job (aml_sal, tvae, fidelity, 1 trial x 5 folds, full epochs): {time.time() - t0:.0f} s"
    )


def test_adapt_domain_seeds_is_a_checked_setting():
    "quick runs the domain experiment with one source fit; the paper profile keeps three; an empty list is refused."
    from synthtrial.sweep import validate_config
    base = {"name": "x", "datasets": ["myeloid"], "models": ["tvae"], "objectives": ["compound"]}
    assert load_config(ROOT / "config" / "quick.yaml", check_data=False)["adapt"]["domain_seeds"] == [0]
    assert validate_config({**base, "profile": "paper"}, check_data=False)["adapt"]["domain_seeds"] == [0, 1, 2]
    with pytest.raises(ParameterError, match=r"adapt.domain_seeds=\[\] must be a non-empty list"):
        validate_config({**base, "adapt": {"domain_seeds": []}}, check_data=False)


def test_a_sweep_job_validates_notebooks_without_the_slow_format_checker():
    "The job process skips rfc3987_syntax (~2 CPU-s of import per job) and still validates notebooks with nbformat."
    code = ("from synthtrial.sweep import _skip_slow_format_checker; _skip_slow_format_checker()\n"
            "import sys, papermill, nbformat\n"
            "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')]))\n"
            "print(sys.modules.get('rfc3987_syntax'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "None", r.stdout + r.stderr[-2000:]


def test_hpo_jobs_per_objective_or_per_model_plan_the_same_studies(tmp_path):
    "per_model (quick): a model's studies in one job; per_objective (paper, evidence): a job per study; a typo stops."
    good = {"datasets": ["myeloid"], "models": ["tvae"], "objectives": ["compound"]}
    with pytest.raises(ParameterError, match=r"hpo_jobs='per_modle' is not allowed"):
        validate_config({**good, "hpo_jobs": "per_modle"})
    assert validate_config(good)["hpo_jobs"] == "per_objective"
    cmds = {}
    for mode in ("per_model", "per_objective"):
        r = snake(["-n", "-p", "--cores", "1", *REDUCED, f"hpo_jobs={mode}"], tmp_path, timeout=300)
        assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
        cmds[mode] = [l for l in r.stdout.splitlines() if "synthtrial.sweep run" in l and "hpo.ipynb" in l]
    both = """objectives='["compound", "fidelity"]'"""
    assert len(cmds["per_model"]) == 2 and all(both in c for c in cmds["per_model"])
    assert len(cmds["per_objective"]) == 4 and all(" objective=" in c for c in cmds["per_objective"])


def test_utility_iterations_must_be_a_positive_whole_number():
    good = {"datasets": ["myeloid"], "models": ["tvae"], "objectives": ["compound"]}
    assert validate_config(good)["utility_iterations"] == 100                  # the quick profile's
    for bad in (0, -5, 2.5):
        with pytest.raises(ParameterError, match="utility_iterations"):
            validate_config({**good, "utility_iterations": bad})
