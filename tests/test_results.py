import csv
import dataclasses
import io
import json

import pytest

from fake_runs import make_run
from resnet_core import runs
from resnet_core.config import PAPER_RECIPE_FIELDS, TrainConfig, apply_presets, paper_config
from resnet_core.results import (RunResult, group_results, is_paper_recipe, mean_std, report, run_result,
                                  sweep_report)


def _run(runs_dir, name, *, test_acc, best_val_acc=None, state="completed", **config):
    """A fake run with these config fields and exactly these final numbers."""
    run_dir = make_run(runs_dir, name, state=state, val_source="train" if best_val_acc is not None else None)
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    record["config"].update(config)
    del record["model"]  # the fake's is ResNet-20's: the reader counts this config's model instead
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, record)
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    status.update(test_acc=test_acc, best_val_acc=best_val_acc, best_epoch=2 if best_val_acc is not None else None)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    return runs.read_run(run_dir)


def test_mean_and_sample_std_by_hand():
    assert mean_std([]) == (None, None)
    assert mean_std([7.0]) == (7.0, None)
    mean, std = mean_std([8.0, 9.0, 10.0])
    assert mean == 9.0 and std == pytest.approx(1.0)  # sqrt(((-1)^2 + 0 + 1^2) / (3 - 1))


def test_runs_that_differ_only_by_seed_share_a_row_with_mean_and_std(tmp_path):
    infos = [
        _run(tmp_path, "a0", test_acc=0.90, best_val_acc=0.91, depth=20, shortcut="A", seed=0),
        _run(tmp_path, "a1", test_acc=0.92, best_val_acc=0.93, depth=20, shortcut="A", seed=1),
        _run(tmp_path, "p0", test_acc=0.85, best_val_acc=0.86, depth=20, shortcut="none", seed=0),
        _run(tmp_path, "p1", test_acc=0.80, best_val_acc=0.81, depth=20, shortcut="none", seed=1),
        _run(tmp_path, "p2", test_acc=0.75, best_val_acc=0.76, depth=20, shortcut="none", seed=2),
        # still running: counted, never averaged
        _run(tmp_path, "p3", test_acc=None, best_val_acc=0.50, depth=20, shortcut="none", seed=3, state="stopped"),
    ]
    groups = group_results([run_result(i) for i in infos], ["shortcut"])
    assert [g.fields for g in groups] == [{"shortcut": "A"}, {"shortcut": "none"}]
    a, plain = groups
    assert (a.runs, a.unfinished, plain.runs, plain.unfinished) == (2, 0, 3, 1)
    assert a.model == "ResNet-20" and plain.model == "plain-20"
    # test errors 10 and 8 %: mean 9, sample std sqrt(2)
    assert a.test_error[0] == pytest.approx(9.0) and a.test_error[1] == pytest.approx(2 ** 0.5)
    # plain: 15, 20, 25 %: mean 20, std 5; validation 14, 19, 24: mean 19, std 5
    assert plain.test_error == pytest.approx((20.0, 5.0))
    assert plain.val_error == pytest.approx((19.0, 5.0))
    records = json.loads(report(groups, "json"))
    assert records[1]["shortcut"] == "none" and records[1]["runs"] == 3
    assert records[1]["test_error_mean"] == 20.0 and records[1]["test_error_sample_std"] == 5.0
    assert records[1]["params"] == 269722 and records[1]["run_ids"][-1].endswith("p3")
    assert {"test_error_mean", "test_error_sample_std", "val_error_mean", "val_error_sample_std", "params",
            "runs"} <= set(records[0])


def test_the_report_formats_agree(tmp_path):
    infos = [_run(tmp_path, f"d{d}s{s}", test_acc=acc, best_val_acc=acc, depth=d, seed=s)
             for d, s, acc in [(20, 0, 0.9), (20, 1, 0.8), (32, 0, 0.95)]]
    md = sweep_report(infos, ["depth"], "md")
    lines = md.splitlines()
    assert lines[0].startswith("| depth | model | n | test error % | best val error %")
    assert "| 20 | ResNet-20 | 2 | 15.00 ± 7.07 |" in lines[2]
    assert "| 32 | ResNet-32 | 1 | 5.00 | 5.00 |" in lines[3]
    rows = list(csv.DictReader(io.StringIO(sweep_report(infos, ["depth"], "csv"))))
    assert [(r["depth"], r["runs"], float(r["test_error_mean"])) for r in rows] == [("20", "2", 15.0), ("32", "1", 5.0)]
    assert rows[1]["test_error_sample_std"] == ""  # one run has no spread
    with pytest.raises(ValueError, match="unknown format"):
        sweep_report(infos, ["depth"], "xml")


