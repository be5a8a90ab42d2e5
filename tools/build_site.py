#!/usr/bin/env python
"""Build synthtrial's offline HTML site with Jupyter Book 1.x (`make site`).

Assembles a book in `site/_book/` (never writes into nbs/, results/ or figures/) and builds it to
`site/_build/html/`:

- intro: nbs/index.ipynb (the README's source);
- API: the library notebooks nbs/[0-9]*.ipynb in numeric order, nbdev directives stripped, `#| hide` cells
  dropped, and after every `#| export` cell the signature and docstring of each public function/class
  (read from the source with `ast`, nothing is imported or executed);
- tutorials: nbs/tutorials/*.ipynb (whatever exists);
- runs: the executed experiment notebooks: every job record of each sweep (results/sweep/<name>/**/run.json)
  and the newest record of each stand-alone experiment (results/runs/<experiment>/*/run.json);
- figures and tables: one page per figures/<name>/ folder (and one for figures/*.json), built from each
  figure's JSON sidecar: PNG, caption, provenance (producer, run, parameters and seeds, commit), tables.

On a fresh clone results/ and figures/ are empty: those pages say so and tell the reader to run `make quick`.
Runs in the site's own environment (.venv-site, site/requirements-site.txt): only the standard library and
PyYAML are needed here; the notebooks are never executed (execute_notebooks: off).
"""
from __future__ import annotations

import argparse, ast, copy, json, os, re, shutil, subprocess, sys, time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)")
MAKE_QUICK = "Run `make quick` (or `make sweep`) first, then `make site` again."


# ---------------------------------------------------------------- notebooks
def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_nb(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


def src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def md_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def directives(code: str) -> list[str]:
    out = []
    for line in code.splitlines():
        m = DIRECTIVE.match(line)
        if m: out.append(m.group(1).lower())
        elif line.strip(): break
    return out


def strip_directives(code: str) -> str:
    lines = code.splitlines()
    while lines and (DIRECTIVE.match(lines[0]) or not lines[0].strip()): lines.pop(0)
    return "\n".join(lines)


def _sig(node) -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    ret = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"def {node.name}({ast.unparse(node.args)}){ret}"


def api_markdown(code: str) -> str | None:
    "Markdown documenting the public top-level functions and classes defined in `code` (None if there are none)."
    try: tree = ast.parse(code)
    except SyntaxError: return None
    names = None
    for node in tree.body:       # respect __all__ like nbdev does
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try: names = set(ast.literal_eval(node.value))
            except ValueError: pass
    parts = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): continue
        if node.name.startswith("_") or (names is not None and node.name not in names): continue
        doc = ast.get_docstring(node) or ""
        block = [f"### `{node.name}`", "", "```python", _sig(node), "```", "", doc]
        if isinstance(node, ast.ClassDef):
            meths = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and not m.name.startswith("_") and ast.get_docstring(m)]
            if meths:
                block += ["", "| method | what it does |", "|---|---|"]
                block += [
                    f"| `{m.name}` | {ast.get_docstring(m).splitlines()[0].replace('|', '&#124;')} |" for m in meths
                ]
        parts.append("\n".join(block).rstrip())
    return "\n\n".join(parts) if parts else None


def clean_outputs(nb: dict) -> dict:
    "Drop widget state and widget views: myst-nb would load the widget manager from a CDN for them."
    nb = copy.deepcopy(nb)
    nb.get("metadata", {}).pop("widgets", None)
    for c in nb.get("cells", []):
        c.get("metadata", {}).pop("widgets", None)
        for o in c.get("outputs", []) or []:
            if isinstance(o.get("data"), dict):
                o["data"].pop("application/vnd.jupyter.widget-view+json", None)
                o["data"].pop("application/vnd.jupyter.widget-state+json", None)
    return nb


def library_page(path: Path, api: bool = True) -> dict:
    "A library/tutorial notebook as a page: `#| hide` cells dropped, directives stripped, API after `#| export` cells."
    nb = clean_outputs(read_nb(path))
    cells = []
    for c in nb["cells"]:
        if c["cell_type"] != "code": cells.append(c); continue
        code = src(c); ds = directives(code)
        if "hide" in ds or "default_exp" in ds: continue
        c = dict(c, source=strip_directives(code))
        if not c["source"].strip() and not c.get("outputs"): continue
        cells.append(c)
        if api and ("export" in ds or "exports" in ds):
            doc = api_markdown(c["source"])
            if doc: cells.append(md_cell(doc))
    nb["cells"] = cells
    return nb


