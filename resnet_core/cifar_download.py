"""Download CIFAR-10 or CIFAR-100: the official archive, md5-verified, its python version
extracted into the data folder, nothing else written and nothing written through a link."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable

from .cifar import DataError, Dataset, ProgressCallback, dataset_present, dataset_spec, missing_data_message, \
    resolve_data_dir
from .outputs import OutputRefused, check_output_path, replacing
from .runs.files import file_kind


def download_cifar(dataset: str, data_dir: str | os.PathLike | None = None, progress: ProgressCallback | None = None,
                   url: str | None = None, md5: str | None = None) -> Path:
    """Download, md5-check and extract the dataset's official archive (or url, md5) into data_dir.

    Reports (bytes done, bytes total) to progress as it goes. Nothing half-written is left
    behind: the archive is downloaded to a temp name and only extracted once verified. Every
    file, the archive's and the extracted ones, is written as :mod:`resnet_core.outputs`
    says: a symbolic link, FIFO or device at its name is refused, never written through.
    """
    spec = dataset_spec(dataset)
    url, md5 = url or spec.url, md5 or spec.md5
    data_dir = resolve_data_dir(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file, FIFO or device at the name or on the way to it, no right to make it
        if data_dir.exists():
            raise DataError(f"the data folder {data_dir} is {file_kind(os.stat(data_dir).st_mode)}, not a folder: "
                            "give a folder for --data-dir") from None
        raise DataError(f"the data folder {data_dir} cannot be made ({e.strerror or e})") from None
    archive = data_dir / spec.archive
    what = f"the {spec.title} archive"
    try:
        if _md5(check_output_path(archive, what)) != md5:
            with replacing(archive, what) as partial:
                _download(url, partial, progress, lambda reason: missing_data_message(dataset, data_dir, reason))
                if _md5(partial) != md5:
                    raise DataError(f"the download of {url} is corrupt (md5 differs from {md5}); try again")
        _extract(archive, data_dir, spec)
    except OutputRefused as e:
        raise DataError(str(e)) from None
    if not dataset_present(dataset, data_dir):
        raise DataError(missing_data_message(dataset, data_dir, f"{archive.name} did not contain {spec.folder}/"))
    return data_dir


def _md5(path: Path) -> str | None:
    """The md5 of a regular file's bytes; None when it is missing."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _download(url: str, path: Path, progress: ProgressCallback | None, missing: Callable[[str], str]) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(path, "xb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as e:
        raise DataError(missing(f"download from {url} failed: {e}")) from e


def _extract(archive: Path, data_dir: Path, spec: Dataset) -> None:
    """The archive's spec.folder into data_dir: its folders made, its regular files each
    written through outputs.replacing (so never through a link planted at its name), any
    other member, or one outside spec.folder, skipped."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not parts or parts[0] != spec.folder or ".." in parts:
                    continue
                target = data_dir.joinpath(*parts)
                if member.isdir():
                    if target.is_symlink():  # its files would land wherever the link points
                        raise OutputRefused(f"{target} is a symbolic link, not a folder: nothing written there")
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    with replacing(target, f"{spec.title} file") as tmp, tar.extractfile(member) as src, \
                            open(tmp, "xb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"could not extract {archive}: {e}") from e
