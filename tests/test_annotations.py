"""A run's annotations (annotations.json, the dashboard's file): checked, written atomically,
read back by every listing, a damaged file read as absent; the trainer records --tag and
--note in config.json and never writes annotations.json."""

from __future__ import annotations

import json
import os

import pytest
from conftest import signal_handlers_kept
from fake_runs import make_run
from test_train import TINY, main_exit_code, only_run, stopped_after_one_epoch

from resnet_core import runs
from resnet_core.runs import annotations as annotations_module
from resnet_core.train import main


def test_annotations_are_written_and_read_back_by_every_reader(tmp_path):
    run_dir = make_run(tmp_path, "a")
    assert runs.read_run(run_dir).annotations == runs.Annotations()
    assert runs.list_runs(tmp_path)[0].title == run_dir.name  # no name: the id
    saved = runs.write_annotations(run_dir, "  baseline  ", ["lr:0.1", "résumé", "lr:0.1", " x "], "line 1\nline 2")
    assert (saved.name, saved.tags, saved.note) == ("baseline", ("lr:0.1", "résumé", "x"), "line 1\nline 2")
    on_disk = json.loads((run_dir / runs.ANNOTATIONS_FILE).read_text())
    assert on_disk == {"name": "baseline", "tags": ["lr:0.1", "résumé", "x"], "note": "line 1\nline 2",
                       "updated": saved.updated}
    (listed,) = runs.list_runs(tmp_path)  # the listing rereads a folder whose annotations changed
    assert listed.annotations == saved == runs.read_run(run_dir).annotations
    assert listed.title == f"baseline ({run_dir.name})" and listed.run_id == run_dir.name  # the folder keeps its id
    runs.write_annotations(run_dir, "", [], "")
    assert runs.list_runs(tmp_path)[0].annotations.tags == () and runs.list_runs(tmp_path)[0].title == run_dir.name


def test_a_write_that_fails_leaves_the_previous_annotations_whole(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, "a")
    runs.write_annotations(run_dir, "first", ["one"], "")

    def killed(src, dst):  # the process dies between writing the new file and renaming it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError):
        runs.write_annotations(run_dir, "second", ["two"], "")
    monkeypatch.undo()
    assert runs.read_run(run_dir).annotations.name == "first"
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []  # no temp file left


@pytest.mark.parametrize("content", [
    b"{not json", b"\xff\xfe", b"[1, 2]", b'{"tags": "a"}', b'{"tags": ["a b"]}', b'{"name": 3}',
    b'{"note": "' + b"x" * 2001 + b'"}', b'{"updated": "yesterday"}',
    b'{"tags": [' + b",".join(b'"t%d"' % i for i in range(21)) + b"]}",
])
def test_a_damaged_annotations_file_reads_as_absent(tmp_path, content):
    run_dir = make_run(tmp_path, "a")
    (run_dir / runs.ANNOTATIONS_FILE).write_bytes(content)
    assert runs.read_annotations(run_dir) == runs.Annotations()
    (listed,) = runs.list_runs(tmp_path)
    assert listed.annotations == runs.Annotations() and listed.state == "completed" and listed.problem is None


def test_a_damaged_file_gives_way_to_the_launch_values_and_a_link_is_not_followed(tmp_path):
    run_dir = make_run(tmp_path, "a")
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, {**config, "tags": ["cli"], "note": "from the command line"})
    launched = runs.list_runs(tmp_path)[0].annotations
    assert (launched.tags, launched.note, launched.updated) == (("cli",), "from the command line", None)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"name": "planted", "tags": [], "note": ""}))
    (run_dir / runs.ANNOTATIONS_FILE).symlink_to(elsewhere)
    assert runs.read_run(run_dir).annotations == launched
    (run_dir / runs.ANNOTATIONS_FILE).unlink()
    runs.write_annotations(run_dir, "edited", [], "")  # the dashboard's edit takes the launch values' place
    assert runs.read_run(run_dir).annotations.tags == () and runs.read_run(run_dir).annotations.name == "edited"
    config["tags"] = "not a list"
    assert runs.read_annotations(run_dir.parent / "missing", config) == runs.Annotations()


