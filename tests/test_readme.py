"""The claims of the README and of the pages under docs/ that can be checked mechanically:
every name their Python snippets import exists, every `worldmodel` command line they show is a
command with those flags, every local file (and heading) they link exists, and every figure in
their result tables appears in the committed results file named for that table (rounded as
printed)."""

from __future__ import annotations

import ast
import csv
import importlib
import json
import re
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results/"
PAPER = [RESULTS + "paper_hopper.csv", RESULTS + "paper_hopper_traces.csv"]
README = "README.md"
BENCH = "docs/benchmarks/"
# Every page checked here: the README and the hand-written pages under docs/ (not docs/demo/: a
# report written by `worldmodel demo`, copied as it is).
PAGES = [README] + sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "docs").rglob("*.md")
    if "demo" not in p.relative_to(ROOT / "docs").parts
)
CONTROL = [RESULTS + "control.csv", RESULTS + "control_runs"]
# What the README's one benchmarks table was checked against, before it became a row per page
BENCHMARKS = [
    RESULTS + name
    for name in (
        "collection.csv",
        "training.csv",
        "imagination.csv",
        "control.csv",
        "hopper_models.csv",
        "control_runs",
    )
]

# Each result table, by its page and the first cell of its header row: the committed files its
# figures come from, and the factors a printed figure may be multiplied by to read as in the
# file ("x 1e-2"). Moving a table to another page moves its entry here.
# the per-run summaries of benchmarks/control.py, read as printed
RUNS = ([RESULTS + "control_runs"], (1,))
SOURCES: dict[tuple[str, str], tuple[list[str], tuple[float, ...]]] = {
    # the demo's table: its report's results.json, copied to docs/demo/ with its plot and video
    (README, "open-loop MSE (normalised)"): (["docs/demo/results.json"], (1,)),
    (BENCH + "world_models.md", "test dt (substeps)"): (
        [RESULTS + "world_models_summary.csv"],
        (1,),
    ),
    (BENCH + "world_models.md", "test dt (substeps), scored while the real episode runs"): (
        [RESULTS + "world_models_1024"],
        (1,),
    ),
    (BENCH + "control.md", "mean real return (std)"): (CONTROL, (1,)),
    (BENCH + "control.md", "benchmark"): (CONTROL, (1,)),
    (BENCH + "control.md", "seed 0, mean real return"): RUNS,
    (BENCH + "control.md", "batch160 refits, mean real return"): RUNS,
    (BENCH + "control.md", "real50, mean real return"): RUNS,
    (BENCH + "control.md", "without the faults, mean real return"): (CONTROL, (1,)),
    (BENCH + "control.md", "self-timed SAC, mean real return"): RUNS,
    (BENCH + "control.md", "self-timed SAC with a per-interval discount, mean real return"): RUNS,
    (BENCH + "control.md", "self-timed in imagination, mean real return"): RUNS,
    (BENCH + "control.md", "`sac+latent-ode+states`, mean real return"): (CONTROL, (1,)),
    (BENCH + "control.md", "variant"): ([RESULTS + "sac_step.csv"], (1,)),
    (BENCH + "control.md", "variant (2026-11-29, loaded machine)"): (
        [RESULTS + "sac_step.csv"],
        (1,),
    ),
    (BENCH + "control.md", "`crossq-qf256`, Walker2d-v5, mean real return"): (CONTROL, (1,)),
    (BENCH + "control.md", "variant (2026-11-29, three jobs on two cores)"): (
        [RESULTS + "sac_step.csv"],
        (1,),
    ),
    (BENCH + "control.md", "MPC planner, mean real return"): (
        [RESULTS + "mpc_planner.csv"],
        (1,),
    ),
    (BENCH + "control.md", "agent (seed)"): ([RESULTS + "mpc_planner.csv"], (1,)),
    (BENCH + "paper_hopper.md", "test MSE x 1e-2"): (PAPER[:1], (1e-2,)),
    # "first at or below the paper" reads the traces
    (BENCH + "paper_hopper.md", "cell"): (PAPER, (1, 1e-2)),
    (BENCH + "paper_hopper.md", "model"): (PAPER[:1], (1, 1e-2)),
    (BENCH + "paper_hopper.md", "gru-dt"): (PAPER[:1], (1, 1e-2)),
    # these two rows quote settings (2000 episodes, batch 32 x 50) that their own files keep
    # in no column: they stay checked against the benchmarks table's files
    (BENCH + "collection.md", "benchmark"): (BENCHMARKS, (1,)),
    (BENCH + "training.md", "benchmark"): (BENCHMARKS, (1,)),
    (BENCH + "imagination.md", "benchmark"): ([RESULTS + "imagination.csv"], (1,)),
    (BENCH + "imagination.md", "precision"): ([RESULTS + "imagination_accuracy.csv"], (1,)),
    (BENCH + "hopper_models.md", "benchmark"): ([RESULTS + "hopper_models.csv"], (1,)),
    (BENCH + "dataset_memory.md", "dataset"): ([RESULTS + "dataset_memory.txt"], (1,)),
    (BENCH + "training_scale.md", "model"): ([RESULTS + "training_scale.txt"], (1,)),
}
# Tables that hold descriptions, not results (the models table: its one number is a year).
NOT_RESULTS = {("docs/design.md", "name"), ("docs/design.md", "file")}
# Whole tables with no committed results file behind them (none today).
KNOWN_UNTRACED_TABLES: set[tuple[str, str]] = set()
# Single figures with no file behind them, as printed (page, table, figure).
KNOWN_UNTRACED = {
    # a property of the cosine schedule stretched from 20 to 25 epochs, not a measurement
    (BENCH + "paper_hopper.md", "cell", "14 %"),
    # mlp-ensemble on the paper protocol: one epoch tried by hand, no row in paper_hopper.csv
    (BENCH + "paper_hopper.md", "model", "275"),
    (BENCH + "paper_hopper.md", "model", "9e13"),
    (BENCH + "paper_hopper.md", "model", "134"),
    # "~0.25 s the issue quotes for the original": quoted, not measured here
    (BENCH + "training.md", "benchmark", "0.25"),
}


