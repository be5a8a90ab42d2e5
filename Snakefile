# synthtrial — the reproduction sweep. One job = one papermill execution of one notebook in its own
# process (`python -m synthtrial.sweep run NOTEBOOK RUN_DIR key=value …`); the executed copy is the run record.
#
#   snakemake --cores 2 --scheduler greedy --configfile config/quick.yaml    # make quick (greedy: see the Makefile)
#   snakemake --cores 16 --scheduler greedy --configfile config/paper.yaml   # make paper (or on SLURM:)
#   snakemake --profile config/slurm --configfile config/paper.yaml
#
# Targets are files: results/sweep/<name>/hpo/<dataset>/<model>/<objective>/study/best.json (one optuna
# study; the objectives' studies of one model share the folds they fit alike through hpo/<dataset>/<model>/shared_folds,
# a cache — synthtrial.hpo.FoldCache), results/sweep/<name>/eval/<dataset>/<model>/results.csv (defaults + each objective's best over
# the seeds), results/sweep/<name>/violations/<dataset>/<model>/violations.csv, figures/<name>/…,
# figures/<name>/index.html (the report). The config is validated when the workflow is parsed, so a
# typo or a missing offline dataset stops everything before any job is launched.
# A `datasets:` entry may be a dataset spec file (your own trial's data/schema/rules): validate_config registers
# it here, which exports it in $SYNTHTRIAL_DATASETS; every job inherits that and registers the same files again
# (refusing them if their SHA-256 changed) and records them in its provenance.
import json, os, sys
from synthtrial.core import results_dir, figures_dir
from synthtrial.sweep import validate_config, fix_snakemake_single_job_selection

# Snakemake 9.10-9.16 leak the cores of a job selected as the only ready one, and then run more jobs than
# --cores (snakemake/snakemake#3913; see nbs/11_sweep.ipynb). Patched here so every run of this workflow has it.
fix_snakemake_single_job_selection()

# Every job ends itself and its kernel when this Snakemake process is gone (synthtrial.runs), so a killed sweep
# leaves no orphan that a rerun could collide with. Cluster jobs (another host) ignore it.
import socket, psutil
os.environ.setdefault("SYNTHTRIAL_SWEEP_PID", f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time()}")

# The quick profile when no --configfile is given. A given config file is read alone: Snakemake would otherwise read it
# on top of this one, and every key it leaves out (hpo_jobs, n_violation_rows, adapt, ...) would be quick's, not its
# profile's default (config files joined on purpose, e.g. evidence.yaml + evidence_myeloid.yaml, are all given).
if not workflow.overwrite_configfiles:
    configfile: "config/quick.yaml"
C = validate_config(dict(config))
NAME = C["name"]
R = str(results_dir() / "sweep" / NAME)
F = str(figures_dir() / NAME)
PY = sys.executable                  # the venv's python: kernels start from it
RUN = f"{PY} -m synthtrial.sweep run"
DS, MODELS, OBJS = C["datasets"], C["models"], C["objectives"]
def q(v): return "'" + json.dumps(v) + "'"     # a YAML/JSON literal for key=value, shell-quoted
STUDY = {k: C.get(k) for k in ("n_trials", "hpo_seed", "k_folds", "budget", "utility_trials", "utility_iterations",
                               "enforcement", "trial_timeout", "pruner")}
# storage: an RDB URL without a password (validate_config refuses one); libpq reads it from PGPASSWORD or a .pgpass
# file in each job's environment. The sweep's name is part of every study's name: sweeps sharing a database never
# share a study. Every rule that executes a notebook lists it as an input (`nb`): editing the notebook re-runs
# exactly what it made and what depends on that.

wildcard_constraints:
    dataset="[^/]+", model="[^/]+", objective="[^/]+"

