"""Real in vivo data (../shared/data/real): the pipeline runs and results are plausible (issue 2)."""
from __future__ import annotations

import pytest

from bidsmrs.cli import main
from bidsmrs.outputs import naming
from bidsmrs.outputs.tables import read_tsv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("real")]


@pytest.fixture(scope="module")
def philips(shared_dir, tmp_path_factory):
    bids = shared_dir / "data" / "real" / "philips_press_3t"
    out = tmp_path_factory.mktemp("philips") / "out"
    common = [str(bids), str(out), "participant", "--nprocs", "1"]
    # sub-01/02 have no T1w: fixed fractions; sub-03/04 use their T1w (built-in segmentation)
    code_a = main(common + ["--participant-label", "01", "02", "--tissue-fractions", "0.6", "0.4", "0.0"])
    code_b = main(common + ["--participant-label", "03", "04"])
    code_g = main([str(bids), str(out), "group"])
    return out, (code_a, code_b, code_g)


def _table(out, sub):
    return read_tsv(out / naming.run_file(f"sub-{sub}_ses-01_acq-press", "concentrations", ".tsv")).set_index(
        "metabolite")


def test_runs_succeed(philips):
    out, codes = philips
    assert codes == (0, 0, 0)
    assert (out / naming.GROUP_CONCENTRATIONS).is_file()


@pytest.mark.parametrize("sub", ["01", "02", "03", "04"])
def test_plausible_values(philips, sub):
    out, _ = philips
    t = _table(out, sub)
    assert 1.2 <= t.loc["tNAA", "ratio_tcr"] <= 2.0
    assert 7.0 <= t.loc["tNAA", "conc_tissue_corrected_mM"] <= 16.0


@pytest.mark.parametrize("sub", ["03", "04"])
def test_t1w_participants_use_voxel_mask(philips, sub):
    out, _ = philips
    tissue = read_tsv(out / naming.run_file(f"sub-{sub}_ses-01_acq-press", "tissue", ".tsv"))
    assert tissue.loc[0, "segmentation_source"].startswith("builtin:")
    assert 0.2 < tissue.loc[0, "gm_fraction"] < 0.8
    assert (out / naming.anat_file(f"sub-{sub}_ses-01_acq-press")).is_file()


def test_assumed_te_split_is_reported(philips):
    """The Philips sidecars carry no PulseSequenceTiming: the symmetric TE1/TE2 assumption is a run warning."""
    import json

    out, _ = philips
    side = json.loads((out / naming.run_file("sub-01_ses-01_acq-press", "concentrations", ".json")).read_text())
    assert any("TE1/TE2 unknown" in w for w in side["Warnings"])