def _text(page: str) -> str:
    return (ROOT / page).read_text()


def _csv(name: str) -> list[dict[str, str]]:
    with open(ROOT / RESULTS / name, newline="") as f:
        return list(csv.DictReader(f))


def _control(method: str, steps: str) -> float:
    rows = [r for r in _csv("control.csv") if r["method"] == method and r["real_steps"] == steps]
    return float(rows[-1]["mean_return"])


def _s_per_iter(configuration: str) -> float:
    rows = [r for r in _csv("training.csv") if r["data"] == "paper"]
    last = rows[-1]["timestamp"]  # the run the page quotes (its other figures match it)
    row = next(r for r in rows if r["timestamp"] == last and r["configuration"] == configuration)
    return float(row["s_per_iter"])


# Figures computed from committed figures (ratios): how each is derived.
DERIVED: dict[tuple[str, str, str], Callable[[], float]] = {
    (BENCH + "control.md", "benchmark", "1.51x"): lambda: (
        _control("sac+imagination (utd 5)", "50000") / _control("sac", "50000")
    ),
    (BENCH + "training.md", "benchmark", "4.1x"): lambda: (
        _s_per_iter("rk4, a step at every grid time") / _s_per_iter("dopri5 (rtol 1e-3, atol 1e-4)")
    ),
}