def test_a_varied_field_that_only_sets_the_speed_still_splits_the_rows(tmp_path):
    infos = [_run(tmp_path, f"c{c}{s}", test_acc=0.9 - 0.1 * s, compile=c, seed=s)
             for c in (True, False) for s in (0, 1)]
    groups = group_results([run_result(i) for i in infos], ["compile"])
    assert [(g.fields, g.runs) for g in groups] == [({"compile": True}, 2), ({"compile": False}, 2)]
    # Unasked, runs that differ only in such a field share a row: they learn the same.
    assert [g.runs for g in group_results([run_result(i) for i in infos])] == [4]


def test_a_run_that_validated_on_the_test_set_has_no_validation_error(tmp_path):
    run_dir = make_run(tmp_path, "v1", val_source="test")
    assert run_result(runs.read_run(run_dir)).val_error is None


def test_without_a_grouping_the_rows_show_what_differs(tmp_path):
    infos = [_run(tmp_path, "x", test_acc=0.9, lr=0.1, seed=0), _run(tmp_path, "y", test_acc=0.9, lr=0.05, seed=1)]
    groups = group_results([run_result(i) for i in infos])
    assert [g.fields for g in groups] == [{"lr": 0.1}, {"lr": 0.05}]


def test_the_papers_number_only_for_the_papers_recipe(tmp_path):
    paper_cfg = dataclasses.asdict(paper_config(20))
    recipe = {k: paper_cfg[k] for k in (*PAPER_RECIPE_FIELDS, "preset", "depth", "block", "shortcut")}
    paper = _run(tmp_path, "paper", test_acc=0.91, **recipe)
    short = _run(tmp_path, "short", test_acc=0.80, **dict(recipe, max_steps=1000))
    plain = _run(tmp_path, "plain", test_acc=0.90, **dict(recipe, shortcut="none"))
    groups = group_results([run_result(i) for i in (paper, short, plain)])
    assert [g.paper and g.paper.error for g in groups] == [8.75, None, None]


@pytest.mark.parametrize("dataset, preact, error", [(None, False, 5.93), ("cifar10", True, 5.46),
                                                    ("cifar100", False, 25.16), ("cifar100", True, 24.33)])
def test_a_preact_or_cifar100_run_with_the_preset_gets_its_datasets_and_units_number(dataset, preact, error):
    # CIFAR-100 has 50,000 training images too: the preset's epochs, drops and warm-up are CIFAR-10's.
    cfg = _preset_config(164, "bottleneck", preact=preact, **({"dataset": dataset} if dataset else {}))
    if dataset is None:
        del cfg["dataset"]  # a record from before the field: CIFAR-10
    assert is_paper_recipe(cfg)
    (group,) = group_results([_done("a", cfg, 6.0)])
    assert group.paper.error == error
    assert group.paper.source.endswith("(pre-activation unit)" if preact else "(original unit)")
    assert group_results([_done("b", dict(cfg, max_steps=1000), 6.0)])[0].paper is None
    for junk in ("cifar", ["cifar10"]):
        assert group_results([_done("c", dict(cfg, dataset=junk), 6.0)])[0].paper is None


def test_a_run_without_validation_has_no_validation_error(tmp_path):
    info = _run(tmp_path, "noval", test_acc=0.9)
    result = run_result(info)
    assert result.val_error is None and result.test_error == pytest.approx(10.0)
    assert result.images_per_s == 480.0 and result.seconds is not None


def test_unreadable_runs_give_a_row_without_numbers(tmp_path):
    run_dir = make_run(tmp_path, "broken")
    (run_dir / runs.STATUS_FILE).write_text("[1]")
    result = run_result(runs.read_run(run_dir))
    assert result.state == "unreadable" and result.test_error is None
    table = [line for line in report(group_results([result]), "md").splitlines() if line.startswith("|")]
    assert len(table) == 3  # head, rule, its one row


# ----------------------------------------------------------------------------- the paper's numbers

def _preset_config(depth, block="basic", typed=(), **values):
    """config.json's "config" of a run started with --preset paper (and these typed values)
    on CIFAR-10's 50,000 training images, as the trainer records it."""
    cfg = TrainConfig(depth=depth, block=block, preset="paper", **values)
    return json.loads(json.dumps(dataclasses.asdict(apply_presets(cfg, {"depth", "block", "preset", *values}, 50_000))))


def _done(run_id, cfg, test_error, seed=0):
    return RunResult(run_id, "completed", dict(cfg, seed=seed), "m", 1, 1, test_error, None, 10.0, 100.0)


@pytest.mark.parametrize("depth, block", [(20, "basic"), (56, "basic"), (110, "basic"), (1202, "basic"),
                                          (164, "bottleneck"), (1001, "bottleneck")])
def test_every_network_trained_with_the_paper_preset_is_the_papers_recipe(depth, block):
    # The preset gives depth >= 110 its 400-step warm-up: that is still the paper's recipe.
    assert is_paper_recipe(_preset_config(depth, block))
    assert paper_config(depth, block).warmup_epochs == (400 / 390 if depth >= 110 else 0.0)


