"""Provides the regression kit of the leak detector: OLS, trend fits, step and hinge models.

Everything here is pure numpy on short arrays (tens to a few hundred points), so the online
detector can afford to call it whenever a block closes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MIB: float = 1024.0 * 1024.0
HOUR: float = 3600.0

FloatArray = NDArray[np.float64]


def sorted_median(s: FloatArray) -> float:
    """Median of an already sorted, non-empty array (np.median is slow on tiny arrays)."""
    n = s.size
    return float(s[(n - 1) // 2] + s[n // 2]) * 0.5


def normal_cdf(z: float) -> float:
    """Standard normal CDF (no scipy)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def t_crit(df: int) -> float:
    """Approximate two-sided 95% / one-sided 97.5% Student-t quantile; wide for few points."""
    return 1.96 + 2.4 / max(df, 1)


@dataclass(frozen=True, slots=True)
class Ols:
    """A straight-line least-squares fit with its residual diagnostics."""

    slope: float
    intercept: float
    se: float
    """Naive standard error of the slope (independent residuals)."""
    sse: float
    r_squared: float
    rho: float
    """Lag-1 autocorrelation of the residuals, clipped to [0, 0.9]."""
    n: int

    @property
    def se_hac(self) -> float:
        """Slope standard error inflated for AR(1)-like residuals: sqrt((1+rho)/(1-rho))."""
        return self.se * math.sqrt((1.0 + self.rho) / (1.0 - self.rho))


_ZERO_OLS = Ols(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)


def ols(x: FloatArray, y: FloatArray) -> Ols:
    """Fit y = a + b x; degenerate input (n < 3, no spread in x) gives a zero fit, never NaN."""
    n = int(x.size)
    if n < 3:
        return _ZERO_OLS if n == 0 else Ols(0.0, float(np.mean(y)), 0.0, 0.0, 0.0, 0.0, n)
    xm = float(np.add.reduce(x)) / n
    ym = float(np.add.reduce(y)) / n
    dx = x - xm
    dy = y - ym
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if not sxx > 0.0 or not math.isfinite(sxx):
        return Ols(0.0, ym, 0.0, syy, 0.0, 0.0, n)
    b = float(dx @ dy) / sxx
    resid = dy - b * dx
    sse = max(float(resid @ resid), 0.0)
    r2 = 0.0 if syy <= 0.0 else max(0.0, min(1.0, 1.0 - sse / syy))
    se = math.sqrt(sse / (n - 2) / sxx)
    rho = 0.0
    if n >= 6 and sse > 0.0:
        rho = float(resid[1:] @ resid[:-1]) / sse
        rho = min(0.9, max(0.0, rho))
    return Ols(b, ym - b * xm, se, sse, r2, rho, n)


def step_sse(y: FloatArray, min_seg: int = 3) -> tuple[float, int]:
    """Best two-level (single step) fit: (SSE, index of the first point after the step)."""
    n = int(y.size)
    if n < 2 * min_seg:
        return math.inf, 0
    yc = y - y.mean()
    c1 = np.cumsum(yc)
    tot = float(c1[-1])
    k = np.arange(min_seg, n - min_seg + 1)
    s_left = c1[k - 1]
    s_right = tot - s_left
    explained = s_left**2 / k + s_right**2 / (n - k)
    i = int(np.argmax(explained))
    sse = float(yc @ yc) - float(explained[i])
    return max(sse, 0.0), int(k[i])


def hinge_fit(x: FloatArray, y: FloatArray, min_after: int = 6) -> tuple[float, float, float]:
    """Fit y = a + b*max(x - x0, 0) (flat, then linear) over candidate x0: (x0, b, sse)."""
    n = int(x.size)
    if n < min_after + 1:
        fit = ols(x, y)
        return (float(x[0]) if n else 0.0), fit.slope, fit.sse
    cands = x[: n - min_after + 1]
    h = np.maximum(x[None, :] - cands[:, None], 0.0)
    hm = h.mean(axis=1, keepdims=True)
    dh = h - hm
    ym = float(y.mean())
    dy = y - ym
    shh = np.einsum("ij,ij->i", dh, dh)
    shy = dh @ dy
    ok = shh > 0.0
    b = np.where(ok, shy / np.where(ok, shh, 1.0), 0.0)
    sse = float(dy @ dy) - b * shy
    i = int(np.argmin(np.where(ok, sse, np.inf)))
    return float(cands[i]), float(b[i]), max(float(sse[i]), 0.0)


@dataclass(frozen=True, slots=True)
class TrendFit:
    """A plain least-squares trend of RSS over time."""

    slope_bytes_per_s: float
    intercept_bytes: float
    r_squared: float
    slope_stderr: float
    """Standard error of the slope, bytes per second (independent residuals assumed)."""
    rate_mb_per_hour: float
    confidence: float
    """One-sided probability that the slope exceeds the threshold (or 0 when none is given)."""


def fit_trend(
    t_s: Sequence[float] | NDArray[np.floating],
    rss_bytes: Sequence[float] | NDArray[np.floating],
    threshold_mb_per_hour: float = 0.0,
) -> TrendFit:
    """Least-squares trend of RSS on time; n < 3 or zero variance gives zeros and confidence 0."""
    x = np.asarray(t_s, dtype=np.float64).ravel()
    y = np.asarray(rss_bytes, dtype=np.float64).ravel()
    n = min(x.size, y.size)
    x, y = x[:n], y[:n]
    good = np.isfinite(x) & np.isfinite(y)
    if not bool(good.all()):
        x, y = x[good], y[good]
    fit = ols(x, y)
    if fit.n < 3 or (fit.slope == 0.0 and fit.se == 0.0):
        return TrendFit(0.0, fit.intercept, 0.0, 0.0, 0.0, 0.0)
    rate = fit.slope * HOUR / MIB
    thr_bps = threshold_mb_per_hour * MIB / HOUR
    if fit.se > 0.0:
        conf = normal_cdf((fit.slope - thr_bps) / fit.se)
    else:
        conf = 1.0 if fit.slope > thr_bps else 0.0
    return TrendFit(fit.slope, fit.intercept, fit.r_squared, fit.se, rate, conf)
