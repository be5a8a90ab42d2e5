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
