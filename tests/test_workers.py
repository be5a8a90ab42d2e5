"""Many workers, one study: exact totals, nothing lost or duplicated, dead workers recovered (live ones never), on a
journal file and on a real throw-away PostgreSQL cluster; credentials never written; the sweep's kill/rerun safety."""
import glob, json, os, shutil, signal, socket, subprocess, sys, tempfile, textwrap, time
from pathlib import Path
import pytest
import optuna
from synthtrial.core import ParameterError, SynthtrialError
from synthtrial.hpo import open_storage, run_study, study_name, worker_id

ROOT = Path(__file__).resolve().parents[1]
S = optuna.trial.TrialState
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

# One worker: a tiny gaussian_copula study whose metric sleeps, so trials overlap between workers.
WORKER = textwrap.dedent("""
    import sys, time
    from synthtrial.hpo import run_study
    from synthtrial.metrics import survival_km_scores
    def km_only(tr, va, syn, schema, metrics, seed):
        time.sleep(float(sys.argv[4]))
        return survival_km_scores(tr, syn, schema)
    r = run_study("myeloid", "gaussian_copula", "survival", n_trials=int(sys.argv[3]), k_folds=2, metric_fn=km_only,
                  enforcement="none", out_dir=sys.argv[2], storage=sys.argv[1], progress=True, early_stop=None,
                  heartbeat=1, sweep=sys.argv[5])
    print("FINISHED", r.n_finished, flush=True)
""")

def start_workers(n, storage, out, n_trials, sleep=0.3, sweep="workers"):
    args = [sys.executable, "-c", WORKER, str(storage), str(out), str(n_trials), str(sleep), sweep]
    return [subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(n)]

def load(storage, sweep="workers"):
    st = open_storage(storage, Path(str(storage)))
    return optuna.load_study(study_name=study_name("myeloid", "gaussian_copula", "survival", 11, sweep), storage=st)

def check_exact(study, n_trials):
    "Exactly n_trials finished slot holders, nothing running, every released trial says why, slots 0..n-1 once each."
    trials = study.get_trials()
    released = lambda t: t.state == S.FAIL and t.user_attrs.get("fail_reason") in ("interrupted", "surplus")
    held = [t for t in trials if not released(t)]
    assert [t.state for t in trials if t.state == S.RUNNING] == []
    assert len(held) == n_trials and all(t.state == S.COMPLETE for t in held), \
        [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in trials]
    assert sorted(t.user_attrs["slot"] for t in held) == list(range(n_trials))
    return held, [t for t in trials if t not in held]

def wait_all(procs, timeout=240):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        outs.append(out)
    return [p.returncode for p in procs], outs

# --- journal file: several processes on one file ----------------------------------------------------------------------
@pytest.mark.slow   # several worker processes: 1.5-2 min on 2 busy cores; .ci/run calls it explicitly
def test_three_workers_on_one_journal_reach_exactly_n_trials(tmp_path):
    journal = tmp_path / "study.journal"
    codes, outs = wait_all(start_workers(3, journal, tmp_path / "out", 8))
    assert codes == [0, 0, 0], outs
    held, released = check_exact(load(journal), 8)
    assert all(r.user_attrs["fail_reason"] == "surplus" for r in released)
    assert all(f"FINISHED 8" in o for o in outs)
    assert json.loads((tmp_path / "out" / "best.json").read_text())["n_finished"] == 8