@pytest.mark.parametrize("typed", [dict(lr=0.05), dict(epochs=100), dict(warmup_epochs=0.0), dict(nesterov=True),
                                   dict(batch_size=256), dict(val_size=5000), dict(max_steps=1000),
                                   dict(milestones=[50.0, 75.0]), dict(subset=1000)])
def test_a_preset_run_with_a_typed_change_of_the_recipe_is_not_the_papers(typed):
    assert not is_paper_recipe(_preset_config(110, **typed))


def test_the_papers_recipe_needs_no_preset_and_ignores_what_does_not_change_learning():
    typed = _preset_config(20)
    typed.update(preset="", seed=7, device="cpu", compile=False, name="mine")
    assert is_paper_recipe(typed)
    assert not is_paper_recipe({"depth": 20, "block": "basic"})  # the defaults are not the recipe
    for junk in ({}, {"depth": "20"}, {"depth": [20]}, {"depth": 10 ** 400, "block": "basic"}, {"block": ["x"]}):
        assert not is_paper_recipe(junk)
        assert group_results([_done("j", junk, 9.0)])[0].paper is None


def test_resnet_110_shows_the_papers_note_and_identity_mappings_numbers_name_that_paper():
    r110 = _preset_config(110)
    r164 = _preset_config(164, "bottleneck")
    groups = group_results([_done("a", r110, 6.5), _done("b", r110, 6.7, seed=1), _done("c", r164, 6.0)])
    g110, g164 = groups
    assert (g110.paper.error, g110.paper.note) == (6.43, "best of 5 runs; mean 6.61 ± 0.16")
    assert g110.paper.source == "He et al. 2016, Table 6"
    assert "Identity Mappings" in g164.paper.source and "Table 6" not in g164.paper.source
    md = report(groups, "md").splitlines()
    assert "paper source" in md[0]
    assert "6.60 ± 0.14" in md[2] and "6.43 (best of 5 runs; mean 6.61 ± 0.16)" in md[2]
    assert "He et al. 2016, Table 6" in md[2]
    assert '"Identity Mappings"' in md[3] and "Table 6" not in md[3]
    records = json.loads(report(groups, "json"))
    assert [(r["paper_test_error"], r["paper_note"]) for r in records] == [
        (6.43, "best of 5 runs; mean 6.61 ± 0.16"), (5.93, "median of 5 runs")]
    assert "Identity Mappings" in records[1]["paper_source"]
    rows = list(csv.DictReader(io.StringIO(report(groups, "csv"))))
    assert rows[0]["paper_note"] == "best of 5 runs; mean 6.61 ± 0.16"


# ----------------------------------------------------------------------------- what the numbers are

def test_every_report_says_its_std_is_the_sample_std_and_how_many_runs_each_mean_has():
    cfg = {"depth": 20, "block": "basic", "shortcut": "A"}
    # Three completed runs, one of which has no test error (its status lost test_acc):
    # the test mean is over two of the row's three runs, the validation mean over three.
    members = [RunResult(f"r{s}", "completed", dict(cfg, seed=s), "ResNet-20", 1, 1, e, v, 1.0, 1.0)
               for s, e, v in ((0, 8.0, 9.0), (1, 10.0, 10.0), (2, None, 11.0))]
    groups = group_results(members)
    md = report(groups, "md")
    assert "sample standard deviation (n − 1)" in md and "n completed runs" in md
    row = md.splitlines()[2]
    assert "| 3 | 9.00 ± 1.41 (n=2) | 10.00 ± 1.00 |" in row  # the row's n, then a mean over fewer names its own
    (record,) = json.loads(report(groups, "json"))
    assert (record["runs"], record["test_error_n"], record["val_error_n"]) == (3, 2, 3)
    assert record["test_error_sample_std"] == pytest.approx(2 ** 0.5, abs=1e-4)
    assert record["val_error_sample_std"] == 1.0 and "test_error_std" not in record
    (csv_row,) = csv.DictReader(io.StringIO(report(groups, "csv")))
    assert (csv_row["test_error_n"], csv_row["test_error_sample_std"]) == ("2", "1.4142")


def test_a_field_an_older_record_lacks_groups_with_its_default_value():
    old = RunResult(run_id="old", state="completed", config={"depth": 20, "block": "basic", "shortcut": "A", "seed": 0},
                    model="ResNet-20", params=None, macs=None, test_error=8.0, val_error=None, seconds=None,
                    images_per_s=None)
    new = dataclasses.replace(old, run_id="new", config={**old.config, "seed": 1, "dataset": "cifar10",
                                                         "preact": False})
    other = dataclasses.replace(old, run_id="c100", config={**old.config, "dataset": "cifar100"})
    groups = group_results([old, new, other])
    assert [[m.run_id for m in g.members] for g in groups] == [["old", "new"], ["c100"]]
    assert [g.fields for g in groups] == [{"dataset": "cifar10"}, {"dataset": "cifar100"}]
