"""CTAB-GAN+ (synthtrial.ctabgan): tiny-budget fits on real data, determinism, schema-valid output, search space,
failures."""
import numpy as np, optuna, pandas as pd, pytest, torch
from synthtrial.core import ParameterError
from synthtrial.data import load_split
from synthtrial.generators import Generator, GeneratorError
import synthtrial.ctabgan as ctabgan
from synthtrial.ctabgan import CTABGANPlus, CTABTransformer, CondSampler

SMALL = {"batch_size": 128, "num_channels": 16, "random_dim": 16, "class_dim": (64,)}   # a small, fast network

@pytest.fixture(scope="module")
def fitted(myeloid):
    train, _, schema = myeloid
    return CTABGANPlus(budget=0.02).fit(train, schema, seed=0)

def test_transformer_round_trips_real_data(myeloid):
    train, _, schema = myeloid
    data = schema.validate(train)[schema.modelled]
    tf = CTABTransformer(schema).fit(data, seed=0)
    kinds = {c.name: c.kind for c in tf.codes}
    assert kinds["trt"] == "categorical" and kinds["CRTM"] == "mixed" and kinds["EFSTM"] == "mixed"
    dec, ok = tf.decode(tf.transform(data))
    assert ok.all()
    for c in data.columns:
        if schema[c].kind == "categorical":
            assert list(dec[c]) == list(data[c])
        else:
            a, b = dec[c].astype(float).to_numpy(), data[c].astype(float).to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b)), c
            np.testing.assert_allclose(a[~np.isnan(b)], b[~np.isnan(b)], rtol=1e-4, atol=1e-3, err_msg=c)

def test_condition_vector_is_one_hot_on_one_block(myeloid):
    train, _, schema = myeloid
    data = schema.validate(train)[schema.modelled]
    tf = CTABTransformer(schema).fit(data, seed=0)
    enc = tf.transform(data)
    cs = CondSampler(enc, tf.blocks)
    c, m, col, opt = cs.train_batch(400, np.random.default_rng(0))
    assert c.shape == (400, cs.dim) and (c.sum(1) == 1).all() and (m.sum(1) == 1).all()
    assert len(set(col)) > 1
    rows = cs.real_rows(col, opt, np.random.default_rng(1))
    assert all(enc[i, cs.blocks[b][0] + o] == 1 for i, b, o in zip(rows, col, opt))

def test_fit_sample_tiny_budget_validates(myeloid, fitted):
    train, _, schema = myeloid
    assert (
        fitted.scaled("epochs") == 3 and len(fitted.losses) == 3 and fitted.target == "OSTM"
    )  # auto: the first target's column (OS_2y = OSTM < 730.5)
    syn = fitted.sample(400, seed=1)
    assert syn.shape == (400, len(schema.names))
    pd.testing.assert_frame_equal(schema.validate(syn), syn)
    assert syn["trt"].isin(["A", "B"]).all() and syn["CR1"].isin([0, 1]).all()
    assert syn["OSTM"].notna().all() and syn["OSTM"].between(train["OSTM"].min(), train["OSTM"].max()).all()
    assert syn["OSTM"].nunique() > 50          # a continuous column stays continuous

def test_same_seed_same_rows(myeloid, fitted):
    train, _, schema = myeloid
    a = fitted.sample(200, seed=5)
    pd.testing.assert_frame_equal(a, fitted.sample(200, seed=5))
    assert not a.equals(fitted.sample(200, seed=6))
    again = CTABGANPlus(budget=0.02).fit(train, schema, seed=0)
    pd.testing.assert_frame_equal(a, again.sample(200, seed=5))
    other = CTABGANPlus(budget=0.02).fit(train, schema, seed=1)
    assert not a.equals(other.sample(200, seed=5))

def test_save_load(tmp_path, fitted):
    path = fitted.save(tmp_path / "ct.pkl")
    pd.testing.assert_frame_equal(Generator.load(path).sample(50, seed=2), fitted.sample(50, seed=2))