def test_a_dead_workers_trial_is_recovered_and_a_live_ones_never(tmp_path):
    "Trials left RUNNING by this live process (old heartbeat), a process that ended here, a silent node, a live node."
    journal = tmp_path / "study.journal"
    # settings as the workers' run_study records them, so the study can be joined
    run_study("myeloid", "gaussian_copula", "survival", n_trials=1, k_folds=2, enforcement="none", out_dir=tmp_path,
              storage=journal, progress=False, early_stop=None, sweep="workers", metric_fn=_km_only)
    study = load(journal)
    me = worker_id()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ended = {**me, "pid": int(done.stdout)}
    cases = {"live_here": (me, time.time() - 3600), "ended_here": (ended, time.time()),
             "silent_node": ({**me, "host": "node-17"}, time.time() - 120),
             "beating_node": ({**me, "host": "node-18"}, time.time())}
    ids = {}
    for name, (w, beat) in cases.items():
        t = study.ask(); ids[name] = t._trial_id
        study._storage.set_trial_user_attr(t._trial_id, "worker", w)
        study._storage.set_trial_user_attr(t._trial_id, "heartbeat", beat)
    r = run_study("myeloid", "gaussian_copula", "survival", n_trials=3, k_folds=2, enforcement="none", out_dir=tmp_path,
                  storage=journal, progress=False, early_stop=None, sweep="workers", metric_fn=_km_only, heartbeat=1,
                  grace=60, timeout=5)
    state = {name: study._storage.get_trial(i) for name, i in ids.items()}
    assert state["ended_here"].state == S.FAIL and "has ended" in state["ended_here"].user_attrs["recovered"]
    assert state["silent_node"].state == S.FAIL
    assert "no heartbeat from node-17" in state["silent_node"].user_attrs["recovered"]
    assert state["live_here"].state == S.RUNNING and state["beating_node"].state == S.RUNNING   # never touched
    # 1 complete + 2 live running trials hold the 3 slots: the worker waited (until its timeout) instead of running more
    assert r.n_finished == 1 and sum(1 for t in r.study.trials if t.state == S.COMPLETE) == 1

def _km_only(tr, va, syn, schema, metrics, seed):
    from synthtrial.metrics import survival_km_scores
    return survival_km_scores(tr, syn, schema)
_km_only.__qualname__ = "km_only"          # the same metric identity as the workers' function

def test_a_resumed_study_matches_an_uninterrupted_one(tmp_path):
    "Seeds by slot: released trials in between change nothing; same params and values, slot by slot."
    kw = dict(k_folds=2, enforcement="none", progress=False, early_stop=None, metric_fn=_km_only, sweep="workers")
    plain = run_study("myeloid", "gaussian_copula", "survival", n_trials=3, out_dir=tmp_path / "a", **kw)
    run_study("myeloid", "gaussian_copula", "survival", n_trials=1, out_dir=tmp_path / "b", **kw)
    st = load(tmp_path / "b" / "study.journal")
    t = st.ask()         # a "killed" trial
    st._storage.set_trial_user_attr(t._trial_id, "worker", {**worker_id(), "pid": 1, "started": 0})
    resumed = run_study("myeloid", "gaussian_copula", "survival", n_trials=3, out_dir=tmp_path / "b", **kw)
    key = lambda r: sorted((t.user_attrs["slot"], t.value, json.dumps(t.params))
                           for t in r.study.trials if t.state == S.COMPLETE)
    assert key(plain) == key(resumed) and len(key(plain)) == 3
    assert any(t.user_attrs.get("fail_reason") == "interrupted" for t in resumed.study.trials)

