"The evidence record tool: relative paths with modification times kept, utility parameters kept and restored."
import importlib.util, json, os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("evidence_record", ROOT / "tools" / "evidence_record.py")
er = importlib.util.module_from_spec(spec); spec.loader.exec_module(er)


def test_relativise_rewrites_the_project_folder_and_keeps_mtime(tmp_path):
    root = tmp_path / "proj"
    f = root / "results" / "run.json"; f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"run_dir": f"{root}/results/sweep/x", "other": "/elsewhere/x"}))
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    binary = root / "results" / "a.pkl"; binary.write_bytes(str(root).encode())
    assert er.relativise(root / "results", root) == 1
    assert json.loads(f.read_text()) == {"run_dir": "results/sweep/x", "other": "/elsewhere/x"}
    assert f.stat().st_mtime_ns == 1_000_000_000
    assert binary.read_bytes() == str(root).encode()          # only text records are rewritten
    assert er.relativise(root / "results", root) == 0          # idempotent


def test_record_keeps_only_this_configs_utility_parameters_and_restore_puts_them_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTRIAL_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SYNTHTRIAL_FIGURES", str(tmp_path / "figures"))
    cache = tmp_path / "results" / "utility_params"; cache.mkdir(parents=True)
    (cache / "aml_sal_CR1.json").write_text(json.dumps({"key": {"n_trials": 50}, "params": {"depth": 4}}))
    (cache / "aml_sal_OS.json").write_text(json.dumps({"key": {"n_trials": 5}, "params": {}}))      # another sweep's
    (cache / "myeloid_OS.json").write_text(json.dumps({"key": {"n_trials": 50}, "params": {}}))     # another dataset
    cfg = tmp_path / "e.yaml"; cfg.write_text("name: ev\ndatasets: [aml_sal]\nutility_trials: 50\n")
    er.record(str(cfg))
    kept = tmp_path / "results" / "sweep" / "ev" / "utility_params"
    assert sorted(p.name for p in kept.iterdir()) == ["aml_sal_CR1.json"]
    (cache / "aml_sal_CR1.json").unlink()
    er.restore(str(cfg))
    assert json.loads((cache / "aml_sal_CR1.json").read_text())["params"] == {"depth": 4}


def _evidence_sweeps() -> list[list[str]]:
    "The Makefile's EVIDENCE_SWEEPS: each sweep's config files, in the order Snakemake reads them."
    line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("EVIDENCE_SWEEPS :="))
    return [s.split("+") for s in line.split(":=", 1)[1].split()]