def test_search_space_matches_the_study_and_a_trial_fits(myeloid):
    train, _, schema = myeloid
    ft = optuna.trial.FixedTrial({"lr": 2e-5, "n_layers": 4, "d_first": 6, "d_middle": 8, "d_last": 7, "steps": 100,
                                  "batch_size": 7, "random_dim": 4, "num_channels": 4})
    p = CTABGANPlus.search_space(ft)
    assert p == {"lr": 2e-5, "class_dim": (64, 256, 256, 128), "epochs": 100, "batch_size": 128,
                 "random_dim": 16, "num_channels": 16}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    q = CTABGANPlus.search_space(trial)
    assert 2e-5 <= q["lr"] <= 2e-3 and q["epochs"] in (100, 300, 500, 1000, 5000)
    assert 128 <= q["batch_size"] <= 1024 and 16 <= q["random_dim"] <= 128 and 16 <= q["num_channels"] <= 64
    assert 1 <= len(q["class_dim"]) <= 4 and all(64 <= h <= 256 for h in q["class_dim"])
    for params in (p, q):
        g = CTABGANPlus(params, budget=2 / params["epochs"]).fit(train, schema, seed=0)
        assert g.scaled("epochs") == 2 and len(schema.validate(g.sample(60, seed=0))) == 60
    assert CTABGANPlus.default_params()["class_dim"] == (256, 256, 256, 256)

def test_no_target_and_regression_target(myeloid):
    train, _, schema = myeloid
    g = CTABGANPlus({**SMALL, "target": None}, budget=0.02).fit(train, schema, seed=0)
    assert g.target is None and all(l[2] == 0 for l in g.losses)
    r = CTABGANPlus({**SMALL, "target": "EFSTM"}, budget=0.02).fit(train, schema, seed=0)
    assert r.target == "EFSTM" and all(np.isfinite(l[2]) and l[2] > 0 for l in r.losses)
    schema.validate(r.sample(80, seed=0))

def test_bad_parameters(myeloid):
    train, _, schema = myeloid
    with pytest.raises(ParameterError, match="target='nope' is not a modelled column"):
        CTABGANPlus({"target": "nope"}, budget=0.01).fit(train, schema)
    with pytest.raises(ParameterError, match=r"num_channels=0 is outside the search space"):
        CTABGANPlus({"num_channels": 0}, budget=0.01)
    with pytest.raises(ParameterError, match=r"lr=0.1 is outside the search space"):
        CTABGANPlus({"lr": 0.1})
    with pytest.raises(ParameterError, match=r"class_dim=\(512,\) is outside the search space"):
        CTABGANPlus({"class_dim": (512,)})
    CTABGANPlus.check_params(CTABGANPlus.default_params())     # the study's defaults are allowed
    with pytest.raises(ParameterError, match=r"unknown hyperparameters \['epoch'\]"):
        CTABGANPlus({"epoch": 3})

def test_nan_loss_and_nan_output_raise_generator_error(myeloid, fitted, monkeypatch):
    train, _, schema = myeloid
    import copy
    broken = copy.deepcopy(fitted)
    with torch.no_grad():
        for p in broken.G.parameters(): p.fill_(float("nan"))
    with pytest.raises(GeneratorError, match="ctabgan_plus.*NaN"):
        broken.sample(10, seed=0)
    real_activate = ctabgan._activate
    monkeypatch.setattr(ctabgan, "_activate", lambda raw, blocks, gen: real_activate(raw, blocks, gen) * float("nan"))
    with pytest.raises(GeneratorError, match="ctabgan_plus.*loss became nan in epoch 1"):
        CTABGANPlus(budget=0.01).fit(train, schema, seed=0)

@pytest.mark.slow
@pytest.mark.parametrize("name", ["aml_sal", "colon", "actg320", "gbsg2"])
def test_every_other_builtin_dataset_fits_with_a_tiny_budget(name):
    train, _, schema = load_split(name)
    g = CTABGANPlus(SMALL, budget=0.007).fit(train, schema, seed=0)
    assert g.scaled("epochs") == 1
    syn = g.sample(150, seed=0)
    pd.testing.assert_frame_equal(schema.validate(syn), syn)
    assert syn.shape == (150, len(schema.names))
