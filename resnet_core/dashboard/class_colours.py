"""Class colours that a reader can take in for many classes (no Streamlit here).

Nobody tells 100 colours apart, so where a run's classes have superclasses (CIFAR-100: 20
of 5 classes each) a class's hue says its superclass (20 hues, a legend of 20 entries) and
its shade which of the superclass's classes it is (darkest: the lowest label); hover names
the class. A colour depends only on the class's superclass and its rank there, so it stays
the same from run to run of the same class list. Without superclasses, classes take
distinct colours (figure_style.run_colours: PALETTE for ten).
"""

from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np

from .figure_style import DISTINCT_COLOURS, run_colours

SUPERCLASS_BASES = DISTINCT_COLOURS  # the superclasses' hues
SHADE_SPREAD = 0.36  # lightness from the darkest to the lightest class of a superclass (HLS, 0-1)
LIGHTNESS = (0.18, 0.82)  # the shades' range: darker is black, lighter white on a white page


def has_superclasses(n_classes: int, superclass_of: Sequence[int]) -> bool:
    """Whether superclass_of groups these n_classes (one superclass index per class)."""
    return n_classes > 0 and len(superclass_of) == n_classes


def superclass_colours(n_superclasses: int) -> list[str]:
    """Each superclass's colour: SUPERCLASS_BASES, then distinct colours past them."""
    more = run_colours(n_superclasses + len(SUPERCLASS_BASES))
    return list(dict.fromkeys(SUPERCLASS_BASES + tuple(more)))[:n_superclasses]


def _shade(colour: str, rank: int, members: int) -> str:
    """colour at the rank-th of members lightness steps, darkest first, around its own
    lightness moved into LIGHTNESS so that no two steps are cut to the same."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    low, high = LIGHTNESS
    centre = min(high - SHADE_SPREAD / 2, max(low + SHADE_SPREAD / 2, lightness))
    step = SHADE_SPREAD / (members - 1) if members > 1 else 0.0
    lightness = centre + step * (rank - (members - 1) / 2)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return f"#{round(255 * r):02X}{round(255 * g):02X}{round(255 * b):02X}"


def class_colours(n_classes: int, superclass_of: Sequence[int] = ()) -> list[str]:
    """One colour per class: its superclass's hue in a shade of its own where superclass_of
    groups the classes, else distinct colours."""
    if not has_superclasses(n_classes, superclass_of):
        return run_colours(n_classes)
    groups = np.asarray(superclass_of, dtype=np.int64)
    bases = superclass_colours(int(groups.max()) + 1)
    members = np.bincount(groups)
    rank = [int((groups[:c] == groups[c]).sum()) for c in range(n_classes)]
    return [_shade(bases[g], rank[c], int(members[g])) for c, g in enumerate(groups.tolist())]
