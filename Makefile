# synthtrial — one command for each job. Every target creates the virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PYTHONHASHSEED := 0
# synthcity / torch: keep them quiet and on the CPU threads we have
export TF_CPP_MIN_LOG_LEVEL := 3
export MPLBACKEND := Agg

.PHONY: help venv quick sweep skeleton paper paper-slurm evidence test test-fast test-slow nbdev-test pytest check-sync export clean-nbs doctor lab readme site clean

help:
	@echo "make quick      - the quick reproduction: Snakemake sweep, config/quick.yaml (about 20-30 min on 2 cores)"
	@echo "make skeleton   - the walking skeleton: one model, one figure (~10 s)"
	@echo "make test       - notebook tests (nbdev_test) + pytest"
	@echo "make test-slow  - the same, including cells/tests marked slow"
	@echo "make check-sync - nbdev_export + nbdev_clean must leave git status unchanged"
	@echo "make paper      - the Snakemake sweep, the study's protocol (config/paper.yaml)"
	@echo "make evidence   - the evidence profile (config/evidence.yaml, <= 8 h on 2 cores) in chunks of CHUNK_MINUTES (110)"
	@echo "make doctor     - versions, GPU, missing optional parts"
	@echo "make lab        - JupyterLab at nbs/index.ipynb with the project's kernel"
	@echo "make site       - the offline HTML site (Jupyter Book 1.x) -> site/_build/html/index.html"

$(VENV)/.installed: requirements-lock.txt setup.py settings.ini
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; synthtrial needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet --no-deps -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	$(PY) -c "import torch, sys; sys.exit('error: a CUDA build of torch was installed: ' + torch.__version__) if torch.version.cuda else print('torch', torch.__version__, 'CPU build: ok')"
	@touch $@

venv: $(VENV)/.installed

# The reproduction is a Snakemake workflow of papermill-executed notebooks (Snakefile, config/*.yaml).
# `make quick` = config/quick.yaml: all eight study models x four objectives on myeloid + aml_sal (quick
# profile), the follow-up analyses and the methods review, every figure and table, the report page.
# Incremental: a second run does no work; an interrupted one resumes. `make paper` = config/paper.yaml
# (the study's numbers; hours to days on CPU). `make skeleton` = the 10-second walking skeleton.
# --scheduler greedy: with Snakemake 9.16's default ILP job selector we measured 5 jobs at once with --cores 1.
# Part of that is snakemake/snakemake#3913 (the cores of a job selected as the only ready one are never
# subtracted), which the Snakefile patches for both selectors (synthtrial.sweep.fix_snakemake_single_job_selection).
SNAKE := $(BIN)/snakemake --scheduler greedy
CORES ?= 2
# --prioritize: aml_sal (the larger cohort) goes first, so its follow-up jobs (transfer, adaptation) overlap the
# myeloid jobs instead of running alone at the end.
quick: venv
	$(SNAKE) --cores $(CORES) --configfile config/quick.yaml --rerun-incomplete \
	  --prioritize $(CURDIR)/results/sweep/quick/transfer/aml_sal/divergence.csv
	@echo "report: figures/quick/index.html"

sweep: quick

skeleton: venv
	$(PY) -m synthtrial quick

paper: venv
	$(SNAKE) --cores $(CORES) --configfile config/paper.yaml --rerun-incomplete
	@echo "report: figures/paper/index.html"

paper-slurm: venv
	$(SNAKE) --profile config/slurm --configfile config/paper.yaml

