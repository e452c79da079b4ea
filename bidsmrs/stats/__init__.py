"""Group-level QC gating and statistics (DESIGN.md §8).

Typical chain (the orchestrator, ``group.py``, reads and writes the files)::

    qc_g = gate_spectra(qc, thresholds)                       # -> group_desc-qc_svs.tsv
    conc_g = gate_metabolites(conc, qc_g, thresholds)         # included / exclusion_reason
    log = exclusion_log(conc_g, qc_g)                         # for group.html
    conc_g = add_spectrum_columns(conc_g, tissue, ["gm_fraction"])
    values = collapse_repeats(conc_g, measure=measure)        # one row per participant/metabolite
    group_statistics(values, participants, group_by=..., covariates=..., measure_name=measure)
    correlations(values, participants, columns=..., covariates=..., group_by=..., measure_name=measure)
"""
from bidsmrs.stats.anova import GROUP_SIZE_COLUMNS, STATS_COLUMNS, group_sizes, group_statistics
from bidsmrs.stats.correlation import correlations
from bidsmrs.stats.qc_gating import (QcThresholds, exclusion_criteria, exclusion_log, gate_metabolites,
                                     gate_spectra)
from bidsmrs.stats.sessions import ENTITY_COLUMNS, add_spectrum_columns, collapse_repeats, collapse_tissue

__all__ = [
    "ENTITY_COLUMNS", "GROUP_SIZE_COLUMNS", "STATS_COLUMNS", "QcThresholds", "add_spectrum_columns",
    "collapse_repeats", "collapse_tissue", "correlations", "exclusion_criteria", "exclusion_log",
    "gate_metabolites", "gate_spectra", "group_sizes", "group_statistics",
]