# The objectives' studies of one dataset x model fit the same folds (their first trials are the same seeded draws)
# and share them through the fold cache. Run side by side they would both fit each fold before the cache has it, so
# each (dataset, model) gets a resource of 1 that its HPO jobs take: the cores go to different models instead.
import re as _re
STUDY_LOCKS = {_re.sub(r"\W", "_", f"study_{d}_{m}"): (d, m) for d in DS for m in MODELS}
workflow.global_resources.update({k: 1 for k in STUDY_LOCKS})

# Figures and tables are declared once, each with its one producer notebook, in synthtrial.figures (nbs/09_figures.ipynb);
# every rule that runs a producer takes the notebook as input `nb` and plans exactly the files it declared.
from synthtrial.figures import planned_files
def made_by(nb): return planned_files(F, DS, producer=nb)
ADAPT_PARTS = MODELS + ["controls"]   # one adaptation job per model's cohorts, one for the two controls
ADAPT_SETTINGS = " ".join(f"{k}={q(v)}" for k, v in C["adapt"].items()) + f" configs={q(C['cohorts'])}" + \
                 f" source_budget={max(C['budget'], 0.2)}"     # the domain experiment's generators: at least 20 % of their epochs

localrules: all, collect, report

# Every result file is a target of `all`, so deleting any one of them re-runs exactly its producer (and,
# through the newer file, what is computed from it).
rule all:
    input: f"{F}/index.html", f"{R}/results.csv",
           expand(f"{R}/utility/{{dataset}}.json", dataset=DS),
           expand(f"{R}/hpo/{{dataset}}/{{model}}/{{objective}}/study/best.json", dataset=DS, model=MODELS, objective=OBJS),
           expand(f"{R}/eval/{{dataset}}/{{model}}/results.csv", dataset=DS, model=MODELS),
           expand(f"{R}/violations/{{dataset}}/{{model}}/violations.csv", dataset=DS, model=MODELS),
           planned_files(F, DS),
           expand(f"{R}/transfer/{{dataset}}/divergence.csv", dataset=DS),
           expand(f"{R}/adapt/{{dataset}}/{{part}}/adapt.csv", dataset=DS, part=ADAPT_PARTS),
           f"{F}/review/review.md"

rule utility:
    output: f"{R}/utility/{{dataset}}.json"
    shell: "{PY} -m synthtrial.sweep utility {wildcards.dataset} {C[utility_trials]} {output}"

# hpo_jobs (sweep setting): per_objective = one job per study (the paper and evidence profiles: a study is hours and a
# cluster runs them apart); per_model = one job runs a dataset x model's studies one after another (the quick profile:
# its studies take seconds and share their folds, the lock above already runs them in turn, and each job start costs
# ~3 CPU-seconds). The studies, their folders and files are the same either way; only the run record differs
# (hpo/<dataset>/<model>/<objective>/ or hpo/<dataset>/<model>/).
HPO_SETTINGS = " ".join(f"{k}={q(v)}" for k, v in STUDY.items()) + f" storage={q(C['storage'])} profile={C['profile']} sweep={q(NAME)}"
if C.get("hpo_jobs") == "per_model":
  rule hpo:
    input: f"{R}/utility/{{dataset}}.json", nb="nbs/experiments/hpo.ipynb"
    output: [f"{R}/hpo/{{dataset}}/{{model}}/{o}/study/best.json" for o in OBJS]
    params: run_dir=lambda w: f"{R}/hpo/{w.dataset}/{w.model}",
            shared=lambda w: f"{R}/hpo/{w.dataset}/{w.model}/shared_folds",
            settings=HPO_SETTINGS + f" objectives={q(OBJS)}",
            limits=lambda w: q((C["space_limits"] or {}).get(w.model))   # a part of the model's space, or null
    threads: 1
    resources: **{k: (lambda w, dm=dm: int((w.dataset, w.model) == dm)) for k, dm in STUDY_LOCKS.items()}
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "model={wildcards.model} fold_cache={params.shared} {params.settings} space_limits={params.limits}"
else:
  rule hpo:
    input: f"{R}/utility/{{dataset}}.json", nb="nbs/experiments/hpo.ipynb"
    output: f"{R}/hpo/{{dataset}}/{{model}}/{{objective}}/study/best.json"
    params: run_dir=lambda w: f"{R}/hpo/{w.dataset}/{w.model}/{w.objective}",
            shared=lambda w: f"{R}/hpo/{w.dataset}/{w.model}/shared_folds",
            settings=HPO_SETTINGS,
            limits=lambda w: q((C["space_limits"] or {}).get(w.model))   # a part of the model's space, or null
    threads: 1
    resources: **{k: (lambda w, dm=dm: int((w.dataset, w.model) == dm)) for k, dm in STUDY_LOCKS.items()}
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "model={wildcards.model} objective={wildcards.objective} fold_cache={params.shared} {params.settings} "
           "space_limits={params.limits}"