# A printed figure: 1,423 / 0.218 / 1e-10 / 329k / 1.22M / 1.51x / 8.9 % (not inside a word).
_FIGURE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(e-?\d+)?([kM])?(x)?(?!\w)(\s*%)?")
_NOT_FIGURES = {"timestamp", "settings"}
_SOURCE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def tables(text: str) -> Iterator[tuple[int, list[str], list[list[str]]]]:
    """(line number, header cells, body rows) of every markdown table."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        sep = lines[i + 1] if i + 1 < len(lines) else ""
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\|[-| :]+\|", sep.strip()):
            header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            j, rows = i + 2, []
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            yield i + 1, header, rows
            i = j
        else:
            i += 1


def figures(cell: str) -> Iterator[tuple[str, float, float]]:
    """(as printed, value, half a unit of its last printed digit) of each figure in a cell;
    code spans (commands, flags) are not figures."""
    cell = re.sub(r"`[^`]*`", " ", cell).replace("**", "")
    for m in _FIGURE.finditer(cell):
        whole, frac, exp, suffix, _, percent = m.groups()
        value = float(whole.replace(",", "") + (frac or "") + (exp or ""))
        if frac:
            tol = 0.5 * 10.0 ** -(len(frac) - 1)
        else:  # 2190 or 6,000: rounded to the last non-zero digit
            digits = whole.replace(",", "")
            zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
            tol = 0.5 * 10.0**zeros
        if exp:
            tol *= 10.0 ** int(exp[1:])
        scale = {"k": 1e3, "M": 1e6, None: 1.0}[suffix] * (0.01 if percent else 1.0)
        yield m.group(0).strip(), value * scale, tol * scale


def source_numbers(paths: list[str]) -> list[float]:
    """Every number in the files (CSV, JSON and printed tables in .txt, folders recursively),
    plus the mean over seeds of each numeric field of JSON run summaries named
    ``<method>-seed<N>.json``."""
    numbers: list[float] = []
    per_method: dict[str, list[dict]] = {}
    for p in paths:
        path = ROOT / p
        assert path.exists(), f"results file {p} named for a table is not in the repository"
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.suffix not in (".csv", ".json", ".txt"):
                continue
            text = f.read_text()
            if f.suffix == ".csv":  # not the timestamps or the settings JSON: chance matches
                text = "\n".join(
                    " ".join(v for k, v in row.items() if k not in _NOT_FIGURES)
                    for row in csv.DictReader(text.splitlines())
                )
            numbers += [float(x) for x in _SOURCE_NUMBER.findall(text)]
            if f.suffix == ".json" and re.search(r"-seed\d+$", f.stem):
                per_method.setdefault(re.sub(r"-seed\d+$", "", f.stem), []).append(json.loads(text))
    for runs in per_method.values():
        for key, first in runs[0].items():
            values = [r.get(key) for r in runs]
            if (
                len(runs) > 1
                and isinstance(first, (int, float))
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ):
                numbers.append(statistics.mean(values))
    return numbers


def _matches(value: float, tol: float, pool: list[float], scales: tuple[float, ...]) -> bool:
    return any(abs(y - value * s) <= tol * s * (1 + 1e-9) for y in pool for s in scales)


def test_every_readme_table_figure_is_in_a_results_file():
    untraced, checked = [], 0
    for page in PAGES:
        for line, header, rows in tables(_text(page)):
            key = (page, header[0])
            if key in NOT_RESULTS or key in KNOWN_UNTRACED_TABLES:
                continue
            assert key in SOURCES, (
                f"{page} line {line}: table {header[0]!r} is new; name the committed results file "
                f"its figures come from in tests/test_readme.py SOURCES"
            )
            paths, scales = SOURCES[key]
            pool = source_numbers(paths)
            where = f"{page} line {line}, table {header[0]!r}"
            for row in rows:
                for cell in row:
                    for printed, value, tol in figures(cell):
                        checked += 1
                        if (*key, printed) in DERIVED:
                            ok = abs(DERIVED[(*key, printed)]() - value) <= tol * (1 + 1e-9)
                        else:
                            ok = (*key, printed) in KNOWN_UNTRACED or _matches(
                                value, tol, pool, scales
                            )
                        if not ok:
                            untraced.append(f"{where}: {printed} in {cell[:60]!r}")
    assert checked > 100
    assert not untraced, "table figures in no committed results file:\n" + "\n".join(untraced)


def test_every_benchmark_page_has_a_checked_results_table():
    pages = [p for p in PAGES if p.startswith(BENCH) and p != BENCH + "README.md"]
    assert len(pages) >= 7
    for page in pages:
        assert any((page, h[0]) in SOURCES for _, h, _ in tables(_text(page))), page


def test_known_untraced_entries_are_still_in_the_readme():
    keys = {(page, header[0]) for page in PAGES for _, header, _ in tables(_text(page))}
    assert KNOWN_UNTRACED_TABLES | NOT_RESULTS | set(SOURCES) >= keys
    # and no entry is stale: each names a table that is there
    assert keys >= KNOWN_UNTRACED_TABLES | NOT_RESULTS | set(SOURCES)
    for page, table, printed in KNOWN_UNTRACED | set(DERIVED):
        cells = [c for _, h, rows in tables(_text(page)) if h[0] == table for r in rows for c in r]
        assert any(p == printed for c in cells for p, _, _ in figures(c)), (page, table, printed)


def test_figure_parsing():
    parsed = figures("1,423 s (0.218; `--epochs 30`) 329k 8.9 % 1.51x 0.85-1.22M Hopper-v5")
    assert [(p, pytest.approx(v)) for p, v, _ in parsed] == [
        ("1,423", 1423.0),
        ("0.218", 0.218),
        ("329k", 329000.0),
        ("8.9 %", 0.089),
        ("1.51x", 1.51),
        ("0.85", 0.85),
        ("1.22M", 1.22e6),
    ]
    ((_, v, tol),) = figures("2190")
    assert _matches(v, tol, [2187.3], (1,)) and not _matches(v, tol, [2180.0], (1,))
    ((_, v, tol),) = figures("0.319")
    assert _matches(v, tol, [0.0031944], (1e-2,)) and not _matches(v, tol, [0.00321], (1e-2,))
    ((_, v, tol),) = figures("8e-11")
    assert _matches(v, tol, [8.4e-11], (1,)) and not _matches(v, tol, [9e-11], (1,))


def _python_snippets() -> list[tuple[str, str]]:
    return [
        (page, code)
        for page in PAGES
        for code in re.findall(r"```python\n(.*?)```", _text(page), flags=re.S)
    ]


@pytest.mark.parametrize("snippet", range(len(_python_snippets())))
def test_readme_python_imports_resolve(snippet):
    page, code = _python_snippets()[snippet]
    tree = ast.parse(code)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports
    for node in imports:
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        else:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{page} imports {node.module}.{alias.name}"


def test_readme_documented_envs_names_exist():
    import envs
    import envs.imagined

    for page in PAGES:
        for name in re.findall(r"`envs\.((?:imagined\.)?[A-Za-z_]\w*)", _text(page)):
            obj = envs
            for part in name.split("."):
                assert hasattr(obj, part), f"{page} documents envs.{name}, which does not exist"
                obj = getattr(obj, part)
    assert {"ImaginedEnv", "ImaginedVectorEnv"} <= set(envs.__all__)


def _anchors(text: str) -> set[str]:
    """GitHub's ids of a markdown page's headings (outside code blocks)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out = set()
    for title in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M):
        out.add(re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-"))
    return out


def test_anchor_ids():
    assert _anchors("# A: the `x` (y)\n```\n# no\n```\n## Time and actions\n") == {
        "a-the-x-y",
        "time-and-actions",
    }


def test_readme_local_links_exist():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            file = (ROOT / page).parent / path if path else ROOT / page
            assert file.exists(), f"{page} links {target}, which is not in the repository"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file.read_text()), (
                    f"{page} links {target}: {path or page} has no heading {anchor!r}"
                )


