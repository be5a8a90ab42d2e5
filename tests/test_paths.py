"""tools/check_paths.py, the `make test` check that no tracked file names a machine's folders, can fail."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def check(tmp_path, text):
    f = tmp_path / "probe.py"; f.write_text(text)
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_paths.py"), str(f)], capture_output=True, text=True
    )

def test_machine_paths_are_refused(tmp_path):
    for text in ('AML = Path("/' 'work/shared/data/x.csv")\n', 'd = "/' 'home/alice/trial.csv"\n',
                 'd = "../' 'shared/data/aml"\n', 'p = Path(__file__).parents[2] / "sha' 'red" / "data"\n'):
        r = check(tmp_path, text)
        assert r.returncode == 1 and "probe.py:1:" in r.stdout, (text, r.stdout)

def test_ordinary_paths_pass(tmp_path):
    r = check(
        tmp_path, 'cache = "<root>/data/cache"\nfolds = tmp_path / "shared"\nurl = "file:///nonexistent/{file}"\n'
    )
    assert r.returncode == 0, r.stdout