rule evaluate:
    input: lambda w: expand(f"{R}/hpo/{w.dataset}/{w.model}/{{objective}}/study/best.json", objective=OBJS),
           lambda w: f"{R}/utility/{w.dataset}.json", nb="nbs/experiments/evaluate.ipynb"
    output: f"{R}/eval/{{dataset}}/{{model}}/results.csv"
    params: run_dir=lambda w: f"{R}/eval/{w.dataset}/{w.model}", hpo_dir=lambda w: f"{R}/hpo/{w.dataset}/{w.model}",
            settings=" ".join(f"{k}={q(C.get(k))}" for k in ("train_seeds", "sample_seeds", "budget", "utility_trials",
                                                            "utility_iterations", "enforcement", "cohorts"))
                     + f" objectives={q(OBJS)} profile={C['profile']}"
    threads: 1
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "model={wildcards.model} hpo_dir={params.hpo_dir} {params.settings}"

# Defaults AND the tuned configurations of the cohorts (does HPO alone prevent violations?), each sampled without
# processing and then with every strategy.
VIOL_CONFIGS = ["default"] + [c for c in C["cohorts"] if c in OBJS]

rule violations:
    input: nb="nbs/experiments/violations.ipynb",
           tuned=lambda w: expand(f"{R}/hpo/{w.dataset}/{w.model}/{{objective}}/study/best.json", objective=VIOL_CONFIGS[1:])
    output: f"{R}/violations/{{dataset}}/{{model}}/violations.csv"
    params: run_dir=lambda w: f"{R}/violations/{w.dataset}/{w.model}", hpo_dir=lambda w: f"{R}/hpo/{w.dataset}/{w.model}",
            settings=f"strategies={q(C['violation_strategies'])} profile={C['profile']} budget={C['budget']} n_rows={q(C['n_violation_rows'])} "
                     f"configs={q(VIOL_CONFIGS)}"
    threads: 1
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "model={wildcards.model} hpo_dir={params.hpo_dir} {params.settings}"

rule collect:
    input: expand(f"{R}/eval/{{dataset}}/{{model}}/results.csv", dataset=DS, model=MODELS)
    output: f"{R}/results.csv"
    run:
        from synthtrial.sweep import collect_results
        collect_results(input).to_csv(output[0], index=False)

# The follow-up questions: H_synth vs H_real (nbs/experiments/transfer.ipynb, one job per dataset over
# every model's cohorts: they share the tuning on real data) and the synthetic-to-real gap with domain adaptation (adapt.ipynb: one
# job per model's cohorts plus one for the controls, which need no generator run and start at once).
rule transfer:
    input: lambda w: expand(f"{R}/eval/{w.dataset}/{{model}}/results.csv", model=MODELS), nb="nbs/experiments/transfer.ipynb"
    output: f"{R}/transfer/{{dataset}}/divergence.csv"
    params: run_dir=lambda w: f"{R}/transfer/{w.dataset}", eval_dir=lambda w: f"{R}/eval/{w.dataset}",
            target=lambda w: q(C["transfer"]["targets"].get(w.dataset)),
            settings=" ".join(f"{k}={q(v)}" for k, v in C["transfer"].items() if k != "targets") + f" models={q(MODELS)} configs={q(C['cohorts'])}" + \
                     f" budget={max(C['budget'], 0.02)}"      # generators refitted on half B: at least 2 % of their epochs
    threads: 1
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "eval_dir={params.eval_dir} target={params.target} {params.settings}"

