"The README's generated sections: the findings table and figures come from the committed evidence record."
import csv, importlib.util, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_readme", ROOT / "tools" / "check_readme.py")
cr = importlib.util.module_from_spec(spec); spec.loader.exec_module(cr)


def _findings(folder: Path, rows: list[dict]) -> None:
    (folder / "tables").mkdir(parents=True)
    with (folder / "tables" / "published_comparison.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["dataset", "finding", "published", "ours", "verdict", "reason"])
        w.writeheader(); w.writerows(rows)


def test_the_findings_table_is_built_from_each_sweeps_record_and_says_when_there_is_none(tmp_path):
    assert cr.findings_table(["figures/evidence"], tmp_path) == cr.NO_RECORD
    _findings(tmp_path / "figures" / "evidence", [
        {"dataset": "aml_sal", "finding": "TVAE improves with compound HPO", "published": "+60 %",
         "ours": "+21 % [8, 35]", "verdict": "supported", "reason": "the interval lies above 0"},
        {"dataset": "aml_sal", "finding": "a | b", "published": "x", "ours": "", "verdict": "not assessable",
         "reason": "r"}])
    _findings(tmp_path / "figures" / "evidence_myeloid", [
        {"dataset": "myeloid", "finding": "TVAE improves with compound HPO", "published": "+60 %",
         "ours": "-3 % [-9, 2]", "verdict": "inconclusive", "reason": "spans 0"},
        {"dataset": "myeloid", "finding": "CTAB-GAN+ improves with compound HPO", "published": "+38 %",
         "ours": "", "verdict": "not assessable", "reason": "ctabgan_plus is not in this sweep"}])   # left out
    table = cr.findings_table(["figures/evidence", "figures/evidence_myeloid", "figures/none"], tmp_path).splitlines()
    assert len(table) == 2 + 3                                           # header, rule, one line per finding row
    row = "| aml_sal (evidence) | TVAE improves with compound HPO | +60 % | +21 % [8, 35] | **supported** |"
    assert table[2] == row
    assert table[3].startswith("| aml_sal (evidence) | a \\| b | x | – |")   # a pipe escaped, no estimate: a dash
    assert table[4].startswith("| myeloid (evidence_myeloid) |") and table[4].endswith("**inconclusive** |")


def test_a_figure_comes_with_its_sidecar_caption_and_is_left_out_when_absent(tmp_path):
    assert cr.figure("figures/evidence/x.png", tmp_path) == ""
    (tmp_path / "figures" / "evidence").mkdir(parents=True)
    (tmp_path / "figures" / "evidence" / "x.png").write_bytes(b"png")
    (tmp_path / "figures" / "evidence" / "x.json").write_text(json.dumps({"caption": "Scores of every model."}))
    assert cr.figure("figures/evidence/x.png", tmp_path) == "![x](figures/evidence/x.png)\n\n*Scores of every model.*"
    text = cr.expand("a\n<!-- figure: figures/evidence/x.png -->\n<!-- figure: figures/evidence/y.png -->", tmp_path)
    assert text == ("a\n<!-- figure: figures/evidence/x.png -->\n\n![x](figures/evidence/x.png)\n\n"
                    "*Scores of every model.*\n<!-- figure: figures/evidence/y.png -->")


def test_the_readme_is_in_sync_with_its_notebook_and_the_record():
    assert (ROOT / "README.md").read_text() == cr.render(), "README.md is stale: run `make readme`"


def test_the_site_intro_carries_the_same_findings_table(tmp_path):
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    bs = importlib.util.module_from_spec(spec); spec.loader.exec_module(bs)
    _findings(tmp_path / "figures" / "evidence", [
        {"dataset": "aml_sal", "finding": "TVAE improves with compound HPO", "published": "+60 %",
         "ours": "+21 % [8, 35]", "verdict": "supported", "reason": "the interval lies above 0"}])
    page = "\n".join(bs.src(c) for c in bs.intro_page(ROOT / "nbs" / "index.ipynb", tmp_path)["cells"])
    assert "| aml_sal (evidence) | TVAE improves with compound HPO | +60 % | +21 % [8, 35] | **supported** |" in page
    assert "<!-- figure:" not in page and "<!-- findings:" not in page
