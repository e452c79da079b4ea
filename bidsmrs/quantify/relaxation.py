"""Relaxation attenuation factors (DESIGN.md §6.2).

For a spin-echo (PRESS/sLASER) or STEAM acquisition with 90° excitation the detected
signal of a compartment with T1, T2 is attenuated by

    R = exp(−TE/T2) · (1 − exp(−TR/T1))

(Gasparovic 2006 MRM 55:1219, eq. 1 terms; Near 2021 NMR Biomed 34:e4257 eq. 4).  STEAM's
mixing-time T1 decay is not modelled (it cancels to first order between water and
metabolites with similar T1; noted in the quantification JSON).
"""
from __future__ import annotations

import math
from typing import Mapping

from bidsmrs.quantify.constants import TISSUES


def attenuation(echo_time_s: float, repetition_time_s: float, t1_s: float, t2_s: float) -> float:
    """Signal fraction ``exp(−TE/T2)·(1 − exp(−TR/T1))`` remaining after relaxation.

    Parameters
    ----------
    echo_time_s, repetition_time_s : float
        TE and TR (s).
    t1_s, t2_s : float
        Longitudinal and transverse relaxation times (s).

    Examples
    --------
    >>> round(attenuation(0.03, 1000.0, 1.3, 0.16), 6)   # TR >> T1: only T2 decay
    0.829029
    """
    return math.exp(-echo_time_s / t2_s) * (1.0 - math.exp(-repetition_time_s / t1_s))


def water_attenuations(echo_time_s: float, repetition_time_s: float,
                       t1_s: Mapping[str, float], t2_s: Mapping[str, float]) -> dict[str, float]:
    """``{tissue: R_w,t}`` for ``gm``, ``wm``, ``csf`` (s in, dimensionless out)."""
    return {t: attenuation(echo_time_s, repetition_time_s, t1_s[t], t2_s[t]) for t in TISSUES}