rule adapt:
    input: f"{R}/eval/{{dataset}}/{{model}}/results.csv", nb="nbs/experiments/adapt.ipynb"
    output: f"{R}/adapt/{{dataset}}/{{model}}/adapt.csv"
    params: run_dir=lambda w: f"{R}/adapt/{w.dataset}/{w.model}", eval_dir=lambda w: f"{R}/eval/{w.dataset}",
            settings=ADAPT_SETTINGS
    threads: 1
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "eval_dir={params.eval_dir} models='[\"{wildcards.model}\"]' controls=false {params.settings}"

# The controls need no generator run: a high priority starts them among the first jobs instead of leaving
# them for the end of the sweep, where they would run alone.
rule adapt_controls:
    input: nb="nbs/experiments/adapt.ipynb"
    output: f"{R}/adapt/{{dataset}}/controls/adapt.csv"
    params: run_dir=lambda w: f"{R}/adapt/{w.dataset}/controls", eval_dir=lambda w: f"{R}/eval/{w.dataset}",
            settings=ADAPT_SETTINGS
    priority: 50
    threads: 1
    shell: "OMP_NUM_THREADS={threads} {RUN} {input.nb} {params.run_dir} dataset={wildcards.dataset} "
           "eval_dir={params.eval_dir} models='[]' controls=true {params.settings}"

ruleorder: adapt_controls > adapt

SWEEP_PARAMS = f"sweep_dir={R} out_dir={F} datasets={q(DS)} models={q(MODELS)} objectives={q(OBJS)}"

rule transfer_figures:
    input: expand(f"{R}/transfer/{{dataset}}/divergence.csv", dataset=DS), nb="nbs/figures/transfer.ipynb"
    output: made_by("nbs/figures/transfer.ipynb")
    shell: "{RUN} {input.nb} {R}/runs/transfer_figures {SWEEP_PARAMS}"

rule adapt_figures:
    input: expand(f"{R}/adapt/{{dataset}}/{{part}}/adapt.csv", dataset=DS, part=ADAPT_PARTS), nb="nbs/figures/adapt.ipynb"
    output: made_by("nbs/figures/adapt.ipynb")
    shell: "{RUN} {input.nb} {R}/runs/adapt_figures {SWEEP_PARAMS}"

rule figures:
    input: f"{R}/results.csv", expand(f"{R}/violations/{{dataset}}/{{model}}/violations.csv", dataset=DS, model=MODELS), nb="nbs/figures/figures.ipynb"
    output: made_by("nbs/figures/figures.ipynb")
    shell: "{RUN} {input.nb} {R}/runs/figures {SWEEP_PARAMS}"

rule tables:
    input: f"{R}/results.csv", expand(f"{R}/violations/{{dataset}}/{{model}}/violations.csv", dataset=DS, model=MODELS), nb="nbs/figures/tables.ipynb"
    output: made_by("nbs/figures/tables.ipynb")
    shell: "{RUN} {input.nb} {R}/runs/tables {SWEEP_PARAMS}"

# The methods review (nbs/review/review.ipynb): the checks a reviewer asks for, over every cohort of the sweep.
rule review:
    input: f"{R}/results.csv", nb="nbs/review/review.ipynb"
    output: f"{F}/review/review.md", f"{F}/review/review.csv", made_by("nbs/review/review.ipynb")
    shell: "{RUN} {input.nb} {R}/runs/review folder={R} out_dir={F}/review table_dir={F}/tables"

rule report:
    input: rules.figures.output, rules.tables.output, rules.transfer_figures.output, rules.adapt_figures.output, rules.review.output
    output: f"{F}/index.html"
    shell: "{PY} -m synthtrial.sweep report {F} --runs {R} --title 'synthtrial reproduction: {NAME} sweep'"