def intro_page(path: Path, root: Path = ROOT) -> dict:
    "The README's notebook as the intro page, with the evidence findings table generated as in the README."
    import importlib.util      # the README's generator: one place that turns the record into the findings table
    spec = importlib.util.spec_from_file_location("check_readme", ROOT / "tools" / "check_readme.py")
    cr = importlib.util.module_from_spec(spec); spec.loader.exec_module(cr)
    nb = library_page(path, api=False)
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":     # figures have their own pages here: only the findings table is expanded
            text = cr.FINDINGS.sub(lambda m: cr.findings_table(m.group(1).split(), root), src(c))
            c["source"] = cr.FIGURE.sub("", text)
    return nb


# ---------------------------------------------------------------- runs
def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def load_json(path: Path) -> dict | None:
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def run_records(results: Path) -> list[dict]:
    "Every job record of each sweep, and the newest record of each stand-alone experiment under results/runs/."
    recs = []
    for rec in sorted((results / "sweep").glob("*/**/run.json")):
        r = load_json(rec)
        if r is not None:
            recs.append({"path": rec, "record": r, "group": f"sweep {rec.relative_to(results / 'sweep').parts[0]}"})
    for exp in sorted(p for p in (results / "runs").glob("*") if p.is_dir()):
        cands = [(p, load_json(p)) for p in exp.glob("*/run.json")]
        cands = [(p, r) for p, r in cands if r is not None]
        if cands:
            p, r = max(cands, key=lambda pr: (str(pr[1].get("created_utc", "")), pr[0].stat().st_mtime))
            recs.append({"path": p, "record": r, "group": f"experiment {exp.name}"})
    return recs


def run_title(r: dict) -> str:
    rec = r["record"]
    exp = rec.get("experiment") or Path(rec.get("notebook") or r["path"].parent.name).stem
    params = {k: v for k, v in (rec.get("params") or {}).items()
              if k in ("dataset", "model", "objective", "seed", "n_rows", "budget")}
    return (
        f"{exp}: " + ", ".join(f"{k}={v}" for k, v in params.items()) if params else f"{exp}: {r['path'].parent.name}"
    )


def run_intro(r: dict, run_id: str) -> str:
    rec = r["record"]; git = rec.get("git") or {}
    params = {k: v for k, v in (rec.get("params") or {}).items() if k != "run_dir"}
    seeds = {k: v for k, v in params.items() if "seed" in k}
    rows = [
        ("run", f"`{run_id}`"),
        ("status", str(rec.get("status"))),
        ("wall time", f"{rec.get('wall_seconds')} s"),
        ("created", str(rec.get("created_utc"))),
        ("commit", f"`{git.get('sha')}`" + (" (dirty)" if git.get("dirty") else "")),
        ("seeds", ", ".join(f"{k}={v}" for k, v in seeds.items()) or "–"),
        ("parameters", "`" + json.dumps(params)[:400].replace("|", "&#124;").replace("`", "'") + "`"),
        ("python", str(rec.get("python"))),
    ]
    if rec.get("error"): rows.append(("error", str(rec["error"]).replace("|", "&#124;")[:300]))
    return ("```{note}\nThis page is the executed copy of the notebook kept as the record of this run "
            "(papermill); the site shows it as executed, it was not re-run.\n```\n\n| record | |\n|---|---|\n"
            + "\n".join(f"| {k} | {v} |" for k, v in rows))


def run_notebook(r: dict) -> Path | None:
    "The executed notebook of a run record (`executed` in run.json, else the run folder's only/first notebook)."
    rec = r["record"]; d = r["path"].parent
    nb_path = d / rec["executed"] if rec.get("executed") else next(iter(sorted(d.glob("*.ipynb"))), None)
    return nb_path if nb_path is not None and nb_path.is_file() else None


def run_page(r: dict, run_id: str) -> dict | None:
    nb_path = run_notebook(r)
    if nb_path is None: return None
    nb = clean_outputs(read_nb(nb_path))
    cells = nb["cells"]
    at = 1 if cells and cells[0]["cell_type"] == "markdown" and src(cells[0]).lstrip().startswith("# ") else 0
    if at == 0: cells.insert(0, md_cell(f"# {run_title(r)}"))
    cells.insert(1, md_cell(run_intro(r, run_id)))
    return nb


