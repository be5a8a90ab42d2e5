"Clinical rules (synthtrial.constraints) and enforcement strategies (synthtrial.enforce) on real data."
from pathlib import Path
import numpy as np, pandas as pd, pytest
from synthtrial.core import ParameterError, SynthtrialError
from synthtrial.schema import SchemaError
from synthtrial.data import DATASETS, load_dataset
from synthtrial.constraints import ConstraintError, Rule, RuleSet, available_rule_sets, rules_for
from synthtrial.enforce import (Enforcer, EnforcementError, Reparam, independent_columns_sampler, nearest_valid_replace,
                                rejection_sample, repair)

@pytest.fixture(scope="module")
def myeloid():
    df, schema = load_dataset("myeloid")
    return df, schema, rules_for("myeloid", schema=schema)

# ---------------------------------------------------------------- rule sets and real-data counts
def test_builtin_rule_sets_parse_and_roundtrip():
    names = available_rule_sets()
    assert sorted(set(DATASETS) - set(names)) == []      # every registered dataset ships its rules
    for name in names:
        rs = rules_for(name)
        assert rs.name == name and len(rs) >= 3 and len(rs.enforced) >= 3
        assert RuleSet.from_yaml(rs.to_yaml()).to_dict() == rs.to_dict()
        assert all(r.description for r in rs), name

def _pandas_counts_myeloid(df):
    "Violation counts computed with plain pandas, independently of the rule engine."
    cr = df.CR1 == 1
    both = lambda a, b: df[a].notna() & df[b].notna()
    return {
        "efs_le_os": int((df.EFSTM > df.OSTM).sum()),
        "ostm_positive": int((df.OSTM <= 0).sum()),
        "efstm_positive": int((df.EFSTM <= 0).sum()),
        "crtm_positive": int((df.CRTM <= 0).sum()),
        "os_death_implies_efs_event": int(((df.OSSTAT == 1) & (df.EFSSTAT == 0)).sum()),
        "efs_censored_implies_efs_eq_os": int(((df.EFSSTAT == 0) & (df.EFSTM != df.OSTM)).sum()),
        "no_cr_implies_efs_event": int(((df.CR1 == 0) & (df.EFSSTAT == 0)).sum()),
        "relapse_implies_cr": int(((df.RELAPSE == 1) & (df.CR1 == 0)).sum()),
        "crtm_le_ostm": int((both("CRTM", "OSTM") & (df.CRTM > df.OSTM)).sum()),
        "txtm_le_ostm": int((both("TXTM", "OSTM") & (df.TXTM > df.OSTM)).sum()),
        "cr_iff_crtm": int((cr != df.CRTM.notna()).sum()),
        "hsct_iff_txtm": int(((df.HSCT == 1) != df.TXTM.notna()).sum()),
        "rfs_only_for_cr": int((cr != df.RFSTM.notna()).sum()),
    }

def test_myeloid_real_violations_match_pandas(myeloid):
    df, schema, rules = myeloid
    rep = rules.violation_report(df, schema=schema)
    expected = _pandas_counts_myeloid(df)
    got = rep.counts()
    for k, v in expected.items(): assert got[k] == v, k
    assert expected["relapse_implies_cr"] == 20                   # the data is not perfect (datasets.md)
    assert rep.n_invalid == int((~rules.check(df).all(axis=1)).sum()) == 20
    assert rep.n_invalid_enforced == 0 and not rules["relapse_implies_cr"].enforce
    ex = rep.examples["relapse_implies_cr"]
    assert (ex.RELAPSE == 1).all() and (ex.CR1 == 0).all()
    # NaN rows are not checked (nan: pass)
    assert rep.table.loc["crtm_le_ostm", "n_checked"] == int(df.CRTM.notna().sum())

SURV = {  # dataset -> (le rule, time, reference time, death rule, death, event)
    "aml_sal": ("efs_le_os", "EFSTM", "OSTM", "os_death_implies_efs_event", "OSSTAT", "EFSSTAT"),
    "colon": ("rfs_le_os", "RFSTM", "OSTM", "os_death_implies_rfs_event", "OSSTAT", "RFSSTAT"),
    "actg320": ("ad_le_os", "ADTM", "OSTM", "os_death_implies_ad_event", "OSSTAT", "ADSTAT"),
    "gbsg2": ("rfs_le_os", "RFSTM", "OSTM", "os_death_implies_rfs_event", "OSSTAT", "RFSSTAT"),
}

