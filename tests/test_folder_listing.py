"""Home's image folders as data: those in the data folder and those folder runs trained on,
whatever else the runs folder holds (the page: test_pages_folder_form.py)."""

from __future__ import annotations

import json
from pathlib import Path

from fake_runs import make_run, make_unreadable_run
from test_folder_preview import write_folder

from resnet_core import runs
from resnet_core.dashboard.folder_listing import KnownFolder, cached_settings, folder_line, known_folders
from resnet_core.dashboard.folder_preview import preview_folder
from resnet_core.formatting import md_escape
from resnet_core.image_folder import cache_folder, cache_path


def folder_run(runs_dir: Path, root, **config) -> Path:
    """A fabricated run whose record says it trained on the image folder at root."""
    run_dir = make_run(runs_dir, "folder")
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    record["config"].update(dataset="folder", **config)
    record["resolved"]["data_dir"] = root if not isinstance(root, Path) else str(root)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(record))
    return run_dir


def test_folders_of_the_data_folder_and_of_the_runs_are_listed_once_each(tmp_path):
    runs_dir, data = tmp_path / "runs", tmp_path / "data"
    pets = write_folder(data / "pets", {"a": 2, "b": 2})
    (data / "cifar-10-batches-py").mkdir()  # no train/: not an image folder
    write_folder(data / ".hidden", {"a": 2, "b": 2})
    other = write_folder(tmp_path / "other", {"a": 2, "b": 2})
    (tmp_path / "link").symlink_to(other)
    folder_run(runs_dir, other, image_size=64, resize="squash")
    folder_run(runs_dir, tmp_path / "link", image_size=32, resize="crop")  # the same folder through a link
    folder_run(runs_dir, pets, image_size="64", resize="stretch")  # settings a reader cannot use: left out
    make_run(runs_dir, "cifar", data_dir=None)
    folder_run(runs_dir, 42)  # a path that is no text
    folder_run(runs_dir, "a\0b")  # one no file system takes
    make_unreadable_run(runs_dir, "config truncated")
    found = known_folders(runs_dir, data)
    assert found == [  # by path
        KnownFolder(root=str(pets.resolve()), runs=1, settings=((32, "crop"),)),
        KnownFolder(root=str(other.resolve()), runs=2, settings=((32, "crop"), (64, "squash"))),
    ]
    assert known_folders(tmp_path / "no-runs", tmp_path / "no-data") == []


def test_a_folders_line_says_its_counts_runs_and_decoded_copies(tmp_path):
    root = write_folder(tmp_path / "pets", {"a": 3, "b": 2})
    known = KnownFolder(root=str(root), runs=2, settings=((32, "crop"), (64, "squash")))
    assert cached_settings(known, tmp_path / "runs") == ()
    cache = cache_path(cache_folder(tmp_path / "runs"), root, 64, "squash")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"")
    assert cached_settings(known, tmp_path / "runs") == ((64, "squash"),)
    line = folder_line(known, preview_folder(root, images=False), ((64, "squash"),))
    assert line == f"`{root}`: 2 classes · 5 images in train/, no test/ · 2 runs · decoded: 64x64 squash"
    # A folder gone since its run: why it cannot be read, in its line.
    gone = KnownFolder(root=str(tmp_path / "gone"), runs=1, settings=((32, "crop"),))
    assert folder_line(gone, preview_folder(gone.root, images=False), ()) == (
        f"`{tmp_path / 'gone'}`: " + md_escape(f"image folder {tmp_path / 'gone'} does not exist"))