# --- PostgreSQL: a throw-away cluster on 127.0.0.1 ----------------------------------------------------------------
def _pg_bin():
    found = shutil.which("initdb")
    if found: return Path(found).resolve().parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(cands[-1]).parent if cands else None

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    "A PostgreSQL cluster in a temporary folder (password auth on 127.0.0.1), stopped and removed afterwards."
    bindir = _pg_bin()
    if bindir is None:
        msg = ("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
               "apt-get install postgresql")
        if os.environ.get("SYNTHTRIAL_REQUIRE_POSTGRES") == "1": pytest.fail(msg)
        pytest.skip(msg)
    base = Path(tempfile.mkdtemp(prefix="synthtrial-pg-"))
    data, port, password = base / "data", _free_port(), "pw-" + os.urandom(6).hex()
    as_user = []
    if os.geteuid() == 0:            # initdb and postgres refuse to run as root: run them as the postgres user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres"); os.chmod(base, 0o700)
    pwfile = base / "pw"; pwfile.write_text(password + "\n")
    if as_user: shutil.chown(pwfile, "postgres")
    run = lambda *a: subprocess.run(as_user + [str(bindir / a[0]), *a[1:]], check=True, capture_output=True, text=True)
    run("initdb", "-D", str(data), "-U", "synthtrial", "--pwfile", str(pwfile), "--auth-host=scram-sha-256",
        "--auth-local=trust", "-E", "UTF8", "--no-sync")
    pwfile.unlink()
    run("pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
        "-o", f"-h 127.0.0.1 -p {port} -k {base} -c max_connections=100 -c fsync=off", "start")
    subprocess.run(as_user + [str(bindir / "createdb"), "-h", str(base), "-p", str(port), "-U", "synthtrial", "optuna"],
                   check=True)
    # the password goes into a .pgpass file (libpq reads PGPASSFILE), never into a URL
    passfile = Path(tempfile.mkdtemp(prefix="synthtrial-pgpass-")) / "pgpass"
    passfile.write_text(f"127.0.0.1:{port}:*:synthtrial:{password}\n"); os.chmod(passfile, 0o600)
    info = {"url": f"postgresql://synthtrial@127.0.0.1:{port}/optuna", "port": port, "password": password,
            "passfile": str(passfile), "data": data}
    old = os.environ.get("PGPASSFILE"); os.environ["PGPASSFILE"] = str(passfile); ENV["PGPASSFILE"] = str(passfile)
    try: yield info
    finally:
        if old is None: os.environ.pop("PGPASSFILE", None)
        else: os.environ["PGPASSFILE"] = old
        ENV.pop("PGPASSFILE", None)
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        stopped = not (data / "postmaster.pid").exists()
        shutil.rmtree(base, ignore_errors=True); shutil.rmtree(passfile.parent, ignore_errors=True)
        assert stopped, "the throw-away PostgreSQL cluster did not stop"

def test_postgres_url_errors_name_the_real_cause(pg, tmp_path):
    with pytest.raises(SynthtrialError, match="authentication failed; give the password in the environment"):
        open_storage(pg["url"].replace("synthtrial@", "nobody@"), tmp_path / "x")
    with pytest.raises(SynthtrialError, match="is unreachable"):
        open_storage(f"postgresql://synthtrial@127.0.0.1:{_free_port()}/optuna", tmp_path / "x")
    with pytest.raises(SynthtrialError, match="the database does not exist"):
        open_storage(pg["url"].replace("/optuna", "/nosuchdb"), tmp_path / "x")
    # a password in the URL works, but is never echoed
    wrong = pg["url"].replace("synthtrial@", "synthtrial:not-the-password@")
    with pytest.raises(SynthtrialError) as e:
        open_storage(wrong, tmp_path / "x")
    assert "not-the-password" not in str(e.value) and "synthtrial:***@" in str(e.value)
    open_storage(pg["url"], tmp_path / "x")                      # the README's form, password from PGPASSFILE

@pytest.mark.slow   # several worker processes: 1.5-2 min on 2 busy cores; .ci/run calls it explicitly
def test_three_workers_on_postgres_exact_total_and_no_secret_written(pg, tmp_path):
    t0 = time.time()
    codes, outs = wait_all(start_workers(3, pg["url"], tmp_path / "out", 9, sweep="pg3"))
    assert codes == [0, 0, 0], outs
    study = load(pg["url"], "pg3")
    held, released = check_exact(study, 9)
    workers = {t.user_attrs["worker"]["pid"] for t in held}
    assert len(workers) >= 2, "the trials were not shared between workers"
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["n_finished"] == 9 and best["params"]["storage"] == pg["url"]
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file(): assert pg["password"] not in f.read_text(errors="ignore"), f
    print(f"3 workers, 9 trials on PostgreSQL: {time.time() - t0:.1f} s; trials per worker: "
          f"{sorted(sum(t.user_attrs['worker']['pid'] == w for t in held) for w in workers)}")