@pytest.mark.parametrize("name", sorted(SURV))
def test_other_datasets_real_violations(name):
    df, schema = load_dataset(name)
    rs = rules_for(name, schema=schema)
    le, t, ref, death, d, e = SURV[name]
    rep = rs.violation_report(df, schema=schema)
    assert rep.counts()[le] == int((df[t].notna() & df[ref].notna() & (df[t] > df[ref])).sum())
    assert rep.counts()[death] == int(((df[d] == 1) & (df[e] == 0)).sum())
    assert rep.counts()["ostm_positive"] == int((df.OSTM <= 0).sum())
    if name == "colon":   # the R help page's "wart": nodes and node4 disagree for some patients
        known = df.nodes.notna()
        assert rep.counts()["nodes_gt4_iff_node4"] == int(((df.nodes > 4) != (df.node4 == 1))[known].sum())

def test_aml_sal_raw_csv_counts():
    """The CTAB-GAN+ release through the library (verified cache, $SYNTHTRIAL_AML_SAL_DIR or download): no skip,
    the loader's error if absent."""
    from synthtrial.data import get_dataset
    aml = get_dataset("aml_sal").load_raw()       # the raw file exactly as published
    assert len(aml) == 1606 and len(load_dataset("aml_sal")[0]) == 1606
    rep = rules_for("aml_sal").violation_report(aml)
    c = rep.counts()
    assert [c[k] for k in ("os_death_implies_efs_event", "efs_censored_implies_efs_eq_os",
                           "no_cr_implies_efs_event")] == [13, 17, 7]
    assert c["efs_le_os"] == int((aml.EFSTM > aml.OSTM).sum()) == 0        # the study enforced this one ...
    assert c["os_death_implies_efs_event"] == int(((aml.OSSTAT == 1) & (aml.EFSSTAT == 0)).sum()) > 0   # ... not these
    assert c["efs_censored_implies_efs_eq_os"] == int(((aml.EFSSTAT == 0) & (aml.EFSTM != aml.OSTM)).sum())
    assert c["no_cr_implies_efs_event"] == int(((aml.CR1 == 0) & (aml.EFSSTAT == 0)).sum())
    assert c["amlstat_levels"] == 0 and rep.table.loc["amlstat_levels", "n_checked"] == int(aml.AMLSTAT.notna().sum())

def test_nan_semantics_are_explicit():
    d = pd.DataFrame({"A": [1.0, np.nan, 3.0], "B": [2.0, 2.0, 2.0]})
    assert Rule("r", "le", {"left": "A", "right": "B"}).holds(d).tolist() == [True, True, False]
    assert Rule("r", "le", {"left": "A", "right": "B"}, nan="fail").holds(d).tolist() == [True, False, False]
    strict = Rule("r", "le", {"left": "A", "right": "B", "strict": True})
    assert strict.holds(pd.DataFrame({"A": [2.0], "B": [2.0]})).tolist() == [False]

# ---------------------------------------------------------------- bad input
def test_unknown_column_names_rule_and_column(myeloid):
    df, schema, _ = myeloid
    rs = RuleSet([Rule("efs_le_os", "le", {"left": "EFSTMX", "right": "OSTM"})])
    with pytest.raises(ConstraintError, match=r"rule 'efs_le_os': unknown column 'EFSTMX'"): rs.check(df)
    with pytest.raises(ConstraintError, match=r"unknown column 'EFSTMX' \(not in schema 'myeloid'\)"):
        rs.validate(schema)

def test_wrong_dtype(myeloid):
    df, schema, _ = myeloid
    with pytest.raises(ConstraintError, match=r"rule 'bad': kind 'le' needs numeric columns, but 'trt' is categorical"):
        RuleSet([Rule("bad", "le", {"left": "trt", "right": "OSTM"})], schema=schema)
    with pytest.raises(ConstraintError, match=r"op '<=' needs a numeric column, but 'flt3'"):
        RuleSet([Rule("bad", "check", {"condition": {"column": "flt3", "op": "<=", "value": 1}})]).check(df)
    with pytest.raises(ConstraintError, match=r"'OSSTAT' is boolean, so value 'yes' must be a number"):
        RuleSet([Rule("bad", "check", {"condition": {"column": "OSSTAT", "op": "==", "value": "yes"}})], schema=schema)

