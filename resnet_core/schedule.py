"""Learning-rate (and momentum) as a pure function of the optimizer step.

Being a function of the step alone, the schedule needs no state beyond the step count to
resume exactly, and it works per iteration as the paper's does (lr / 10 at 32k and 48k
iterations), whatever the number of steps per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("multistep", "cosine", "onecycle")
WARMUPS = ("linear", "constant")


@dataclass(frozen=True)
class Schedule:
    kind: str
    base_lr: float
    total_steps: int
    milestones: tuple[int, ...] = ()  # multistep: steps at which lr is divided by 10
    warmup_steps: int = 0
    warmup: str = "linear"  # linear ramp from 0, or constant lr / 10 (the paper's ResNet-110)
    base_momentum: float = 0.9

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; valid: {', '.join(SCHEDULES)}")
        if self.warmup not in WARMUPS:
            raise ValueError(f"unknown warm-up {self.warmup!r}; valid: {', '.join(WARMUPS)}")

    def lr(self, step: int) -> float:
        """The learning rate for optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            if self.warmup == "constant":
                return self.base_lr / 10
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind == "multistep":
            return self.base_lr * 0.1 ** sum(step >= m for m in self.milestones)
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            t = min(1.0, (step - self.warmup_steps) / span)
            return self.base_lr * 0.5 * (1 + math.cos(math.pi * t))
        return self.base_lr * self._onecycle(step)[0]

    def momentum(self, step: int) -> float:
        """One-cycle moves momentum against the lr (0.95 -> 0.85 -> 0.95); others keep it."""
        if self.kind == "onecycle" and step >= self.warmup_steps:
            return self._onecycle(step)[1]
        return self.base_momentum

    def _onecycle(self, step: int) -> tuple[float, float]:
        """(lr factor, momentum) of torch's OneCycleLR defaults: cosine up over 30% of the
        steps from lr/25, then cosine down to lr/25e4, momentum cycling 0.95 <-> 0.85."""
        span = max(2, self.total_steps - self.warmup_steps)
        t = step - self.warmup_steps
        peak = 0.3 * span - 1
        start, end = 1 / 25, 1 / 25e4

        def cos_anneal(a: float, b: float, pct: float) -> float:
            return b + (a - b) / 2 * (math.cos(math.pi * min(1.0, max(0.0, pct))) + 1)

        if t <= peak:
            pct = t / peak
            return cos_anneal(start, 1.0, pct), cos_anneal(0.95, 0.85, pct)
        pct = (t - peak) / (span - 1 - peak)
        return cos_anneal(1.0, end, pct), cos_anneal(0.85, 0.95, pct)