@pytest.mark.slow   # several worker processes: 1.5-2 min on 2 busy cores; .ci/run calls it explicitly
def test_a_worker_killed_mid_trial_loses_nothing(pg, tmp_path):
    url = pg["url"]
    procs = start_workers(3, url, tmp_path / "out", 9, sleep=1.0, sweep="pgkill")
    victim = procs[0]
    deadline = time.time() + 120
    study = None
    while time.time() < deadline:      # wait until the victim has a trial running and another worker finished one
        time.sleep(0.5)
        try: study = load(url, "pgkill")
        except Exception: continue
        ts = study.get_trials(deepcopy=False)
        mine = [t for t in ts if t.state == S.RUNNING and t.user_attrs.get("worker", {}).get("pid") == victim.pid]
        if mine and any(t.state == S.COMPLETE for t in ts): break
    else: pytest.fail("the victim never had a running trial")
    victim.send_signal(signal.SIGKILL); victim.wait(30)
    codes, outs = wait_all(procs[1:])
    assert codes == [0, 0], outs
    held, released = check_exact(load(url, "pgkill"), 9)
    killed = [t for t in released if t.user_attrs.get("worker", {}).get("pid") == victim.pid]
    assert killed and all("has ended" in t.user_attrs["recovered"] for t in killed)


def test_saved_generators_and_fold_caches_are_signed(tmp_path):
    "A saved generator loads only under its results folder's key; a plain pickle is refused before it is unpickled."
    import pickle
    from synthtrial.data import load_split
    from synthtrial.gate import IntegrityError
    from synthtrial.generators import Generator, GaussianCopula
    train, _, schema = load_split("myeloid")
    g = GaussianCopula().fit(train, schema, seed=0)
    p = g.save(tmp_path / "g.pkl", key_dir=tmp_path / "results_a")
    assert Generator.load(p, key_dir=tmp_path / "results_a").sample(20, seed=1).equals(g.sample(20, seed=1))
    with pytest.raises(IntegrityError, match="signature mismatch"):
        Generator.load(p, key_dir=tmp_path / "results_b")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(g))
    with pytest.raises(IntegrityError, match="not a signed synthtrial file"):
        Generator.load(tmp_path / "evil.pkl", key_dir=tmp_path / "results_a")


# --- the sweep on PostgreSQL: --cores 3, killed mid-sweep, rerun ------------------------------------------------------
BIN = Path(sys.executable).parent

def sweep(pg, tmp, name, wait=True, unlock=False):
    target = tmp / "results" / "sweep" / name / "eval" / "myeloid" / "gaussian_copula" / "results.csv"
    cmd = [str(BIN / "snakemake"), "--scheduler", "greedy", "--cores", "3",
           *(["--unlock"] if unlock else ["--rerun-incomplete"]), "--config",
           "models=[gaussian_copula]", "objectives=[compound,fidelity]", "datasets=[myeloid]", f"name={name}",
           "n_trials=4", f"storage={pg['url']}", "--", str(target)]
    env = {**ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "SYNTHTRIAL_RESULTS": str(tmp / "results"),
           "SYNTHTRIAL_FIGURES": str(tmp / "figures"), "PGPASSFILE": pg["passfile"]}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    if not wait: return p
    out, _ = p.communicate(timeout=1500)
    assert p.returncode == 0, out[-3000:]
    return out

def outcome(tmp, name):
    import pandas as pd
    R = tmp / "results" / "sweep" / name
    best = {o: {k: json.loads((R / "hpo" / "myeloid" / "gaussian_copula" / o / "study" / "best.json").read_text())[k]
                for k in ("best_params", "best_value", "n_finished")} for o in ("compound", "fidelity")}
    res = pd.read_csv(R / "eval" / "myeloid" / "gaussian_copula" / "results.csv")
    res = res[[c for c in res.columns if "seconds" not in c]].sort_values(list(res.columns[:4])).reset_index(drop=True)
    return best, res