def test_a_fresh_clone_continues_the_committed_evidence_run(tmp_path):
    "Clone, restore, one --touch pass per sweep: no committed study is planned again, only what the record lacks."
    import subprocess

    E = ROOT / "results" / "sweep"
    done = sorted(
        p.parent.parent
        for p in E.glob("evidence*/hpo/*/*/*/study/best.json")
        if subprocess.run(["git", "ls-files", "--error-unmatch", str(p)], cwd=ROOT, capture_output=True).returncode == 0
    )
    assert done, "the evidence record has no committed study (results/sweep/evidence*/hpo/*/*/*/study/best.json)"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone), "SYNTHTRIAL_CACHE": str(ROOT / "data" / "cache")}
    env.pop("SYNTHTRIAL_RESULTS", None); env.pop("SYNTHTRIAL_FIGURES", None)
    py, smk = sys.executable, str(Path(sys.executable).with_name("snakemake"))
    for files in _evidence_sweeps():
        name = er._config("+".join(files))["name"]
        subprocess.run([py, "tools/evidence_record.py", "restore", "+".join(files)], cwd=clone, env=env, check=True)
        base = [smk, "--scheduler", "greedy", "--configfile", *files]
        subprocess.run(base + ["--cores", "1", "--touch", "--quiet", "rules"], cwd=clone, env=env, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        ours = [s for s in done if s.relative_to(E).parts[0] == name]
        done_models = {s.parent.name for s in ours}
        phases = [l.split() for l in (clone / files[-1]).read_text().splitlines() if l.startswith("#@ phase")]
        for _, _, models, *settings in phases:
            if not done_models & set(models.split(",")): continue      # a phase with nothing committed yet
            plan = subprocess.run(base + ["--cores", "2", "-n", "--rerun-incomplete", "--rerun-triggers", "mtime",
                                          "input", "--until", "evaluate", "violations", "--config",
                                          f"models=[{models}]", *settings],
                                  cwd=clone, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert plan.returncode == 0, plan.stderr[-2000:]
            planned = "\n".join(l for l in plan.stdout.splitlines() if l.strip().startswith("output:"))
            for study in ours:
                _, _, ds, model, objective = study.relative_to(E).parts
                if model in models.split(","):
                    assert f"hpo/{ds}/{model}/{objective}/study/best.json" not in planned, f"{study} planned again"
            assert "rule utility" not in plan.stdout          # the tuned utility parameters came from the record


def test_cohorts_real_rows_and_caches_never_enter_the_record():
    "Whatever a job writes under the evidence folder, git ignores the synthetic cohorts, real rows and caches."
    import subprocess
    E = "results/sweep/evidence"
    kept_out = [f"{E}/eval/aml_sal/tvae/synthetic_compound.csv", f"{E}/eval/aml_sal/tvae/synthetic/default_0_0.csv",
                f"{E}/adapt/aml_sal/tvae/cohorts/a.csv", f"{E}/transfer/aml_sal/real_train.csv",
                f"{E}/hpo/aml_sal/tvae/shared_folds/ab.pkl", f"{E}/eval/aml_sal/tvae/evaluate.ipynb"]
    kept_in = [f"{E}/eval/aml_sal/tvae/results.csv", f"{E}/hpo/aml_sal/tvae/compound/study/trials.csv",
               f"{E}/runs/figures/figures.ipynb", f"{E}/runs/tables/tables.ipynb"]   # executed figure notebooks stay
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *kept_out, *kept_in], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert sorted(ignored) == sorted(kept_out)
    tracked = subprocess.run(["git", "ls-files", E], cwd=ROOT, capture_output=True, text=True).stdout.split()
    rows = [t for t in tracked if t.endswith(".csv") and Path(t).name.startswith(("synthetic_", "real_"))]
    assert not rows and not [t for t in tracked if "/synthetic/" in t or "/cohorts/" in t], rows   # gate.json may stay


def test_cohorts_refits_a_missing_cohort_and_refuses_one_that_differs(tmp_path, monkeypatch):
    "A fresh clone gets the evaluation's own cohort back (same gate report), and no cohort where the refit differs."
    monkeypatch.setenv("SYNTHTRIAL_RESULTS", str(tmp_path / "results"))
    src = ROOT / "results" / "sweep" / "evidence" / "eval" / "aml_sal" / "rtvae"     # its compound fit: ~10 s
    ev = tmp_path / "results" / "sweep" / "ev" / "eval" / "aml_sal" / "rtvae"
    (ev / "configs").mkdir(parents=True)
    for p in src.glob("configs/compound_*.provenance.json"): (ev / "configs" / p.name).write_bytes(p.read_bytes())
    gate = json.loads((src / "synthetic_compound.gate.json").read_text())
    wrong = {**gate, "closer_than_holdout_p5": -1}                                   # a report this fit cannot give
    (ev / "synthetic_compound.gate.json").write_text(json.dumps(wrong))
    cfg = tmp_path / "e.yaml"; cfg.write_text("name: ev\ndatasets: [aml_sal]\n")
    assert er.missing_cohorts(str(cfg)) == [(ev, "compound")]
    assert "not written" in er.refit_cohort(str(ev), "compound")
    assert not (ev / "synthetic_compound.csv").exists()
    assert "closer_than_holdout_p5" in (ev / "synthetic_compound.error.txt").read_text()
    assert er.missing_cohorts(str(cfg)) == []            # the follow-ups read the error file as "no cohort"
    (ev / "synthetic_compound.error.txt").unlink()
    (ev / "synthetic_compound.gate.json").write_text(json.dumps(gate))
    assert "identical" in er.refit_cohort(str(ev), "compound")
    syn = (ev / "synthetic_compound.csv").read_text().splitlines()
    assert len(syn) == gate["n_syn"] + 1 and syn[0].split(",")[0] == "SUBJID"
