"""Compare's paper comparison ("Identity Mappings", Table 3): runs grouped by dataset,
network and unit order over seeds, beside the paper's numbers, and the section on the page."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fake_runs import make_run
from test_pages import folders, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages.navigation import COMPARE
from resnet_core import runs
from resnet_core.config import paper_config
from resnet_core.dashboard import paper_comparison
from resnet_core.formatting import md_escape
from resnet_core.results import run_result


def fabricated(runs_dir, name, *, test_acc, dataset="cifar10", depth=164, block="bottleneck", preact=False,
               seed=0, recipe=False, state="completed"):
    """A fake run of this network and unit order with exactly this final test accuracy;
    recipe: trained with --preset paper."""
    run_dir = make_run(runs_dir, name, state=state, dataset=dataset, val_source=None)
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    if recipe:
        record["config"].update(dataclasses.asdict(paper_config(depth, block)))
    record["config"].update(depth=depth, block=block, shortcut="B" if block == "bottleneck" else "A",
                            preact=preact, seed=seed, dataset=dataset)
    del record["model"]  # the fake's is ResNet-20's
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, record)
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    status["test_acc"] = test_acc
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    return run_dir


def cells_by_key(cells):
    return {(c.dataset, c.network.depth, c.preact): c for c in cells}


def test_runs_are_grouped_by_dataset_network_and_unit_over_seeds(tmp_path):
    made = [fabricated(tmp_path, "o1", test_acc=0.94, recipe=True),
            fabricated(tmp_path, "o2", test_acc=0.92, seed=1),
            fabricated(tmp_path, "p1", test_acc=0.95, preact=True, recipe=True),
            fabricated(tmp_path, "c1", test_acc=0.75, preact=True, dataset="cifar100"),
            fabricated(tmp_path, "r1", test_acc=0.90, depth=20, block="basic"),
            fabricated(tmp_path, "x1", test_acc=0.10, preact=True, state="stopped")]  # no final test error
    plain = fabricated(tmp_path, "n1", test_acc=0.80, depth=20, block="basic")
    record = json.loads((plain / runs.CONFIG_FILE).read_text())
    record["config"]["shortcut"] = runs.PLAIN  # no residual units: in neither unit order's row
    runs.atomic_write_json(plain / runs.CONFIG_FILE, record)
    cells = paper_comparison.unit_cells([run_result(runs.read_run(d)) for d in [*made, plain]])
    assert not any(plain.name in c.run_ids for c in cells)
    by_key = cells_by_key(cells)
    original = by_key[("cifar10", 164, False)]
    assert original.errors == pytest.approx((6.0, 8.0)) and original.error == pytest.approx((7.0, 2 ** 0.5))
    assert original.paper_recipe_runs == 1 and original.paper.error == 5.93
    preact = by_key[("cifar10", 164, True)]
    assert (preact.n, preact.paper.error, preact.run_ids) == (1, 5.46, (made[2].name,))
    c100 = by_key[("cifar100", 164, True)]
    assert c100.errors == pytest.approx((25.0,)) and c100.paper.error == 24.33 and c100.error[1] is None
    assert by_key[("cifar10", 20, False)].paper.error == 8.75  # Table 6's, where one exists
    # Table 3's eight cells are there without runs: both datasets' targets in view.
    empty = {k: c.paper.error for k, c in by_key.items() if c.n == 0}
    assert empty == {("cifar10", 1001, False): 7.61, ("cifar10", 1001, True): 4.92,
                     ("cifar100", 164, False): 25.16, ("cifar100", 1001, False): 27.82,
                     ("cifar100", 1001, True): 22.71}
    assert [(c.dataset, c.network.block, c.network.depth, c.preact) for c in cells][:3] == [
        ("cifar10", "basic", 20, False), ("cifar10", "bottleneck", 164, False), ("cifar10", "bottleneck", 164, True)]


def test_the_table_is_table_3s_layout_with_n_and_the_papers_numbers(tmp_path):
    made = [fabricated(tmp_path, "o1", test_acc=0.94), fabricated(tmp_path, "o2", test_acc=0.92, seed=1),
            fabricated(tmp_path, "c1", test_acc=0.75, preact=True, dataset="cifar100", recipe=True)]
    cells = paper_comparison.unit_cells([run_result(runs.read_run(d)) for d in made])
    rows = {r["network"]: r for r in paper_comparison.table_rows(cells)}
    assert list(rows) == ["ResNet-164 (bottleneck, B)", "ResNet-1001 (bottleneck, B)"]
    r164 = rows["ResNet-164 (bottleneck, B)"]
    assert r164["CIFAR-10 original %"] == "7.00 ± 1.41 (n=2)" and r164["CIFAR-10 original paper %"] == "5.93"
    assert r164["CIFAR-10 pre-activation %"] == "—" and r164["CIFAR-10 pre-activation paper %"] == "5.46"
    assert r164["CIFAR-100 pre-activation %"] == "25.00 (n=1)" and r164["CIFAR-100 pre-activation paper %"] == "24.33"
    assert r164["runs (paper's recipe)"] == "3 (1)"
    assert rows["ResNet-1001 (bottleneck, B)"]["CIFAR-100 original paper %"] == "27.82"
    assert paper_comparison.paper_sources(cells) == [
        'He et al. 2016, "Identity Mappings", Table 3 (original unit): each the median of 5 runs',
        'He et al. 2016, "Identity Mappings", Table 3 (pre-activation unit): each the median of 5 runs']


def test_table_6s_numbers_are_not_called_medians_of_5_runs(tmp_path):
    made = [fabricated(tmp_path, "r20", test_acc=0.90, depth=20, block="basic"),
            fabricated(tmp_path, "r110", test_acc=0.92, depth=110, block="basic")]
    sources = paper_comparison.paper_sources(paper_comparison.unit_cells([run_result(runs.read_run(d))
                                                                           for d in made]))
    assert sources[0] == "He et al. 2016, Table 6 (ResNet-110 (basic, A): best of 5 runs; mean 6.61 ± 0.16)"
    assert all("median" not in s for s in sources if "Table 6" in s)
    assert sources[1:] == [
        'He et al. 2016, "Identity Mappings", Table 3 (original unit): each the median of 5 runs',
        'He et al. 2016, "Identity Mappings", Table 3 (pre-activation unit): each the median of 5 runs']


def test_the_figure_has_a_panel_per_dataset_bars_with_std_and_the_papers_diamonds(tmp_path):
    made = [fabricated(tmp_path, "o1", test_acc=0.94), fabricated(tmp_path, "o2", test_acc=0.92, seed=1)]
    fig = paper_comparison.comparison_figure(paper_comparison.unit_cells([run_result(runs.read_run(d))
                                                                          for d in made]))
    bars = [t for t in fig.data if t.type == "bar"]
    assert [(t.name, t.xaxis) for t in bars] == [("original", "x"), ("pre-activation", "x"),
                                                 ("original", "x2"), ("pre-activation", "x2")]
    assert list(bars[0].y) == pytest.approx([7.0, None]) and bars[0].error_y.array[0] == pytest.approx(2 ** 0.5)
    diamonds = {(t.xaxis, t.offsetgroup): list(t.y) for t in fig.data if t.type == "scatter"}
    assert diamonds == {("x", "original"): [5.93, 7.61], ("x", "pre-activation"): [5.46, 4.92],
                        ("x2", "original"): [25.16, 27.82], ("x2", "pre-activation"): [24.33, 22.71]}
    assert [a.text for a in fig.layout.annotations] == ["CIFAR-10", "CIFAR-100"]


def test_compares_results_view_shows_the_section_with_the_papers_numbers(folders):  # noqa: F811
    made = [fabricated(folders, "o1", test_acc=0.94, recipe=True),
            fabricated(folders, "p1", test_acc=0.95, preact=True, recipe=True)]
    at = open_page(COMPARE, {"runs": ",".join(d.name for d in made)})
    at.session_state["view"] = "Results"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Original vs pre-activation units" in texts(at)
    table = at.dataframe[-1].value
    row = table[table["network"] == "ResNet-164 (bottleneck, B)"].iloc[0]
    assert (row["CIFAR-10 original %"], row["CIFAR-10 original paper %"]) == ("6.00 (n=1)", "5.93")
    assert (row["CIFAR-10 pre-activation %"], row["CIFAR-10 pre-activation paper %"]) == ("5.00 (n=1)", "5.46")
    assert row["CIFAR-100 pre-activation paper %"] == "24.33" and row["runs (paper's recipe)"] == "2 (2)"
    assert md_escape('He et al. 2016, "Identity Mappings", Table 3 (pre-activation unit)') in texts(at)
    # The results table above it gives each row its own unit's number.
    results = at.dataframe[0].value
    assert sorted(results["paper_test_error"]) == [5.46, 5.93]