@pytest.mark.slow
def test_a_killed_sweep_on_postgres_reruns_to_the_same_results_and_leaves_no_orphan(pg, tmp_path):
    import psutil
    t0 = time.time()
    sweep(pg, tmp_path, "plain")                                          # the uninterrupted reference, --cores 3
    t_plain = time.time() - t0
    p = sweep(pg, tmp_path, "killed", wait=False)
    st = open_storage(pg["url"], tmp_path / "x")
    deadline = time.time() + 600
    while time.time() < deadline:           # kill when a study has a finished trial and a running one
        time.sleep(1)
        names = [n for n in optuna.get_all_study_names(st) if n.startswith("killed__")]
        ts = [t for n in names for t in optuna.load_study(study_name=n, storage=st).get_trials(deepcopy=False)]
        if any(t.state == S.COMPLETE for t in ts) and any(t.state == S.RUNNING for t in ts): break
        assert p.poll() is None, p.stdout.read()[-3000:]
    else: pytest.fail("the sweep never reached a running trial")
    tree = psutil.Process(p.pid).children(recursive=True)
    assert any("ipykernel" in " ".join(c.cmdline()) for c in tree if c.is_running()), "no kernel was running"
    p.send_signal(signal.SIGKILL); p.wait(30)                     # only Snakemake itself: its jobs must follow it
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"orphans of the killed sweep: {[(c.pid, c.cmdline()[:4]) for c in alive]}"
    sweep(pg, tmp_path, "killed", unlock=True)                            # a SIGKILLed Snakemake leaves its lock behind
    sweep(pg, tmp_path, "killed")                                         # the rerun resumes the studies
    b_plain, r_plain = outcome(tmp_path, "plain")
    b_killed, r_killed = outcome(tmp_path, "killed")
    assert b_killed == b_plain
    import pandas as pd
    pd.testing.assert_frame_equal(r_killed, r_plain)
    released = [t for n in optuna.get_all_study_names(st) if n.startswith("killed__")
                for t in optuna.load_study(study_name=n, storage=st).get_trials()
                if t.user_attrs.get("fail_reason") == "interrupted"]
    assert released and all("has ended" in t.user_attrs["recovered"] for t in released)
    print(f"reduced sweep on PostgreSQL, --cores 3: {t_plain:.0f} s uninterrupted; "
          f"killed and rerun in {time.time() - t0 - t_plain:.0f} s; "
          f"{len(released)} interrupted trial(s) recovered")


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_leaves_no_orphan(tmp_path):
    "Ctrl-C (SIGINT to the terminal's process group) while notebooks run: Snakemake, its jobs and kernels all end."
    import psutil
    env = {**ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNTHTRIAL_RESULTS": str(tmp_path / "results"), "SYNTHTRIAL_FIGURES": str(tmp_path / "figures")}
    target = tmp_path / "results" / "sweep" / "ctrlc" / "eval" / "myeloid" / "gaussian_copula" / "results.csv"
    cmd = [str(BIN / "snakemake"), "--scheduler", "greedy", "--cores", "2", "--rerun-incomplete", "--config",
           "models=[gaussian_copula]", "objectives=[compound,fidelity]", "datasets=[myeloid]", "name=ctrlc",
           "--", str(target)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)      # its own process group, as a terminal gives `make quick`
    deadline, tree = time.time() + 300, []
    while time.time() < deadline:
        time.sleep(1)
        tree = psutil.Process(p.pid).children(recursive=True)
        if any("ipykernel" in " ".join(c.cmdline()) for c in tree if c.is_running()): break
        assert p.poll() is None
    else: pytest.fail("no kernel started")
    time.sleep(3)
    tree = psutil.Process(p.pid).children(recursive=True)
    os.killpg(p.pid, signal.SIGINT)
    p.wait(120)
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"orphans after Ctrl-C: {[(c.pid, c.cmdline()[:4]) for c in alive]}"
