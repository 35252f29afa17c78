"""Distributions of the number of physics substeps per control step.

A spec string names one distribution; it round-trips through ``str()`` so that a
dataset's metadata can say exactly how its timing was drawn.

=====================  =====================================================
spec                   substeps per step
=====================  =====================================================
``fixed``              the env's own ``frame_skip`` (Hopper-v5: 4)
``fixed:N``            always ``N``
``uniform:A-B``        uniform integer in ``[A, B]`` (both ends included)
``geometric:P``        ``1 + Geometric``: ``P(k) = (1-P)^(k-1) P``, ``k >= 1``
``geometric:P:MAX``    the same, clipped to ``MAX``
=====================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

TimingKind = Literal["fixed", "uniform", "geometric"]
TIMING_KINDS: tuple[str, ...] = ("fixed", "uniform", "geometric")


@dataclass(frozen=True)
class TimingSpec:
    """How many physics substeps one control step lasts.

    Attributes:
        kind: ``fixed``, ``uniform`` or ``geometric``.
        low: fixed count, or the smallest uniform count (``None``: the env's frame_skip).
        high: largest uniform count, or the geometric cap (``None``: no cap).
        p: success probability of the geometric distribution, in ``(0, 1]``.
    """

    kind: TimingKind = "fixed"
    low: int | None = None
    high: int | None = None
    p: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in TIMING_KINDS:
            raise ValueError(f"unknown timing kind {self.kind!r}; expected one of {TIMING_KINDS}")
        if self.kind == "fixed" and self.low is not None and self.low < 1:
            raise ValueError(f"timing fixed:{self.low}: substeps must be >= 1")
        if self.kind == "uniform":
            if self.low is None or self.high is None or not 1 <= self.low <= self.high:
                raise ValueError(f"timing uniform:{self.low}-{self.high}: need 1 <= low <= high")
        if self.kind == "geometric":
            if self.p is None or not 0.0 < self.p <= 1.0:
                raise ValueError(f"timing geometric:{self.p}: p must be in (0, 1]")
            if self.high is not None and self.high < 1:
                raise ValueError(f"timing geometric cap {self.high} must be >= 1")

    @classmethod
    def parse(cls, spec: str | TimingSpec) -> TimingSpec:
        """Parse ``fixed``, ``fixed:N``, ``uniform:A-B``, ``geometric:P`` or ``geometric:P:MAX``."""
        if isinstance(spec, TimingSpec):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"timing must be a spec string or a TimingSpec, got {spec!r}; {_USAGE}")
        text = spec.strip().lower()
        kind, _, rest = text.partition(":")
        try:
            if kind == "fixed":
                return cls("fixed", low=int(rest) if rest else None)
            if kind == "uniform":
                lo, sep, hi = rest.partition("-")
                if not sep:
                    raise ValueError
                return cls("uniform", low=int(lo), high=int(hi))
            if kind == "geometric":
                p, _, cap = rest.partition(":")
                return cls("geometric", p=float(p), high=int(cap) if cap else None)
        except ValueError as err:
            if str(err).startswith("timing"):
                raise
            raise ValueError(f"malformed timing spec {spec!r}; {_USAGE}") from None
        raise ValueError(f"unknown timing spec {spec!r}; {_USAGE}")

    def __str__(self) -> str:
        if self.kind == "fixed":
            return "fixed" if self.low is None else f"fixed:{self.low}"
        if self.kind == "uniform":
            return f"uniform:{self.low}-{self.high}"
        return f"geometric:{self.p:g}" + ("" if self.high is None else f":{self.high}")

    def sample(self, rng: np.random.Generator, default: int) -> int:
        """Draw one substep count; ``default`` is the env's own frame_skip."""
        if self.kind == "fixed":
            return default if self.low is None else self.low
        if self.kind == "uniform":
            return int(rng.integers(self.low, self.high + 1))
        k = int(rng.geometric(self.p))
        return k if self.high is None else min(k, self.high)

    def mean(self, default: int) -> float:
        """Expected substeps per step (for the geometric cap, computed exactly)."""
        if self.kind == "fixed":
            return float(default if self.low is None else self.low)
        if self.kind == "uniform":
            return (self.low + self.high) / 2.0
        if self.high is None:
            return 1.0 / self.p
        k = np.arange(1, self.high + 1)
        pmf = (1 - self.p) ** (k - 1) * self.p
        pmf[-1] = (1 - self.p) ** (self.high - 1)  # all the mass at or past the cap
        return float((k * pmf).sum())


_USAGE = "expected fixed, fixed:N, uniform:A-B, geometric:P or geometric:P:MAX"
