"""Column dictionaries (descriptions and units) of every table bidsmrs writes (DESIGN.md §3)."""
from __future__ import annotations

ENTITY_COLUMNS = {
    "participant_id": ("Participant label with the 'sub-' prefix", None),
    "session": ("Session label ('n/a' when the dataset has no sessions)", None),
    "acquisition": ("acq entity of the source spectrum", None),
    "volume": ("voi entity (volume of interest) of the source spectrum", None),
    "run": ("run entity of the source spectrum", None),
}

CONCENTRATION_COLUMNS = {
    "metabolite": ("Basis component or combined metabolite (tNAA = NAA+NAAG, tCr = Cr+PCr, "
                   "tCho = GPC+PCh, Glx = Glu+Gln, GABA+ = GABA+co-edited MM)", None),
    "amplitude": ("Fitted amplitude in basis units (one basis spectrum = one molecule at unit "
                  "concentration)", "arbitrary"),
    "crlb_percent": ("Cramér-Rao lower bound of the amplitude as a percentage of the amplitude, from the "
                     "Fisher information of the full model", "%"),
    "sd": ("Cramér-Rao standard deviation of the amplitude (basis units)", "arbitrary"),
    "ratio_tcr": ("Amplitude divided by the total creatine (Cr+PCr) amplitude", "ratio"),
    "conc_raw_water_mM": ("Water-scaled concentration without tissue or CSF correction (pure-water "
                          "reference, relaxation as documented in the quantification JSON)", "mM"),
    "conc_csf_corrected_mM": ("Water-scaled concentration divided by (1 - CSF fraction)", "mM"),
    "conc_tissue_corrected_mM": ("Tissue- and relaxation-corrected molarity (Gasparovic 2006; Near 2021 "
                                 "eq. 4)", "mM"),
    "conc_molal_mmol_per_kg": ("Tissue- and relaxation-corrected molality (Gasparovic 2018; Near 2021 "
                               "eqs. 5-6)", "mmol/kg"),
    "conc_alpha_corrected_mM": ("Alpha-corrected concentration (Harris 2015, c_WM/c_GM = alpha); GABA, GABA+, "
                                "Glu, Gln and Glx only", "mM"),
    "flag": ("ok; high_crlb (CRLB above --qc-max-crlb); not_detected (amplitude 0)", None),
}

QC_COLUMNS = {
    "snr_naa": ("NAA SNR (Kreis 2020): height of the NAA singlet in the real, phased spectrum above the "
                "local baseline divided by the standard deviation of the noise in a signal-free region; "
                "no factor 2", "ratio"),
    "snr_lcmodel": ("LCModel-style SNR: maximum of (spectrum - baseline) over the fit range divided by twice "
                    "the RMS of the fit residual", "ratio"),
    "fwhm_naa_hz": ("Full width at half maximum of the NAA singlet", "Hz"),
    "fwhm_naa_ppm": ("Full width at half maximum of the NAA singlet", "ppm"),
    "fwhm_water_hz": ("Full width at half maximum of the unsuppressed water peak", "Hz"),
    "fit_residual_ratio": ("Standard deviation of the fit residual over the fit range divided by the "
                           "standard deviation of the noise (1 = residual is noise)", "ratio"),
    "n_transients": ("Number of transients acquired (1 when the data arrived averaged)", None),
    "n_rejected": ("Number of transients rejected as outliers before averaging", None),
    "freq_drift_hz": ("Range (max - min) of the frequency corrections over the transients", "Hz"),
    "phase_drift_deg": ("Range (max - min) of the zero-order phase corrections over the transients", "degree"),
    "residual_water_ratio": ("Largest absolute real part of the final, phased spectrum in 4.4-5.0 ppm (residual "
                             "water left after HLSVD removal, or all of it when removal was not needed) divided "
                             "by the NAA peak height", "ratio"),
    "flag": ("ok, or the QC thresholds the spectrum fails (low_snr, broad_linewidth), ';'-separated", None),
}

TISSUE_COLUMNS = {
    "gm_fraction": ("Grey-matter volume fraction of the MRS voxel (fractions sum to 1)", "fraction"),
    "wm_fraction": ("White-matter volume fraction of the MRS voxel", "fraction"),
    "csf_fraction": ("CSF volume fraction of the MRS voxel", "fraction"),
    "voxel_volume_ml": ("Nominal MRS voxel volume from the NIfTI-MRS affine", "mL"),
    "overlap_fraction": ("Share of the MRS voxel inside the T1w field of view", "fraction"),
    "segmentation_source": ("anat-derivatives:<GM map>, builtin:<method>, or fixed (--tissue-fractions)", None),
}

TRANSIENT_COLUMNS = {
    "transient": ("Index of the transient (0-based, acquisition order)", None),
    "freq_shift_hz": ("Frequency correction applied by spectral registration", "Hz"),
    "phase_deg": ("Zero-order phase correction applied by spectral registration", "degree"),
    "residual_z": ("Robust z-score (scaled MAD) of the transient's residual against the median", "ratio"),
    "rejected": ("True if the transient was excluded from the average", None),
}
