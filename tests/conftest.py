import os, sys, pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test (minutes); run with --slow or `make test-slow`")

def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"): return
    skip = pytest.mark.skip(reason="slow: run with --slow (make test-slow)")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)

@pytest.fixture
def isolated_outputs(tmp_path, monkeypatch):
    "Send results and figures of a test to a temporary folder."
    monkeypatch.setenv("SYNTHTRIAL_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SYNTHTRIAL_FIGURES", str(tmp_path / "figures"))
    return tmp_path

@pytest.fixture(scope="module")
def myeloid():
    "(train, test, schema) of myeloid; a test module may define its own fixture of this name instead."
    from synthtrial.data import load_split
    return load_split("myeloid")

@pytest.fixture(scope="module")
def gbsg2():
    "(train, test, schema) of gbsg2."
    from synthtrial.data import load_split
    return load_split("gbsg2")