# ---------------------------------------------------------------- figures
def figure_groups(figures: Path) -> dict[str, list[Path]]:
    """Sidecars (JSON with a caption and a figure or table name) by group: 'figures' for figures/*.json, else the
    folder name."""
    groups: dict[str, list[Path]] = {}
    cands = [("figures", p) for p in sorted(figures.glob("*.json"))]
    cands += [
        (d.name, p) for d in sorted(x for x in figures.glob("*") if x.is_dir()) for p in sorted(d.rglob("*.json"))
    ]
    for g, p in cands:
        m = load_json(p)
        if m and "caption" in m and ("figure" in m or "table" in m): groups.setdefault(g, []).append(p)
    return groups


def _results_rel(run_dir: str, results: Path) -> str | None:
    "The run folder relative to results/ (also for sidecars written on another machine or clone)."
    p = Path(run_dir)
    try: return p.resolve().relative_to(results.resolve()).as_posix()
    except ValueError: pass
    parts = p.parts
    return "/".join(parts[parts.index("results") + 1:]) if "results" in parts else None


def provenance_md(m: dict, results: Path, run_docs: dict[str, str]) -> str:
    git = m.get("git") or {}
    params = {k: v for k, v in (m.get("params") or {}).items() if k != "run_dir"}
    seeds = {k: v for k, v in params.items() if "seed" in k}
    rd = m.get("run_dir") or (m.get("params") or {}).get("run_dir")
    rel = _results_rel(rd, results) if rd else None
    run = f"`results/{rel}`" if rel else "–"
    if rel and rel in run_docs: run += f" — {{doc}}`executed notebook </{run_docs[rel]}>`"
    elif rel: run += " (executed notebook not found in results/)"
    items = [("producer", f"`{m.get('producer')}`"), ("run", run),
             ("seeds", ", ".join(f"{k}={v}" for k, v in seeds.items()) or "–"),
             ("parameters", "`" + json.dumps(params)[:300].replace("`", "'") + "`" if params else "–"),
             ("commit", f"`{git.get('sha')}`" + (" (dirty)" if git.get("dirty") else "")),
             ("created", str(m.get("created_utc"))), ("python", str(m.get("python")))]
    return "\n".join(f"- **{k}**: {v}" for k, v in items)


