"""The torchvision shim: in a fresh interpreter, torchvision and synthcity import only thanks to it."""
import subprocess, sys, textwrap, pytest

def run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)

def test_shim_makes_torchvision_and_synthcity_importable():
    r = run("""
        from synthtrial.compat import ensure_torchvision, torchvision_needs_shim
        state = ensure_torchvision()
        import torchvision
        from synthcity.plugins import Plugins
        assert not torchvision_needs_shim()
        print(state, 'tabular plugins:', len(Plugins(categories=['generic', 'privacy']).list()))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    state, _, n = r.stdout.strip().splitlines()[-1].partition(" tabular plugins: ")
    assert state in ("shimmed", "native") and int(n) > 5

def test_without_the_shim_torchvision_fails_here_or_loads_natively():
    # documents *why* the shim exists: on the CPU torch + PyPI torchvision pair, the bare import fails
    r = run("import torchvision")
    if r.returncode == 0:
        pytest.skip("torchvision loads natively in this environment; the shim is a no-op here")
    assert "torchvision::nms does not exist" in r.stderr

def test_shim_is_a_no_op_when_torchvision_is_already_loaded():
    r = run("""
        from synthtrial.compat import ensure_torchvision
        assert ensure_torchvision() in ('shimmed', 'native')
        assert ensure_torchvision() == 'native'
    """)
    assert r.returncode == 0, r.stderr[-2000:]
