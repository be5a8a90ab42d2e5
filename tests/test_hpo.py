"""HPO engine: resume after a kill, the test split never reaches the objective, failing trials, bad input."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
import optuna
from synthtrial.core import ParameterError, SynthtrialError
from synthtrial.data import load_split
from synthtrial.generators import GaussianCopula, GeneratorError, GENERATORS
from synthtrial.hpo import run_study, get_objective, register_objective, Objective, open_storage
from synthtrial.metrics import survival_km_scores

def km_only(tr, va, syn, schema, metrics, seed):
    return survival_km_scores(tr, syn, schema)

def as_is(gen, n, seed):
    return gen.sample(n, seed=seed)

class SpyCopula(GaussianCopula):
    "Gaussian copula that records the patient ids of every frame it is fitted on."
    name = "spy_copula"
    seen: list = []
    def _fit(self, data, seed):
        SpyCopula.seen.append(set(self._ids))
        return super()._fit(data, seed)
    def fit(self, train, schema, seed=0):
        self._ids = train["id"].tolist()
        return super().fit(train, schema, seed)

class Exploding(GaussianCopula):
    "Fails for one of the two choices in its space, like a model that diverges for some hyperparameters."
    name = "exploding"
    @classmethod
    def search_space(cls, trial):
        return {"default_distribution": trial.suggest_categorical("default_distribution", ["norm", "beta"])}
    def _fit(self, data, seed):
        if self.params["default_distribution"] == "beta":
            raise GeneratorError(self.name, "loss became NaN at epoch 3")
        return super()._fit(data, seed)

def registered(monkeypatch, cls):
    "Register a toy generator for this test only (monkeypatch removes it: the registry keeps the project's names)."
    monkeypatch.setitem(GENERATORS._entries, cls.name, cls)

def test_test_split_never_reaches_the_objective(tmp_path, monkeypatch):
    registered(monkeypatch, SpyCopula)
    train, test, schema = load_split("myeloid")
    seen_metric = []
    def spy_metric(tr, va, syn, schema, metrics, seed):
        seen_metric.append(set(tr["id"]) | set(va["id"]))
        return survival_km_scores(tr, syn, schema)
    SpyCopula.seen.clear()
    run_study("myeloid", "spy_copula", "survival", n_trials=2, k_folds=3, metric_fn=spy_metric, enforcement="none",
              out_dir=tmp_path, progress=False, early_stop=None)
    test_ids = set(test["id"])
    assert len(SpyCopula.seen) == 6 and len(seen_metric) == 6          # 2 trials x 3 folds
    assert all(not (s & test_ids) for s in SpyCopula.seen + seen_metric)
    assert set().union(*seen_metric) == set(train["id"])               # and all of train is used

def test_failing_trials_are_recorded_and_the_study_completes(tmp_path, monkeypatch):
    registered(monkeypatch, Exploding)
    r = run_study("myeloid", "exploding", "survival", n_trials=6, k_folds=2, metric_fn=km_only, enforcement="none",
                  out_dir=tmp_path, progress=False)
    states = [t.state for t in r.study.trials]
    fails = [t for t in r.study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert r.n_finished == 6 and fails and optuna.trial.TrialState.COMPLETE in states
    assert all("loss became NaN" in t.user_attrs["fail_reason"] for t in fails)
    assert r.best_params == {"default_distribution": "norm"}

STUDY_SCRIPT = textwrap.dedent("""
    import sys, time
    from synthtrial.hpo import run_study
    from synthtrial.metrics import survival_km_scores
    def km_only(tr, va, syn, schema, metrics, seed):   # the name is the metric's identity in the study's settings
        time.sleep(0.4)
        return survival_km_scores(tr, syn, schema)
    run_study("myeloid", "gaussian_copula", "survival", n_trials=12, k_folds=2, metric_fn=km_only,
              enforcement="none", out_dir=sys.argv[1], progress=False, early_stop=None)