def figure_page(group: str, sides: list[Path], fig_root: Path, results: Path, run_docs: dict[str, str]) -> str:
    "The Markdown page of one figures/ group; copies the PNGs into `fig_root`/<group>/ (book/figures/)."
    figs = [(p, load_json(p)) for p in sides]
    fig_items = [(p, m) for p, m in figs if "figure" in m]
    tab_items = [(p, m) for p, m in figs if "table" in m]
    title = "Figures and tables: top level" if group == "figures" else f"Figures and tables: {group}"
    out = [
        f"# {title}",
        "",
        f"{len(fig_items)} figures and {len(tab_items)} tables from "
        f"`figures/{'' if group == 'figures' else group + '/'}`, "
        "each with its caption and provenance (the JSON sidecar written beside it by the producing notebook).",
        "",
    ]
    img_dir = fig_root / slug(group)
    if fig_items: out += ["## Figures", ""]
    for p, m in fig_items:
        name = str(m["figure"]); png = p.with_suffix(".png")
        out += [f"### {name}", ""]
        if png.is_file():
            img_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(png, img_dir / png.name)
            out += [
                f"```{{figure}} {slug(group)}/{png.name}",
                f":name: fig-{slug(group)}-{slug(name)}",
                f":alt: {name}",
                "",
                str(m["caption"]),
                "```",
                "",
            ]
        else:
            out += [f"*(no PNG beside `{p.name}`)* {m['caption']}", ""]
        out += [provenance_md(m, results, run_docs), ""]
    if tab_items: out += ["## Tables", ""]
    for p, m in tab_items:
        name = str(m["table"]); md = p.with_suffix(".md")
        out += [f"### {name}", "", f"**{m['caption']}**", ""]
        body = (
            md.read_text(encoding="utf-8").split("\n\n", 1)[-1].strip()
            if md.is_file()
            else "*(no Markdown table beside the sidecar)*"
        )
        out += [body, "", provenance_md(m, results, run_docs), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- assembly
def toc_yaml(root: str, parts: list[tuple[str, list]]) -> str:
    "_toc.yml in Jupyter Book's jb-book format (written by hand: JSON strings are valid YAML scalars)."
    q = json.dumps
    lines = ["# generated by tools/build_site.py; do not edit", "format: jb-book", f"root: {root}", "parts:"]
    for caption, chapters in parts:
        lines += [f"  - caption: {q(caption)}", "    chapters:"]
        for ch in chapters:
            lines.append(f"      - file: {q(ch['file'])}")
            if ch.get("title"): lines.append(f"        title: {q(ch['title'])}")
            if ch.get("sections"):
                lines.append("        sections:")
                for s in ch["sections"]:
                    lines.append(f"          - file: {q(s['file'])}")
                    if s.get("title"): lines.append(f"            title: {q(s['title'])}")
    return "\n".join(lines) + "\n"


def assemble(book: Path, nbs: Path, results: Path, figures: Path, sections: set[str]) -> dict:
    "Write the book's sources into `book` (emptied first); returns counts of what went in."
    if book.exists(): shutil.rmtree(book)
    book.mkdir(parents=True)
    shutil.copy2(ROOT / "site" / "_config.yml", book / "_config.yml")
    shutil.copytree(ROOT / "site" / "_static", book / "_static")
    counts = {"api": 0, "tutorials": 0, "runs": 0, "figure_pages": 0, "figures": 0, "tables": 0}
    parts = []

    write_nb(intro_page(nbs / "index.ipynb"), book / "index.ipynb")

    if "api" in sections:
        chapters = []
        for p in sorted(nbs.glob("[0-9]*.ipynb")):
            write_nb(library_page(p), book / "api" / p.name)
            chapters.append({"file": f"api/{p.stem}"}); counts["api"] += 1
        if chapters: parts.append(("Library (API)", chapters))

    if "tutorials" in sections:
        chapters = []
        for p in sorted((nbs / "tutorials").glob("*.ipynb")):
            write_nb(library_page(p, api=False), book / "tutorials" / p.name)
            chapters.append({"file": f"tutorials/{p.stem}"}); counts["tutorials"] += 1
        if chapters: parts.append(("Tutorials", chapters))

    run_docs: dict[str, str] = {}
    if "runs" in sections:
        by_group: dict[str, list] = {}
        for r in run_records(results):
            run_id = r["path"].parent.relative_to(results).as_posix()
            nb = run_page(r, run_id)
            if nb is None: continue
            doc = "runs/" + "/".join(slug(x) for x in run_id.split("/")) + "/" + slug(run_notebook(r).stem)
            write_nb(nb, book / f"{doc}.ipynb")
            run_docs[run_id] = doc
            by_group.setdefault(r["group"], []).append(
                {"file": doc, "title": run_title(r), "id": run_id, "rec": r["record"]}
            )
            counts["runs"] += 1
        idx = ["# Experiment runs", "",
               "The executed experiment notebooks kept by papermill as the records of their runs (parameters, "
               "package versions, commit, wall time, status): every job of each sweep under `results/sweep/`, and "
               "the newest run of each stand-alone experiment under `results/runs/`.", ""]
        if not by_group:
            idx += ["```{important}", f"There are no run records under `results/` yet. {MAKE_QUICK}", "```"]
        for g, items in by_group.items():
            idx += [f"## {g} ({len(items)} runs)", "", "| run | status | wall s | notebook |", "|---|---|---|---|"]
            idx += [f"| `{it['id']}` | {it['rec'].get('status')} | {it['rec'].get('wall_seconds')} "
                    f"| {{doc}}`open </{it['file']}>` |" for it in items]
            idx.append("")
        (book / "runs").mkdir(parents=True, exist_ok=True)
        (book / "runs" / "index.md").write_text("\n".join(idx) + "\n", encoding="utf-8")
        sec = [{"file": it["file"], "title": it["title"]} for items in by_group.values() for it in items]
        parts.append(("Experiment runs", [{"file": "runs/index", "sections": sec} if sec else {"file": "runs/index"}]))

    if "figures" in sections:
        groups = figure_groups(figures)
        sec = []
        for g, sides in groups.items():
            (book / "figures").mkdir(parents=True, exist_ok=True)
            doc = f"figures/{slug(g)}"
            (book / f"{doc}.md").write_text(
                figure_page(g, sides, book / "figures", results, run_docs), encoding="utf-8"
            )
            sec.append({"file": doc}); counts["figure_pages"] += 1
            for p in sides:
                m = load_json(p); counts["figures" if "figure" in m else "tables"] += 1
        idx = ["# Figures and tables", "",
               "Every figure and table written by the experiment and figure notebooks, with its caption and its "
               "provenance: the producing notebook and run, parameters and seeds, git commit.", ""]
        if not groups:
            idx += ["```{important}", f"There are no figures under `figures/` yet. {MAKE_QUICK}", "```"]
        else:
            idx += [f"- {{doc}}`{('top level' if g == 'figures' else g)} </figures/{slug(g)}>`: "
                    f"{len(s)} figures and tables" for g, s in groups.items()]
        (book / "figures").mkdir(parents=True, exist_ok=True)
        (book / "figures" / "index.md").write_text("\n".join(idx) + "\n", encoding="utf-8")
        parts.append(
            ("Figures and tables", [{"file": "figures/index", "sections": sec} if sec else {"file": "figures/index"}])
        )

    (book / "_toc.yml").write_text(toc_yaml("index", parts), encoding="utf-8")
    return counts


# ---------------------------------------------------------------- offline check
class _Remote(HTMLParser):
    "Collects <script src>, <link href> (stylesheets, fonts, preloads) and <img src> that point at another host."
    def __init__(self):
        super().__init__(); self.found = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = a.get("src") if tag in ("script", "img", "iframe") else a.get("href") if tag == "link" else None
        if tag == "link" and (a.get("rel") or "").lower() in ("canonical", "alternate", "author", "license"): url = None
        if url and re.match(r"^(https?:)?//", url.strip()): self.found.append(f"<{tag}> {url}")


def remote_resources(html_dir: Path) -> dict[str, list[str]]:
    "Pages whose HTML (or CSS) would make a browser fetch something from the internet."
    bad = {}
    for page in sorted(html_dir.rglob("*.html")):
        p = _Remote(); p.feed(page.read_text(encoding="utf-8", errors="replace"))
        if p.found: bad[page.relative_to(html_dir).as_posix()] = p.found
    for css in sorted(html_dir.rglob("*.css")):
        hits = re.findall(r"@import\s+(?:url\()?['\"]?((?:https?:)?//[^'\")\s]+)|url\(['\"]?((?:https?:)?//[^'\")\s]+)",
                          css.read_text(encoding="utf-8", errors="replace"))
        hits = [a or b for a, b in hits]
        if hits: bad[css.relative_to(html_dir).as_posix()] = hits
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "site"), help="folder that receives _book/ (sources) and _build/html/")
    ap.add_argument("--nbs", default=str(ROOT / "nbs"))
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--figures", default=str(ROOT / "figures"))
    ap.add_argument("--sections", default="api,tutorials,runs,figures",
                    help="comma-separated subset of api,tutorials,runs,figures")
    ap.add_argument("--no-build", action="store_true", help="only assemble the book's sources")
    a = ap.parse_args(argv)
    out = Path(a.out).resolve(); book = out / "_book"
    sections = {s.strip() for s in a.sections.split(",") if s.strip()}
    unknown = sections - {"api", "tutorials", "runs", "figures"}
    if unknown: ap.error(f"unknown section(s) {sorted(unknown)}; choose from api,tutorials,runs,figures")
    t0 = time.perf_counter()
    counts = assemble(book, Path(a.nbs), Path(a.results), Path(a.figures), sections)
    print("site: assembled " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {book}")
    if a.no_build: return 0
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.exists():
        print(f"error: jupyter-book not found beside {sys.executable}; build with `make site` (it installs .venv-site "
              "from site/requirements-site.txt)", file=sys.stderr)
        return 2
    html = out / "_build" / "html"
    if html.exists(): shutil.rmtree(html)         # a full rebuild: no stale pages of runs that are gone
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    proc = subprocess.run([str(jb), "build", str(book), "--path-output", str(out), "--builder", "html", "--quiet"],
                          env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    warnings = [l for l in log.splitlines() if "WARNING" in l]
    if proc.returncode != 0 or not (html / "index.html").is_file():
        print(log[-6000:], file=sys.stderr)
        print(f"error: jupyter-book build failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    (out / "_build" / "build.log").write_text(log, encoding="utf-8")
    bad = remote_resources(html)
    if bad:
        for page, urls in list(bad.items())[:20]: print(f"error: {page} loads {urls[:3]}", file=sys.stderr)
        print(f"error: {len(bad)} pages would fetch resources from the internet; the site must work offline",
              file=sys.stderr)
        return 1
    print(f"site: {html / 'index.html'} ({sum(1 for _ in html.rglob('*.html'))} pages, "
          f"{len(warnings)} Sphinx warnings: "
          f"see {out / '_build' / 'build.log'}) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