def test_unknown_category(myeloid):
    _, schema, _ = myeloid
    with pytest.raises(ConstraintError, match=r"rule 'arm': unknown category 'C' for column 'trt'"):
        RuleSet([Rule("arm", "check", {"condition": {"column": "trt", "op": "in", "value": ["A", "C"]}})],
                schema=schema)
    with pytest.raises(ConstraintError, match=r"rule 'lv': unknown category 'D'"):
        RuleSet([Rule("lv", "categories", {"column": "flt3", "levels": ["A", "D"]})], schema=schema)

def test_malformed_yaml_names_file(tmp_path):
    p = tmp_path / "my_trial_rules.yaml"
    p.write_text("name: x\nrules:\n  - {name: a, kind: le, left: A\n")
    with pytest.raises(ConstraintError, match=r"my_trial_rules\.yaml: malformed YAML"): RuleSet.from_yaml(p)
    p.write_text("name: x\nrules:\n  - {name: a, kind: lesser, left: A, right: B}\n")
    with pytest.raises(ConstraintError, match=r"my_trial_rules\.yaml: rule 'a': kind 'lesser' is not allowed"):
        RuleSet.from_yaml(p)
    p.write_text("name: x\nrules: !!python/object/apply:os.getcwd []\n")     # no code is ever run from YAML
    with pytest.raises(ConstraintError, match="malformed YAML"): RuleSet.from_yaml(p)
    with pytest.raises(ConstraintError, match="rules file not found"): RuleSet.from_yaml(tmp_path / "missing.yaml")

def test_empty_data(myeloid):
    df, _, rules = myeloid
    with pytest.raises(ConstraintError, match=r"rule set 'myeloid': the data is empty"): rules.check(df.iloc[:0])

def test_schema_contradicting_data(myeloid):
    df, schema, rules = myeloid
    bad = df.copy(); bad.loc[3, "flt3"] = "Z"
    with pytest.raises(SchemaError, match=r"column 'flt3' \(categorical\): unknown categories 'Z'"):
        rules.check(bad, schema=schema)
    bad = df.copy(); bad.loc[5, "OSSTAT"] = 2
    with pytest.raises(SchemaError, match=r"column 'OSSTAT' \(boolean\): values 2\.0 are not 0/1"):
        rules.violation_report(bad, schema=schema)

# ---------------------------------------------------------------- enforcement
@pytest.fixture(scope="module")
def shuffled(myeloid):
    df, _, _ = myeloid
    return independent_columns_sampler(df, id_column="id")

def test_bad_generator_violates(myeloid, shuffled):
    df, _, rules = myeloid
    fake = shuffled(600, seed=3)
    assert fake.equals(shuffled(600, seed=3))
    rep = rules.violation_report(fake)
    assert rep.invalid_rate_enforced > 0.5
    assert rep.counts()["efs_le_os"] == int((fake.EFSTM > fake.OSTM).sum()) > 0
    assert rep.counts()["relapse_implies_cr"] == int(((fake.RELAPSE == 1) & (fake.CR1 == 0)).sum()) > 0

def test_reparam_roundtrip_exact(myeloid):
    df, schema, rules = myeloid
    rp = Reparam.from_rules(rules)
    assert rp.pairs == [("EFSTM", "OSTM")]
    fw = rp.forward(df)
    assert "EFSTM" not in fw and (fw.EFSTM_GAP == df.OSTM - df.EFSTM).all()
    pd.testing.assert_frame_equal(rp.inverse(fw), df, check_exact=True)
    rl = Reparam.from_rules(rules, log1p=True)
    pd.testing.assert_frame_equal(rl.inverse(rl.forward(df)), df, rtol=1e-12)
    neg = rl.forward(df); neg.loc[7, "EFSTM_GAP"] = -np.log1p(30.0)               # a negative gap keeps its sign
    assert rl.inverse(neg).loc[7, "EFSTM"] == pytest.approx(df.loc[7, "OSTM"] + 30)
    ts = rp.forward_schema(schema)
    ts.validate(fw)
    assert ts["EFSTM_GAP"].kind == "numeric" and "EFS" not in [e.name for e in ts.endpoints]

