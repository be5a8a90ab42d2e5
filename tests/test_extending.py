"""README "Extending synthtrial": a generator, a metric, an objective and a figure declared in ONE module of the user's
own, outside the package, named in $SYNTHTRIAL_PLUGINS. The same module must reach every process a sweep starts:
the sweep's validation, Snakemake's plan and a real HPO job executed by papermill in its own kernel."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
from helpers import run_python

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
"My trial's extensions: one module, each thing declared once where it is defined."
import numpy as np
from synthtrial.generators import Generator, FloatRange, register_generator
from synthtrial.metrics import register_metric
from synthtrial.hpo import Objective, register_objective
from synthtrial.figures import register_figure

@register_generator(group="baseline")
class JitterBootstrap(Generator):
    "Training rows drawn with replacement; numeric columns moved by a share `jitter` of their spread."
    name = "jitter_bootstrap_ext"
    space = (FloatRange("jitter", 0.0, 0.5),)
    @classmethod
    def default_params(cls): return {"jitter": 0.1}
    def _fit(self, data, seed): self._rows = data.reset_index(drop=True)
    def _sample(self, n, seed):
        rng = np.random.default_rng(seed)
        out = self._rows.iloc[rng.integers(0, len(self._rows), n)].reset_index(drop=True)
        for c in out.select_dtypes("float").columns:
            out[c] = out[c] + rng.normal(0, self.params["jitter"] * (out[c].std() or 1.0), n)
        return out

@register_metric("median_os_ratio_ext", family="fidelity")
def median_os_ratio(x):
    "1 when the synthetic median overall-survival time equals the real one."
    a, b = x.real_train["OSTM"].astype(float).median(), x.syn["OSTM"].astype(float).median()
    return float(min(a, b) / max(a, b))

register_objective(Objective("os_ext", {"median_os_ratio_ext": 1.0}, "the median survival time, alone"))
register_figure("os_hist_ext", producer="nbs/figures/figures.ipynb", per_dataset=True)
'''


@pytest.fixture
def plugin_env(tmp_path):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "my_trial_ext.py").write_text(PLUGIN)
    env = {
        **os.environ,
        "SYNTHTRIAL_PLUGINS": "my_trial_ext",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugin"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "SYNTHTRIAL_RESULTS": str(tmp_path / "results"),
        "SYNTHTRIAL_FIGURES": str(tmp_path / "figures"),
    }
    return env


def test_plugin_declarations_reach_validation_and_the_plan(plugin_env, tmp_path):
    "The sweep's validation accepts the new model and objective; Snakemake plans the new figure under its producer."
    r = run_python("from synthtrial.sweep import validate_config\n"
            "c = validate_config({'name': 'ext', 'datasets': ['myeloid'], 'models': ['jitter_bootstrap_ext'],"
            " 'objectives': ['os_ext'], 'cohorts': ['default', 'os_ext']}, check_data=False)\n"
            "from synthtrial.generators import BASELINES\n"
            "print(c['models'], c['objectives'], 'jitter_bootstrap_ext' in BASELINES)", plugin_env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "['jitter_bootstrap_ext'] ['os_ext'] True" in r.stdout
    cfg = tmp_path / "ext.yaml"
    cfg.write_text(
        "name: ext\nprofile: quick\ndatasets: [myeloid]\nmodels: [jitter_bootstrap_ext]\nobjectives: [os_ext]\n"
        "cohorts: [default, os_ext]\n"
    )
    plan = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "1", "--configfile",
                           str(cfg)], env=plugin_env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert "hpo/myeloid/jitter_bootstrap_ext/os_ext/study/best.json" in plan.stdout
    assert "figures/ext/os_hist_ext_myeloid.png" in plan.stdout         # planned as an output of its producer
    # without the variable the same config is refused, naming the unknown model
    bare = {k: v for k, v in plugin_env.items() if k != "SYNTHTRIAL_PLUGINS"}
    r = run_python(
        "from synthtrial.sweep import validate_config\n"
        "validate_config({'name': 'ext', 'datasets': ['myeloid'], 'models': ['jitter_bootstrap_ext']}, "
        "check_data=False)",
        bare,
    )
    assert r.returncode != 0 and "jitter_bootstrap_ext" in r.stderr


def test_a_missing_plugin_module_is_named(plugin_env):
    r = run_python("import synthtrial.core", {**plugin_env, "SYNTHTRIAL_PLUGINS": "my_trial_ext,not_a_module_anywhere"})
    assert r.returncode != 0 and "not_a_module_anywhere" in r.stderr and "SYNTHTRIAL_PLUGINS" in r.stderr


def test_a_sweep_job_runs_the_new_model_under_the_new_objective(plugin_env, tmp_path):
    "The HPO job notebook, executed by papermill in a fresh kernel, fits the plugin's model and scores its metric."
    run_dir = tmp_path / "results" / "hpo"
    r = subprocess.run([sys.executable, "-m", "synthtrial.sweep", "run", "nbs/experiments/hpo.ipynb", str(run_dir),
                        "dataset=myeloid", "model=jitter_bootstrap_ext", "objective=os_ext", "profile=quick",
                        "n_trials=2", "k_folds=2", "budget=1.0", "enforcement=none", "sweep=ext"],
                       env=plugin_env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    best = json.loads((run_dir / "study" / "best.json").read_text())
    prm = best["params"]                         # the study's settings (provenance record)
    assert prm["model"] == "jitter_bootstrap_ext" and prm["objective"] == "os_ext" and best["n_finished"] == 2
    assert best["weights"] == {"median_os_ratio_ext": 1.0}
    assert 0.0 <= best["best_params"]["jitter"] <= 0.5 and 0.0 < best["best_value"] <= 1.0
