"""How far two runs agree on which training images are unforgettable and which are
hard to learn (no Streamlit here).

The runs' records are aligned by dataset index (each record's ``indices``), never by
position: two runs with different ``--subset`` or validation carving train on different
images, and the sets are then compared on the images both trained on, which the
comparison says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..data_maps import HARD, REGIONS
from ..dynamics import Dynamics


@dataclass(frozen=True)
class SetOverlap:
    name: str
    a: int  # images in A's set (of the shared images)
    b: int
    both: int  # in both sets

    @property
    def union(self) -> int:
        return self.a + self.b - self.both

    @property
    def jaccard(self) -> float | None:
        """|A ∩ B| / |A ∪ B|; None when both sets are empty."""
        return self.both / self.union if self.union else None


@dataclass(frozen=True)
class Overlap:
    a_images: int  # images A trained on
    b_images: int
    shared: int  # images both trained on: the sets are compared on these
    relabelled: int  # shared images trained with another label in B than in A (other label noise)
    sets: tuple[SetOverlap, ...]

    @property
    def same_images(self) -> bool:
        return self.shared == self.a_images == self.b_images

    def images_text(self) -> str:
        """One sentence on which images were compared."""
        if self.same_images:
            text = f"Both runs trained on the same {self.shared:,} images."
        else:
            text = (f"The runs trained on different image sets: A on {self.a_images:,}, B on {self.b_images:,}; "
                    f"the sets are compared on the {self.shared:,} images both trained on.")
        if self.relabelled:
            text += (f" {self.relabelled:,} of them carried a different label in the two runs (other planted "
                     "label noise).")
        return text


def overlap(a_indices: np.ndarray, a_labels: np.ndarray, a_sets: Mapping[str, np.ndarray],
            b_indices: np.ndarray, b_labels: np.ndarray, b_sets: Mapping[str, np.ndarray]) -> Overlap:
    """The overlap of each named set (a bool mask over each run's images, in its record's
    order; both runs name the same sets) on the images both runs trained on (matched by
    dataset index)."""
    a_indices, b_indices = np.asarray(a_indices, dtype=np.int64), np.asarray(b_indices, dtype=np.int64)
    _, a_rows, b_rows = np.intersect1d(a_indices, b_indices, assume_unique=True, return_indices=True)
    relabelled = int((np.asarray(a_labels)[a_rows] != np.asarray(b_labels)[b_rows]).sum())
    sets = []
    for name, a_mask in a_sets.items():
        in_a = np.asarray(a_mask, dtype=bool)[a_rows]
        in_b = np.asarray(b_sets[name], dtype=bool)[b_rows]
        sets.append(SetOverlap(name, int(in_a.sum()), int(in_b.sum()), int((in_a & in_b).sum())))
    return Overlap(len(a_indices), len(b_indices), len(a_rows), relabelled, tuple(sets))


def training_sets(d: Dynamics) -> dict[str, np.ndarray]:
    """The sets two runs are compared on: the unforgettable images and the hard-to-learn
    region of the data map, as masks over the record's images."""
    return {"unforgettable": d.forgetting.unforgettable, REGIONS[HARD]: d.data_map.region == HARD}


def runs_overlap(a: Dynamics, b: Dynamics) -> Overlap:
    """The overlap of two runs' unforgettable and hard-to-learn images, by dataset index."""
    return overlap(a.record.indices, a.record.labels, training_sets(a),
                   b.record.indices, b.record.labels, training_sets(b))


def overlap_rows(o: Overlap) -> list[dict]:
    """One table row per set: its images in A, in B, in both, in one only, and the Jaccard index."""
    return [{"set": s.name, "A": s.a, "B": s.b, "both": s.both, "only A": s.a - s.both, "only B": s.b - s.both,
             "jaccard": s.jaccard} for s in o.sets]