@pytest.mark.parametrize("name, tags, note, message", [
    ("x" * 81, [], "", "the name has 81 characters: at most 80"),
    ("two\nlines", [], "", "the name is one line of text"),
    ("", ["has space"], "", "tag 'has space' may hold only letters, digits and - _ . : + = /"),
    ("", ["-lead"], "", "starting with a letter or digit"),
    ("", [""], "", "a tag is empty"),
    ("", ["t" * 33], "", "is longer than 32 characters"),
    ("", [f"t{i}" for i in range(21)], "", "21 tags: a run takes at most 20"),
    ("", [], "n" * 2001, "the note has 2,001 characters: at most 2,000"),
    ("", [], "bell\x07", "the note holds control characters"),
])
def test_what_annotations_may_hold_is_refused_in_one_line(tmp_path, name, tags, note, message):
    run_dir = make_run(tmp_path, "a")
    with pytest.raises(ValueError) as refused:
        runs.write_annotations(run_dir, name, tags, note)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (run_dir / runs.ANNOTATIONS_FILE).exists()


def test_annotations_are_not_written_through_a_symlinked_run_folder(tmp_path):
    real = make_run(tmp_path / "real", "a")
    (tmp_path / "alias").symlink_to(real)
    with pytest.raises(ValueError, match="symbolic link"):
        runs.write_annotations(tmp_path / "alias", "x", [], "")
    assert not (real / runs.ANNOTATIONS_FILE).exists()
    assert annotations_module.MAX_TAGS == runs.MAX_TAGS  # the limits the pages show are the ones checked


@pytest.fixture(scope="module")
def labelled_run(cifar_dir, tmp_path_factory):
    """A finished 1-epoch run launched with --tag twice and --note."""
    runs_dir = tmp_path_factory.mktemp("labelled")
    with signal_handlers_kept():
        assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(runs_dir), "--epochs", "1", *TINY,
                     "--tag", "baseline", "--tag", "depth:8", "--tag", "baseline", "--note", "first try"]) == 0
    return only_run(runs_dir)


@pytest.mark.slow
def test_the_trainer_records_launch_tags_in_config_and_never_writes_annotations(labelled_run, tmp_path):
    record = json.loads((labelled_run / runs.CONFIG_FILE).read_text())
    assert (record["tags"], record["note"]) == (["baseline", "depth:8"], "first try")
    assert "tags" not in record["config"] and "note" not in record["config"]  # no training option a sweep varies
    assert not (labelled_run / runs.ANNOTATIONS_FILE).exists()
    shown = runs.read_run(labelled_run).annotations
    assert (shown.tags, shown.note) == (("baseline", "depth:8"), "first try")
    # The dashboard's edit, then a resume: the trainer leaves the file as it was.
    run_dir = stopped_after_one_epoch(labelled_run, tmp_path)
    edited = runs.write_annotations(run_dir, "renamed", ["kept"], "")
    before = (run_dir / runs.ANNOTATIONS_FILE).stat().st_mtime_ns, (run_dir / runs.ANNOTATIONS_FILE).read_bytes()
    assert main(["--resume", str(run_dir)]) == 0
    assert runs.read_run(run_dir).state == "completed"
    assert ((run_dir / runs.ANNOTATIONS_FILE).stat().st_mtime_ns,
            (run_dir / runs.ANNOTATIONS_FILE).read_bytes()) == before
    assert runs.read_run(run_dir).annotations == edited
    assert json.loads((run_dir / runs.CONFIG_FILE).read_text())["tags"] == ["baseline", "depth:8"]


@pytest.mark.parametrize("args, message", [
    (["--tag", "two words"], "--tag/--note: tag 'two words' may hold only letters"),
    (["--tag", "x" * 40], "is longer than 32 characters"),
    (["--note", "n" * 2001], "--tag/--note: the note has 2,001 characters"),
])
def test_a_bad_launch_tag_is_refused_in_one_line_before_any_folder(cifar_dir, tmp_path, capsys, args, message):
    code = main_exit_code(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), *TINY, *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_resume_refuses_launch_tags(tmp_path, capsys):
    run_dir = make_run(tmp_path, "a", state="stopped")
    assert main_exit_code(["--resume", str(run_dir), "--tag", "late"]) == 2
    assert "a resumed run keeps its own: edit them on the Runs page" in capsys.readouterr().err