# The evidence profile: two sweeps (EVIDENCE_SWEEPS), the AML cohort (config/evidence.yaml: its comments give the
# design and the per-job costs) and a second real trial (config/evidence_myeloid.yaml, read on top of it). One
# Snakemake pass per `#@ phase` line of each sweep's last config file (those models with their own budget and
# trials, up to their evaluation and violation jobs), then one pass per sweep over the whole workflow (follow-ups,
# figures, report; the phases' settings are not a reason to rerun: --rerun-triggers mtime input). The whole chunk runs under a wall limit: at
# CHUNK_MINUTES the running jobs are stopped and the chunk ends with status 0; `make evidence` again continues
# (--rerun-incomplete: a stopped HPO job resumes its study, an evaluation job keeps its finished blocks).
# The record is committed (results/sweep/evidence* and figures/evidence*, less cohorts, fold caches and real rows:
# see .gitignore). A fresh clone has those files but no Snakemake metadata and checkout-time modification times, which
# Snakemake would read as "inputs newer than outputs": the first `make evidence` on a checkout runs one
# `snakemake --touch` pass (marks what exists as up to date in the workflow's order; creates nothing, runs nothing).
# Every pass reruns a job for a missing or older input only (--rerun-triggers mtime input): a phase's own settings
# differ from the last pass's, and a committed result is not redone because the code moved on (each job's run.json
# names the commit it ran at).
# tools/evidence_record.py puts back (restore) and keeps (record) the tuned utility parameters, a cache outside the
# sweep folder, and makes the run records' paths relative to the project folder before they are committed. On a fresh
# clone it also fits again the synthetic cohorts the finished evaluations wrote (cohorts: the follow-ups read them),
# each checked against its committed privacy-gate report, inside the chunk's time.
# After a chunk: git add results/sweep/evidence* figures/evidence* && git commit.
CHUNK_MINUTES ?= 110
# the evidence sweeps, in order: the AML cohort, then the second real trial (its file read on top of the first)
EVIDENCE_SWEEPS := config/evidence.yaml config/evidence.yaml+config/evidence_myeloid.yaml
evidence: venv
	@echo "evidence chunk: at most $(CHUNK_MINUTES) min (CHUNK_MINUTES); started $$(date -u +%FT%TZ)"
	@for s in $(EVIDENCE_SWEEPS); do \
	  files=$$(echo $$s | tr + ' '); mark=.snakemake/evidence-checkout-marked-$$(basename $${s##*+} .yaml); \
	  $(PY) tools/evidence_record.py restore $$s || exit 1; \
	  test -f $$mark || { echo "evidence: marking this checkout's committed results of $$s as up to date (snakemake --touch)"; \
	    $(SNAKE) --cores 1 --configfile $$files --touch --quiet rules < /dev/null && touch $$mark; } || exit 1; \
	done
	@start=$$(date +%s); \
	timeout --kill-after=120 $(CHUNK_MINUTES)m bash -euo pipefail -c '\
	  for s in $(EVIDENCE_SWEEPS); do $(PY) tools/evidence_record.py cohorts $$s < /dev/null; done; \
	  for s in $(EVIDENCE_SWEEPS); do \
	    files=$$(echo $$s | tr + " "); \
	    grep "^#@ phase " $${s##*+} | while read -r _ _ models settings; do \
	      echo "evidence phase ($$s): $$models $$settings"; \
	      $(SNAKE) --cores $(CORES) --configfile $$files --rerun-incomplete --rerun-triggers mtime input \
	        --until evaluate violations --config models="[$$models]" $$settings < /dev/null; \
	    done; \
	  done; \
	  for s in $(EVIDENCE_SWEEPS); do \
	    $(SNAKE) --cores $(CORES) --configfile $$(echo $$s | tr + " ") --rerun-incomplete --rerun-triggers mtime input < /dev/null; \
	  done'; \
	rc=$$?; echo "evidence chunk: $$(( ($$(date +%s) - start) / 60 )) min"; \
	for s in $(EVIDENCE_SWEEPS); do $(PY) tools/evidence_record.py record $$s; done; \
	if [ $$rc = 124 ] || [ $$rc = 137 ]; then echo "evidence: chunk limit reached; run make evidence again to continue"; exit 0; fi; \
	[ $$rc = 0 ] && echo "reports: figures/evidence/index.html figures/evidence_myeloid/index.html"; exit $$rc

doctor: venv
	$(PY) -m synthtrial doctor

# check_paths: no tracked file names a machine path or CI's reference folder (data comes through the library).
# lint: no line over 120 columns in synthtrial/, tests/, bench/, tools/ (ruff, .ruff.toml; tools/lint.py).
# nbdev_test runs every library notebook (cells flagged `slow` are skipped unless FLAGS=slow);
# pytest runs tests/ (tests marked slow are skipped unless SLOW=1). pytest prints the summary line.
FLAGS ?=
test: venv
	$(PY) tools/check_paths.py
	$(PY) tools/lint.py
	cd nbs && $(BIN)/nbdev_test --path . --n_workers 2 $(if $(FLAGS),--flags "$(FLAGS)",) --do_print
	$(PY) -m pytest tests -q -rs $(if $(SLOW),--slow,)

test-slow:
	$(MAKE) test FLAGS=slow SLOW=1

check-sync: venv
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(PY) tools/check_readme.py
	@if [ -n "$$(git status --porcelain -- nbs synthtrial README.md)" ]; then \
	  echo "error: the library or README does not match the notebooks (run nbdev_export, nbdev_clean, make readme):"; \
	  git status --porcelain -- nbs synthtrial README.md; git --no-pager diff --stat; exit 1; \
	else echo "check-sync: library, notebooks and README are in sync"; fi

export: venv
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

readme: venv
	$(PY) tools/check_readme.py --write

# The kernel is registered inside .venv (--sys-prefix: found by this JupyterLab, nothing written to ~); as root
# (containers) JupyterLab needs --allow-root. Extra options: make lab LAB_ARGS="--no-browser --port 8890".
LAB_ARGS ?=
lab: venv
	$(PY) -m ipykernel install --sys-prefix --name synthtrial --display-name "synthtrial (.venv)"
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS) nbs/index.ipynb

# The offline HTML site: Jupyter Book 1.x in its own pinned environment (.venv-site, site/requirements-site.txt;
# Sphinx cannot share the main lock's docutils). nbs/index, the library notebooks as API docs, the tutorials, the
# executed run notebooks and every figure/table with caption and provenance -> site/_build/html/index.html.
# Nothing is executed or fetched. nbdev_docs (Quarto) keeps its settings in settings.ini for users who have Quarto.
SITE_VENV := .venv-site
$(SITE_VENV)/.installed: site/requirements-site.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; the site needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(SITE_VENV)/bin/python || $(PYTHON) -m venv $(SITE_VENV)
	$(SITE_VENV)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(SITE_VENV)/bin/python -m pip install --quiet --no-deps -r site/requirements-site.txt
	@touch $@

site: $(SITE_VENV)/.installed
	$(SITE_VENV)/bin/python tools/build_site.py

clean:
	rm -rf results .snakemake figures/*.png figures/*.pdf figures/*.json figures/*/
	rm -rf site/_build site/_book
