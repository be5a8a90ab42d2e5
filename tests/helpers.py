"Helpers shared by the test modules (importable: pytest puts tests/ on sys.path). Fixtures live in conftest.py."
import os, subprocess, sys, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    "Run `code` (dedented) in a fresh Python of this venv at the project root; `env` replaces os.environ if given."
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ if env is None else env, timeout=timeout)