def _run(rules, df, schema, strategies, n=250, seed=11, **kw):
    enf = Enforcer(rules, strategies, **kw)
    tr, ts = enf.prepare_training(df, schema)
    return enf.postprocess(independent_columns_sampler(tr, id_column="id"), n, seed)

COMBOS = [["reparam"], ["repair"], ["reparam", "repair"], ["rejection"], ["repair", "rejection"],
          ["reparam", "repair", "rejection"],
          ["nearest"], ["repair", "nearest"], ["reparam", "repair", "nearest"]]

@pytest.mark.parametrize("strategies", COMBOS, ids=["+".join(c) for c in COMBOS])
def test_each_strategy_drives_its_rules_to_zero(myeloid, strategies):
    df, schema, rules = myeloid
    out, rep = _run(rules, df, schema, strategies, oversample=40, max_rounds=20)
    assert len(out) == 250 and list(out.columns) == list(df.columns)
    base_out, base = _run(rules, df, schema, ["none"])
    covered = set()
    if "reparam" in strategies: covered |= {"efs_le_os"}
    if "repair" in strategies: covered |= {r.name for r in rules if r.enforce and r.repair}
    if "rejection" in strategies or "nearest" in strategies: covered |= {r.name for r in rules if r.enforce}
    chk = rules.check(out)
    violated_before = [r for r in covered if base.after.loc[r, "n_violations"] > 0]
    assert "efs_le_os" in violated_before and len(violated_before) >= (1 if strategies == ["reparam"] else 4)
    for r in covered:
        assert chk[r].all(), (strategies, r)
        assert rep.after.loc[r, "n_violations"] == 0
    # the rules a strategy does not cover stay measurable: the report counts them exactly as pandas does
    assert rep.after.loc["relapse_implies_cr", "n_violations"] == int(((out.RELAPSE == 1) & (out.CR1 == 0)).sum())
    if "rejection" not in strategies and "nearest" not in strategies:
        assert rep.after.loc["cr_iff_crtm", "n_violations"] == int(((out.CR1 == 1) != out.CRTM.notna()).sum()) > 0
    again, _ = _run(rules, df, schema, strategies, oversample=40, max_rounds=20)
    assert out.equals(again)                                                  # seeded and deterministic
    if "rejection" in strategies: assert 0 < rep.acceptance_rate <= 1
    if "nearest" in strategies:
        first = _first_after_transform(rules, df, schema, strategies)
        assert rep.n_replaced == int((~rules.is_valid(first, True)).sum())

def _first_after_transform(rules, df, schema, strategies):
    enf = Enforcer(rules, [s for s in strategies if s != "nearest"] or ["none"])
    tr, _ = enf.prepare_training(df, schema)
    return enf._transform(independent_columns_sampler(tr, id_column="id")(250, 11))

def test_none_changes_nothing(myeloid, shuffled):
    df, schema, rules = myeloid
    out, rep = _run(rules, df, schema, ["none"])
    assert out.equals(independent_columns_sampler(df, id_column="id")(250, 11))
    assert rep.invalid_rate_before == rep.invalid_rate_after > 0.5

def test_rejection_unreachable_is_clear(myeloid, shuffled):
    _, _, rules = myeloid
    with pytest.raises(EnforcementError, match=r"rejection: acceptance rate \d+\.\d+% .* cannot reach n=300 within "
                                               r"max_rounds=1"):
        rejection_sample(shuffled, 300, rules, seed=1, oversample=1.5, max_rounds=1)
    with pytest.raises(EnforcementError, match=r"nearest: only \d+ valid candidates for \d+ invalid rows"):
        nearest_valid_replace(shuffled(100, 1), shuffled, rules, seed=1, max_rounds=1)

def test_enforcer_parameters(myeloid):
    _, _, rules = myeloid
    with pytest.raises(ParameterError, match="alternatives"): Enforcer(rules, ["rejection", "nearest"])
    with pytest.raises(ParameterError, match=r"strategy='magic' is not allowed"): Enforcer(rules, ["magic"])
    no_reparam = rules.subset([n for n in rules.names if n != "efs_le_os"])
    with pytest.raises(ParameterError, match="no enforced 'le' rule marked reparam"): Enforcer(no_reparam, ["reparam"])

