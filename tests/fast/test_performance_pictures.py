"""The pictures of docs/performance.md (bench/run.py draws one per section from docs/performance.json) can be
read: every recorded section gets its file, no text leaves its figure or covers another text, none is
smaller than 9 pt, no axis carries more than a dozen labels, and no label speaks of our issue tracker."""

import importlib.util
import itertools
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")  # in the `bench` extra, not `test`

ROOT = Path(__file__).resolve().parents[2]
MAX_TICK_LABELS = 12
MIN_FONT_PT = 9


def bench_run():
    spec = importlib.util.spec_from_file_location("bench_run_pictures", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run():
    return bench_run()


@pytest.fixture(scope="module")
def sections():
    return json.loads((ROOT / "docs" / "performance.json").read_text())


def tick_labels(axis):
    """The axis's labelled ticks inside its view (matplotlib keeps labels of ticks outside it, not drawn)."""
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-9
    labels = []
    for ticks, locations in ((axis.get_major_ticks(), axis.get_majorticklocs()),
                             (axis.get_minor_ticks(), axis.get_minorticklocs())):
        for tick, location in zip(ticks, locations):
            if low - slack <= location <= high + slack:
                labels += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text().strip()]
    return labels


def visible_texts(fig):
    """Every text the figure shows: titles, axis and tick labels, legends, notes and bar labels."""
    texts = [*fig.texts, fig._suptitle, fig._supxlabel, fig._supylabel]
    texts += [t for legend in fig.legends for t in [*legend.get_texts(), legend.get_title()]]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label, *tick_labels(ax.xaxis), *tick_labels(ax.yaxis)]
        legend = ax.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
    unique = {id(t): t for t in texts if t is not None and t.get_visible() and t.get_text().strip()}
    return list(unique.values())


def test_each_recorded_section_gets_its_picture(run, sections, tmp_path):
    """save_figures writes NN-name.png per section and removes pictures of sections no longer recorded
    (two sections here: drawing all of them is the next test's work)."""
    stale = tmp_path / "99-gone.png"
    stale.write_bytes(b"")
    some = {name: sections[name] for name in ("tensors", "overload") if name in sections}
    written = run.save_figures(some, tmp_path)
    expected = [run.figure_name(name, [run.row_from_json(r) for r in some[name]["rows"]]) for name in some]
    assert [p.name for p in written] == expected
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(expected)
    assert all(p.stat().st_size > 10_000 for p in written)


def test_pictures_read_well(run, sections):
    import matplotlib.pyplot as plt

    recorded = [name for name in run.BENCHMARKS if sections.get(name, {}).get("rows")]
    assert recorded
    drawn, problems = [], []
    for name, file_name, fig in run.figures(sections):
        drawn.append(name)
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            bounds = fig.bbox
            texts = visible_texts(fig)
            assert texts, file_name
            boxes = []
            for text in texts:
                words = text.get_text().replace("\n", " ")
                box = text.get_window_extent(renderer)
                boxes.append((words, box))
                if box.x0 < bounds.x0 - 1 or box.y0 < bounds.y0 - 1 or box.x1 > bounds.x1 + 1 or box.y1 > bounds.y1 + 1:
                    problems.append(f"{file_name}: {words!r} leaves the figure")
                if text.get_fontsize() < MIN_FONT_PT:
                    problems.append(f"{file_name}: {words!r} is {text.get_fontsize()} pt")
                if "issue" in words.lower():
                    problems.append(f"{file_name}: {words!r} names an issue")
            for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
                width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
                height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
                if width > 1 and height > 1:
                    problems.append(f"{file_name}: {a!r} and {b!r} overlap")
            for ax in fig.axes:
                for axis in (ax.xaxis, ax.yaxis):
                    labels = tick_labels(axis) if ax.axison else []
                    if len(labels) > MAX_TICK_LABELS:
                        problems.append(f"{file_name}: {len(labels)} labels on one axis")
        finally:
            plt.close(fig)
    assert drawn == recorded
    assert not problems, "\n".join(problems)


def test_report_and_pictures_name_no_issue_numbers():
    source = (ROOT / "bench" / "run.py").read_text()
    start, end = source.index("# -- the report"), source.index("def main(")
    shown = [line for line in source[start:end].splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in shown if "issue " in line.lower()]


def test_report_names_each_sections_run(run, sections, tmp_path, monkeypatch):
    """docs/performance.md says one run only when it is one; otherwise each section names its own run, and
    every section shows its picture."""
    monkeypatch.setattr(run, "DOCS", tmp_path)
    some = {name: sections[name] for name in ("dag", "leaks", "overload") if name in sections}
    facts = [tuple(f) for f in sections.get("_machine", [])]
    run.write_report(some, [], facts)
    report = (tmp_path / "performance.md").read_text()
    runs = set(run.runs_of(some).values())
    if len(runs) == 1:
        assert "Every row below is from one run" in report
    else:
        assert f"**{len(runs)} different runs**" in report and "from one run" not in report
    for name, entry, rows in run.recorded_sections(some):
        picture = f"performance/{run.figure_name(name, rows)}"
        assert f"]({picture})" in report and (tmp_path / picture).is_file()
        assert f"### {rows[0].section}\n\nThis section: " in report
        assert entry["started"] in report.split(f"### {rows[0].section}", 1)[1].split("###", 1)[0]
    assert "issue" not in report.lower()


def test_sections_of_one_run_are_told_apart_from_other_runs(run):
    def entry(started, seconds, commit="abc", **more):
        return {"started": started, "commit": commit, "load": {"seconds": seconds}, "rows": [], **more}

    runs = run.runs_of({
        "tensors": entry("2026-12-03 14:40 UTC", 50),
        "models": entry("2026-12-03 14:41 UTC", 30),  # right after: the same run
        "serving": entry("2026-12-03 14:48 UTC", 30),  # minutes later: another run
        "batching": entry("2026-12-03 14:49 UTC", 30, commit="def"),  # another commit: another run
        "memory": entry("2026-12-03 14:49 UTC", 30, commit="def", run="2026-12-03 14:30 UTC"),  # recorded
    })
    assert runs["tensors"] == runs["models"] == "2026-12-03 14:40 UTC"
    assert runs["serving"] == "2026-12-03 14:48 UTC"
    assert runs["batching"] == "2026-12-03 14:49 UTC"
    assert runs["memory"] == "2026-12-03 14:30 UTC"
