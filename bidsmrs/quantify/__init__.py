"""Tissue fractions and water-referenced quantification (DESIGN.md §6).

Typical use by the participant workflow::

    cfg = load_quant_config(opts.quant_config, spectrum.field_strength_t,
                            metabolite_names=fit.names)
    vm = voxel_mask(spectrum.affine, gm.shape, maps_affine)          # on the maps' grid
    tissue = fractions_from_maps(vm, gm, wm, csf, source=f"anat-derivatives:{files.gm}")
    conc = quantify(fit, water_amplitude=s_w, tissue=tissue, echo_time_s=te,
                    repetition_time_s=tr, config=cfg)
"""
from bidsmrs.quantify.concentrations import COLUMNS, Concentrations, quantify
from bidsmrs.quantify.config import QuantConfig, load_quant_config
from bidsmrs.quantify.tissue import TissueFractions, fixed_fractions, fractions_from_maps
from bidsmrs.quantify.voxel_mask import VoxelMask, voxel_mask

__all__ = ["COLUMNS", "Concentrations", "quantify", "QuantConfig", "load_quant_config",
           "TissueFractions", "fixed_fractions", "fractions_from_maps", "VoxelMask", "voxel_mask"]