def test_bounded_parameters_use_the_core_vocabulary(myeloid, shuffled):
    "oversample goes through core.check_number: one wording for every bounded number (a bool is no number)."
    _, _, rules = myeloid
    for bad in (0.5, True, "2", float("nan")):
        with pytest.raises(ParameterError, match=r"oversample=.* is not allowed; it must be a number >= 1"):
            rejection_sample(shuffled, 10, rules, oversample=bad)

def test_patched_methods_behave_as_class_members():
    "Rule and RuleSet are grown with fastcore's @patch: classmethods stay classmethods, properties stay properties."
    class MyRule(Rule): pass
    r = MyRule.from_dict({"name": "x", "kind": "le", "left": "A", "right": "B"})
    assert type(r) is MyRule and r.expression == "A <= B" and r.columns == ["A", "B"]
    class MyRuleSet(RuleSet): pass
    rs = MyRuleSet.from_yaml("name: t\nrules:\n  - {name: x, kind: le, left: A, right: B}\n")
    assert type(rs) is MyRuleSet and rs.enforced.names == ["x"] and isinstance(RuleSet.enforced, property)
    assert rs.check(pd.DataFrame({"A": [1.0, 3.0], "B": [2.0, 2.0]}))["x"].tolist() == [True, False]

def test_repair_counts_match(myeloid, shuffled):
    _, _, rules = myeloid
    fake = shuffled(400, seed=5)
    fixed, counts = repair(fake, rules)
    assert list(counts) == ["efs_le_os", "os_death_implies_efs_event", "efs_censored_implies_efs_eq_os",
                            "no_cr_implies_efs_event"]
    assert counts["efs_le_os"] == int((fake.EFSTM > fake.OSTM).sum()) > 0       # repaired first, in rule order
    assert counts["os_death_implies_efs_event"] == int(((fake.OSSTAT == 1) & (fake.EFSSTAT == 0)).sum()) > 0
    assert (fixed.loc[fake.CR1 == 0, "EFSSTAT"] == 1).all()
    assert (fixed.EFSTM <= fixed.OSTM).all() and ((fixed.EFSSTAT == 1) | (fixed.EFSTM == fixed.OSTM)).all()

def test_implies_tolerance_on_real_times():
    """AML times are stored with seven decimals: the stated tol (0.001 months) changes no real count, a tiny shift
    passes only with it."""
    aml, schema = load_dataset("aml_sal")
    rule = rules_for("aml_sal", schema)["efs_censored_implies_efs_eq_os"]
    assert rule.spec["tol"] == 0.001 and rules_for("aml_sal")["efs_le_os"].spec["tol"] == 0.001
    cens = aml[aml.EFSSTAT == 0]
    assert int((~rule.holds(aml)).sum()) == int((cens.EFSTM - cens.OSTM).abs().gt(0.001).sum()) == 17
    nudged = cens.assign(EFSTM=cens.OSTM + 0.0004)
    assert rule.holds(nudged).all()
    strict = Rule.from_dict({**rule.to_dict(), "tol": 0.0})
    assert not strict.holds(nudged).any()

def test_enforcement_warns_when_a_repair_moves_an_outcome_rate(myeloid):
    import warnings
    from synthtrial.enforce import RATE_TOLERANCE
    df, schema, _ = myeloid
    bad = RuleSet.from_dict({"name": "bad", "rules": [{"name": "efs_event_is_death", "kind": "implies",
        "if": {"column": "EFSSTAT", "op": "==", "value": 1}, "then": {"column": "OSSTAT", "op": "==", "value": 1},
        "repair": [{"set": "OSSTAT", "value": 1}]}]}, schema=schema)
    enf = Enforcer(bad, ["repair"]); enf.prepare_training(df, schema)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, rep = enf.postprocess(independent_columns_sampler(df, id_column="id"), 400, seed=1)
    t = rep.outcomes
    assert abs(t.loc["OSSTAT", "real"] - df.OSSTAT.mean()) < 1e-12
    assert abs(t.loc["OSSTAT", "after"] - out.OSSTAT.mean()) < 1e-12
    assert t.loc["OSSTAT", "after"] - t.loc["OSSTAT", "before"] > RATE_TOLERANCE
    assert any("OSSTAT's rate" in str(w.message) for w in caught) and rep.to_dict()["rate_warnings"]
    good = Enforcer(rules_for("myeloid", schema), ["none"]); good.prepare_training(df, schema)
    assert good.postprocess(independent_columns_sampler(df, id_column="id"), 400, seed=1)[1].rate_warnings == []
