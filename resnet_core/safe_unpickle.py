"""A pickle reader that builds only what the CIFAR python files hold.

The official files (and re-packed copies: any protocol, NumPy 1 or 2 names) hold dicts,
lists, bytes, str, numbers, NumPy arrays, their dtypes and NumPy scalars. Unpickling them
with pickle.load could call anything a crafted file names (os.system...); this reader
resolves only those globals, so such a file is refused before it can run anything.
"""

from __future__ import annotations

import pickle
from pathlib import Path


class UnpickleRefused(pickle.UnpicklingError):
    """A pickle that references something CIFAR data never holds (a function to run, a codec
    other than latin1)."""


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3's protocol 0-2 pickles rebuild bytes with (``_codecs.encode(text,
    "latin1")``); any other codec is no CIFAR data, refused as find_class refuses."""
    if encoding not in ("latin1", "latin-1"):
        raise UnpickleRefused(f"refusing to unpickle _codecs.encode with {encoding!r} (not CIFAR data)")
    return text.encode("latin1")


# Everything but plain values (dict, list, bytes, str, numbers) that the official python files
# and re-packed copies (any protocol, NumPy 1 or 2 names) reference: arrays, their dtypes and
# NumPy scalars. Found by pickling such batches (numpy.core.* in the official Python 2 files).
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((f"{numpy}.multiarray", name) for numpy in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")),
    *((f"{numpy}.numeric", "_frombuffer") for numpy in ("numpy.core", "numpy._core")),  # protocol 5
}


class _CifarUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only _CIFAR_GLOBALS: unpickling can then build dicts,
    lists, strings, numbers and NumPy arrays, never call anything else."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        if (module, name) not in _CIFAR_GLOBALS:
            raise UnpickleRefused(f"refusing to unpickle {module}.{name} (not CIFAR data)")
        return super().find_class(module, name)


def load_cifar_pickle(path: Path):
    """The object in a CIFAR python file (Python 2's str as bytes); UnpickleRefused for a
    pickle that references anything else, whatever pickle raises for a damaged one."""
    with open(path, "rb") as f:
        return _CifarUnpickler(f, encoding="bytes").load()