""")

def test_a_killed_study_resumes_without_losing_or_repeating_trials(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", STUDY_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    journal = tmp_path / "study.journal"
    def finished():
        if not journal.exists(): return []
        st = open_storage(str(journal), journal)
        study = optuna.load_study(study_name="myeloid__gaussian_copula__survival__seed11", storage=st)
        return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    deadline = time.time() + 240
    while len(finished()) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL); proc.wait(30)
    before = {t.number: (t.value, t.params) for t in finished()}
    assert 3 <= len(before) < 12, "the subprocess finished (or never started) before it could be killed"
    r = run_study("myeloid", "gaussian_copula", "survival", n_trials=12, k_folds=2, metric_fn=km_only,
                  enforcement="none", out_dir=tmp_path, progress=False, early_stop=None)
    after = {t.number: (t.value, t.params) for t in r.study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(after[n] == v for n, v in before.items())                  # nothing finished was lost or redone
    interrupted = [t for t in r.study.trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert r.n_finished == 12 and len(after) == 12 and len(r.study.trials) == 12 + len(interrupted)
    assert json.loads((tmp_path / "best.json").read_text())["n_interrupted_recovered"] == len(interrupted)

def test_bad_input_is_refused_before_training(tmp_path):
    calls = []
    def never(*a, **k): calls.append(1); raise AssertionError("training started")
    with pytest.raises(ParameterError, match="objective='compund' is not allowed"):
        run_study("myeloid", "gaussian_copula", "compund", n_trials=2, metric_fn=never, out_dir=tmp_path)
    with pytest.raises(ParameterError, match="model='tvea' is not allowed"):
        run_study("myeloid", "tvea", "survival", n_trials=2, metric_fn=never, out_dir=tmp_path)
    with pytest.raises(SynthtrialError, match="storage 'postgresql://x@127.0.0.1:9/db' is unreachable"):
        run_study("myeloid", "gaussian_copula", "survival", n_trials=2, storage="postgresql://x@127.0.0.1:9/db",
                  metric_fn=never, out_dir=tmp_path)
    with pytest.raises(ParameterError, match="unknown metrics \\['k_means_scor'\\]"):
        register_objective(Objective("typo", {"k_means_scor": 1}))
    with pytest.raises(ParameterError, match="weight key 'ml_efficiency_OS' matches no metric"):
        register_objective(Objective("wrong_target", {"ml_efficiency_OS": 1}))
        run_study("myeloid", "gaussian_copula", "wrong_target", n_trials=2, metric_fn=never, out_dir=tmp_path)
    assert not calls


# --- FoldCache: the objectives' studies of one model share the folds they fit alike ---------------------------
def _fold_kinds(result):
    return [x for t in result.study.trials for x in t.user_attrs.get("fold_cache", [])]

def test_shared_folds_change_no_number_of_a_torch_model(tmp_path):
    "TVAE (torch) under `utility`, then `compound` on the same cache: the compound study equals an unshared one."
    kw = dict(n_trials=2, k_folds=2, budget=0.01, enforcement="none", early_stop=None, progress=False)
    first = run_study("myeloid", "tvae", "utility", out_dir=tmp_path / "utility", fold_cache=tmp_path / "shared", **kw)
    shared = run_study("myeloid", "tvae", "compound", out_dir=tmp_path / "compound", fold_cache=tmp_path / "shared",
                       **kw)
    plain = run_study("myeloid", "tvae", "compound", out_dir=tmp_path / "plain", **kw)
    assert _fold_kinds(first) == ["miss"] * 4 and _fold_kinds(shared) == ["partial"] * 4
    assert [t.value for t in shared.study.trials] == [t.value for t in plain.study.trials]
    metrics = lambda r: [t.user_attrs["metrics"] for t in r.study.trials]
    assert metrics(shared) == metrics(plain)
    best = json.loads((tmp_path / "compound" / "best.json").read_text())
    assert best["params"]["fold_cache"] == str(tmp_path / "shared")

def test_shared_folds_are_not_read_after_a_code_or_setting_change(tmp_path, monkeypatch):
    import synthtrial.hpo as hpo
    kw = dict(n_trials=1, k_folds=2, enforcement="none", early_stop=None, progress=False,
              fold_cache=tmp_path / "shared")
    def kinds(out, **more): return _fold_kinds(run_study("myeloid", "gaussian_copula", "survival",
                                                         out_dir=tmp_path / out, **{**kw, **more}))
    run_study("myeloid", "gaussian_copula", "survival", out_dir=tmp_path / "a", **kw)
    assert kinds("b") == ["hit", "hit"]
    # another training seed or fold seed: other folds
    assert kinds("c", train_seed=2) == ["miss", "miss"]
    assert kinds("d", fold_seed=5) == ["miss", "miss"]
    # another constraint processing
    assert kinds("e", enforcement=["repair"]) == ["miss", "miss"]
    # a change of synthtrial's code (simulated: another fingerprint) invalidates every entry
    monkeypatch.setattr(hpo, "_CODE_FINGERPRINT", "another version of the code")
    assert kinds("f") == ["miss", "miss"]

def test_shared_rows_with_a_metric_function_of_its_own(tmp_path):
    "A metric function without a cache_token shares the rows but computes its values every time."
    calls = []
    def counting(tr, va, syn, schema, metrics, seed):
        calls.append(len(syn)); return survival_km_scores(tr, syn, schema)
    kw = dict(n_trials=1, k_folds=2, enforcement="none", early_stop=None, progress=False, metric_fn=counting,
              fold_cache=tmp_path / "shared")
    a = run_study("myeloid", "gaussian_copula", "survival", out_dir=tmp_path / "a", **kw)
    b = run_study("myeloid", "gaussian_copula", "survival", out_dir=tmp_path / "b", **kw)
    assert _fold_kinds(a) == ["miss", "miss"] and _fold_kinds(b) == ["partial", "partial"] and len(calls) == 4
    assert a.best_value == b.best_value

def test_a_fold_cache_that_is_not_a_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(ParameterError, match=r"fold_cache='.*notes.txt' is not allowed: it exists and is not a folder"):
        run_study("myeloid", "gaussian_copula", "survival", n_trials=1, metric_fn=km_only, out_dir=tmp_path / "s",
                  fold_cache=tmp_path / "notes.txt", progress=False)
    with pytest.raises(ParameterError, match=r"fold_cache=\['a'\] is not allowed; give a folder path"):
        run_study("myeloid", "gaussian_copula", "survival", n_trials=1, metric_fn=km_only, out_dir=tmp_path / "s",
                  fold_cache=["a"], progress=False)

def test_pruned_trials_are_finished_slots_and_the_pruner_is_part_of_the_study(tmp_path):
    kw = dict(n_trials=8, k_folds=3, metric_fn=km_only, enforcement="none", out_dir=tmp_path, progress=False,
              early_stop=None)
    r = run_study("myeloid", "gaussian_copula", "survival", pruner="sha", **kw)
    S = optuna.trial.TrialState
    pruned = [t for t in r.study.trials if t.state == S.PRUNED]
    done = [t for t in r.study.trials if t.state == S.COMPLETE]
    assert pruned and done and r.n_finished == 8 == len(r.study.trials)   # a pruned trial holds its slot: no extra one
    # a pruned trial stopped before its last fold, at a rung (after fold 1), and its value is its running mean there
    assert all(len(t.user_attrs["fold_seconds"]) < 3 and "pruned" in t.user_attrs for t in pruned)
    assert all(t.value == pytest.approx(t.intermediate_values[max(t.intermediate_values)]) for t in pruned)
    assert all(len(t.user_attrs["fold_seconds"]) == 3 for t in done)
    assert r.best_value == max(t.value for t in done)                             # the best is a complete trial
    assert r.study.user_attrs["settings"]["pruner"] == "sha"
    assert json.loads((tmp_path / "best.json").read_text())["params"]["pruner"] == "sha"
    with pytest.raises(ParameterError, match="pruner"):                          # plain and pruned protocols never mix
        run_study("myeloid", "gaussian_copula", "survival", **{**kw, "n_trials": 9})
    again = run_study("myeloid", "gaussian_copula", "survival", pruner="sha", **kw)   # resumed: nothing runs again
    assert len(again.study.trials) == 8
    with pytest.raises(ParameterError, match="pruner"):
        run_study("myeloid", "gaussian_copula", "survival", pruner="median", **kw)


def test_budget_rungs_prune_on_cheap_fits_and_complete_trials_run_the_full_protocol(tmp_path, monkeypatch):
    "pruner='budget': fold 0 at budget/9 and /3 first, most trials pruned there; complete trials run every fold."
    import synthtrial.pipeline as pipeline
    budgets = []
    class Spy(pipeline.SynthesisPipeline):
        def __init__(self, *a, budget=1.0, **k):
            budgets.append(budget); super().__init__(*a, budget=budget, **k)
    monkeypatch.setattr(pipeline, "SynthesisPipeline", Spy)
    kw = dict(n_trials=6, k_folds=2, metric_fn=km_only, enforcement="none", out_dir=tmp_path, progress=False,
              early_stop=None, budget=0.03)
    r = run_study("myeloid", "tvae", "survival", pruner="budget", **kw)
    S = optuna.trial.TrialState
    trials = sorted(r.study.trials, key=lambda t: t.number)
    pruned, done = [t for t in trials if t.state == S.PRUNED], [t for t in trials if t.state == S.COMPLETE]
    assert pruned and done and r.n_finished == 6 == len(trials)
    assert trials[0].state == S.COMPLETE                                 # the first trial at every rung goes on
    assert all(set(t.user_attrs["rungs"]) == {"0", "1"} and len(t.user_attrs["fold_seconds"]) == 4 for t in done)
    assert all(len(t.user_attrs["fold_seconds"]) == len(t.user_attrs["rungs"]) <= 2 and "n_folds" not in t.user_attrs
               and "rung" in t.user_attrs["pruned"] for t in pruned)
    assert r.best_value == max(t.value for t in done)
    fits = {round(b, 6) for b in budgets if b != 0.03} | {0.03}
    assert fits == {round(0.03 / 9, 6), round(0.03 / 3, 6), 0.03}, budgets    # rungs at reduced budgets, folds at full
    assert r.study.user_attrs["settings"]["pruner"] == "budget"
    with pytest.raises(ParameterError, match="pruner"):                 # never mixed with a plain study
        run_study("myeloid", "tvae", "survival", **{**kw, "n_trials": 7})

# --- the pruner as a sweep setting ----------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]

def test_space_limits_keep_every_trial_in_that_part_of_the_space_and_belong_to_the_study(tmp_path):
    "A study on a part of the space draws only from it, records it, and is never resumed with other limits."
    part = {"default_distribution": ["beta", "gamma"]}
    kw = dict(n_trials=4, k_folds=2, metric_fn=km_only, enforcement="none", out_dir=tmp_path, progress=False)
    r = run_study("myeloid", "gaussian_copula", "survival", space_limits=part, **kw)
    drawn = {t.user_attrs["params"]["default_distribution"] for t in r.study.trials}
    assert drawn and drawn <= {"beta", "gamma"}, drawn
    assert r.study.user_attrs["settings"]["space_limits"] == part
    assert json.loads((tmp_path / "best.json").read_text())["params"]["space_limits"] == part
    with pytest.raises(ParameterError, match="space_limits"):          # the whole space is another study
        run_study("myeloid", "gaussian_copula", "survival", **{**kw, "n_trials": 5})
    with pytest.raises(ParameterError, match=r"gaussian_copula: space limit default_distribution=\['lognorm'\]"):
        run_study("myeloid", "gaussian_copula", "survival", space_limits={"default_distribution": ["lognorm"]},
                  **{**kw, "out_dir": tmp_path / "other"})
    assert not (tmp_path / "other").exists()                             # refused before any fit or file

def test_space_limits_reach_only_their_models_hpo_jobs(tmp_path):
    "A sweep config's space_limits go to the named model's HPO jobs (JSON on the command line), null to the others."
    binp = Path(sys.executable).parent
    cfg = tmp_path / "limits.yaml"
    cfg.write_text("space_limits:\n  tvae: {epochs: [300, 500], batch_size: [500]}\n")
    env = {**os.environ, "PATH": f"{binp}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNTHTRIAL_RESULTS": str(tmp_path / "results"), "SYNTHTRIAL_FIGURES": str(tmp_path / "figures")}
    r = subprocess.run([str(binp / "snakemake"), "-n", "-p", "--cores", "1", "--scheduler", "greedy",
                        "--configfile", "config/quick.yaml", str(cfg), "--config", "models=[gaussian_copula,tvae]",
                        "objectives=[compound]", "datasets=[myeloid]", "name=limited"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    hpo = {m: [l for l in r.stdout.splitlines() if "nbs/experiments/hpo.ipynb" in l and f"model={m} " in l]
           for m in ("tvae", "gaussian_copula")}
    assert len(hpo["tvae"]) == len(hpo["gaussian_copula"]) == 1, r.stdout[-3000:]
    assert """space_limits='{"epochs": [300, 500], "batch_size": [500]}'""" in hpo["tvae"][0], hpo["tvae"][0]
    assert "space_limits='null'" in hpo["gaussian_copula"][0], hpo["gaussian_copula"][0]

def test_the_pruner_is_a_sweep_setting_that_reaches_every_hpo_job(tmp_path):
    "validate_config takes sha, hyperband or None (plain protocol) and refuses a typo; a reduced sweep with sha plans."
    from synthtrial.sweep import validate_config
    good = {"datasets": ["myeloid"], "models": ["tvae"], "objectives": ["compound"]}
    assert validate_config(good)["pruner"] is None                       # the default: the study's plain protocol
    assert [validate_config({**good, "pruner": p})["pruner"] for p in ("sha", "hyperband", None, "null")] == \
        ["sha", "hyperband", None, None]                                 # "null": as `--config pruner=null` gives it
    typo = r"pruner='hyperbnd' is not allowed; choose one of: 'sha', 'hyperband', 'budget', or null for the study's"
    with pytest.raises(ParameterError, match=typo):
        validate_config({**good, "pruner": "hyperbnd"})
    binp = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{binp}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNTHTRIAL_RESULTS": str(tmp_path / "results"), "SYNTHTRIAL_FIGURES": str(tmp_path / "figures")}
    r = subprocess.run([str(binp / "snakemake"), "-n", "-p", "--cores", "1", "--scheduler", "greedy", "--config",
                        "models=[gaussian_copula,tvae]", "objectives=[compound,fidelity]", "datasets=[myeloid]",
                        "name=reduced", "pruner=sha"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    hpo = [l for l in r.stdout.splitlines() if "synthtrial.sweep run" in l and "nbs/experiments/hpo.ipynb" in l]
    assert len(hpo) == 2, r.stdout[-3000:]              # 2 models (quick's hpo_jobs: per_model runs both objectives)
    assert all("pruner='\"sha\"'" in l for l in hpo), hpo[0]
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]   # a dry run writes nothing

@pytest.mark.slow
def test_the_hpo_notebook_runs_a_pruned_study(tmp_path, monkeypatch):
    "The hpo experiment notebook passes `pruner` to run_study: its study records it and prunes."
    from synthtrial.sweep import execute
    monkeypatch.setenv("SYNTHTRIAL_RESULTS", str(tmp_path / "results"))
    params = dict(dataset="myeloid", model="gaussian_copula", objective="survival", profile="quick", n_trials=6,
                  k_folds=3, enforcement="none", pruner="sha")
    execute("nbs/experiments/hpo.ipynb", params, tmp_path / "run")
    best = json.loads((tmp_path / "run" / "study" / "best.json").read_text())
    assert (best["params"]["pruner"], best["params"]["k_folds"], best["n_finished"]) == ("sha", 3, 6)
    trials = pd.read_csv(tmp_path / "run" / "study" / "trials.csv")
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert (trials["state"] == "COMPLETE").any()


def test_the_fold_cache_key_needs_no_torch_import_under_one_thread():
    """A cache hit fits nothing: under OMP_NUM_THREADS=1 (every sweep job) the key needs no torch import and equals
    the key after torch is loaded; under another value torch is asked."""
    from helpers import run_python
    for threads in ("1", "2"):
        r = run_python(f"""
            import sys
            from synthtrial.hpo import code_fingerprint
            before = code_fingerprint()
            assert ("torch" in sys.modules) == ({threads} != 1), "torch imported: " + str("torch" in sys.modules)
            import torch
            assert code_fingerprint() == before, (before, code_fingerprint())
            print(before.split("/")[-1])
        """, env={**os.environ, "OMP_NUM_THREADS": threads})
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split()[-1] == f"threads={threads}"


def test_utility_iterations_reach_catboost_and_belong_to_the_study(tmp_path, monkeypatch):
    "An untuned utility model with `utility_iterations` rounds: each fold's CatBoost gets them, the study records them."
    import synthtrial.utility as U
    seen, real = [], U._catboost
    monkeypatch.setattr(U, "_catboost", lambda params, cats: seen.append(params) or real(params, cats))
    kw = dict(n_trials=1, k_folds=2, enforcement="none", out_dir=tmp_path, progress=False)
    r = run_study("myeloid", "gaussian_copula", "utility", utility_iterations=20, **kw)
    assert r.n_finished == 1 and seen and all(p["iterations"] == 20 for p in seen), seen
    assert json.loads((tmp_path / "best.json").read_text())["params"]["utility_iterations"] == 20
    with pytest.raises(ParameterError, match="metric"):                 # the defaults' 300 rounds are another study
        run_study("myeloid", "gaussian_copula", "utility", **{**kw, "n_trials": 2})
    from synthtrial.evaluation import get_profile
    assert (get_profile("quick")["utility_iterations"], get_profile("paper")["utility_iterations"]) == (100, None)