def _cli_commands() -> list[tuple[str, list[str], list[str]]]:
    """(page, subcommand words, flags) of every ``worldmodel`` command line the pages show, in
    shell blocks (continued lines joined) and in inline code."""
    out = []
    for page in PAGES:
        text = _text(page)
        lines = [
            line
            for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
            for line in block.replace("\\\n", " ").splitlines()
        ]
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # then code spans, in order
        lines += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
        for part in (p for line in lines for p in line.split("#")[0].split("&&")):
            m = re.match(r"\s*(?:\w+=\S+\s+)*(?:\S*/)?worldmodel ((?:[a-z][\w-]* ?)+)(.*)", part)
            if not m:
                continue
            words = m.group(1).split()
            command = words[:2] if words[0] in ("dataset", "benchmark") else words[:1]
            flags = re.findall(r"(?<!\S)(--[a-z][\w.-]*)", m.group(2))
            out.append((page, command, flags))
    return out


def test_readme_cli_flags_exist(capsys):
    from worldmodel.cli import main

    commands = _cli_commands()
    assert len(commands) >= 10
    helps: dict[str, str] = {}
    for page, command, flags in commands:
        key = " ".join(command)
        if key not in helps:
            with pytest.raises(SystemExit) as exit_:
                main([*command, "--help"])
            assert exit_.value.code == 0, f"{page}: `worldmodel {key}` is not a command"
            helps[key] = capsys.readouterr().out
        for flag in flags:
            assert re.search(rf"{re.escape(flag)}(?![\w.-])", helps[key]), (
                f"{page}: `worldmodel {key}` has no flag {flag}"
            )
