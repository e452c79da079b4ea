"""NIfTI-MRS reading/writing, atomic writes and JSON files (bidsmrs.io.{nifti_mrs,atomic,jsonfile})."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bidsmrs.errors import InputError
from bidsmrs.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from bidsmrs.io.jsonfile import read_json, write_json
from bidsmrs.io.nifti_mrs import (bids_sidecar_for, load_nifti_mrs, read_header_extension,
                                  save_nifti_mrs)
from bidsmrs.simulate import peak_fid
from bidsmrs.spectrum import Spectrum, StepRecord
from tests.bidsfixtures import sidecar_path, write_nifti_mrs

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DWELL = 1.0 / 2000.0
SF = 123.2
N = 1024
HALF_BIN_PPM = 0.5 / (N * DWELL) / SF  # spectral grid resolution / 2


def _fid(n=N, ppm=3.027):
    return peak_fid(n, DWELL, SF, ppm, amplitude=10.0, lorentz_hz=3.0)


def _write(tmp_path, fid=None, name="x_svs.nii.gz", **kw):
    kw.setdefault("dwell_s", DWELL)
    kw.setdefault("sf_mhz", SF)
    return write_nifti_mrs(tmp_path / name, _fid() if fid is None else fid, **kw)


def _side(path):
    return read_json(sidecar_path(path))


def _peak_ppm(spec: Spectrum) -> float:
    s = spec.spectrum().reshape(spec.n_points, -1)[:, 0]
    return float(spec.ppm[np.argmax(np.abs(s))])


# ---------------------------------------------------------------------------------------
# atomic writes and JSON
# ---------------------------------------------------------------------------------------
def test_atomic_write_creates_parents_and_content(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "b" / "c.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(p, b"xyz")
    assert p.read_bytes() == b"xyz"
    assert sorted(x.name for x in p.parent.iterdir()) == ["c.txt"]


def test_atomic_path_removes_temporary_on_error_and_keeps_old_file(tmp_path):
    final = tmp_path / "out.nii.gz"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            assert tmp.parent == final.parent and tmp.name.endswith(".nii.gz")
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert final.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.nii.gz"]


def test_atomic_path_fails_when_writer_wrote_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "never.txt"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_sorted_converts_numpy_and_nan(tmp_path):
    p = write_json(tmp_path / "d" / "x.json", {"b": np.float32(1.5), "a": np.arange(3),
                                               "c": float("nan"), "d": {"z": np.int64(2),
                                                                        "y": (1, np.inf)},
                                               "e": np.bool_(True), "f": Path("/x")})
    text = p.read_text()
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert text.startswith('{\n  "a"')
    obj = json.loads(text)
    assert obj == {"a": [0, 1, 2], "b": 1.5, "c": None, "d": {"y": [1, None], "z": 2},
                   "e": True, "f": "/x"}
    assert read_json(p) == obj


@pytest.mark.parametrize("content, match", [
    (None, "file not found"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"a": 1,\n "b": }', "invalid JSON at line 2 column"),
    (b"[1, 2]", "top level must be an object, found list"),
])
def test_read_json_errors_are_one_line(tmp_path, content, match):
    p = tmp_path / "x.json"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        read_json(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def test_load_basic_fields_and_known_ppm(tmp_path):
    path = _write(tmp_path, te_s=0.035, tr_s=2.0, header_extra={"Manufacturer": "X"})
    spec = load_nifti_mrs(path, sidecar=_side(path))
    assert spec.fid.shape == (N,) and spec.fid.dtype == np.complex128
    assert spec.dim_tags == ()
    assert spec.dwell_s == pytest.approx(DWELL)
    assert spec.spectrometer_mhz == pytest.approx(SF)
    assert spec.nucleus == "1H" and spec.ppm_centre == pytest.approx(4.65)
    assert spec.echo_time_s == pytest.approx(0.035) and spec.repetition_time_s == pytest.approx(2.0)
    assert spec.header["Manufacturer"] == "X"
    assert spec.history == ()
    np.testing.assert_allclose(spec.affine, np.diag([20.0, 20.0, 20.0, 1.0]))
    # a peak written at 3.027 ppm (stored convention) is found at 3.027 ppm
    assert _peak_ppm(spec) == pytest.approx(3.027, abs=HALF_BIN_PPM)


@pytest.mark.parametrize("version", [1, 2])
def test_nifti1_and_nifti2_and_time_units(tmp_path, version):
    path = _write(tmp_path, nifti_version=version)
    img = nib.load(str(path))
    img.header.set_xyzt_units("mm", "msec")
    pix = img.header["pixdim"].copy()
    pix[4] = DWELL * 1000
    img.header["pixdim"] = pix
    nib.save(img, str(path))
    spec = load_nifti_mrs(path)
    assert spec.dwell_s == pytest.approx(DWELL)


def test_header_extension_as_str_and_dict_content(tmp_path, monkeypatch):
    path = _write(tmp_path)
    ext_cls = nib.nifti1.Nifti1Extension
    original = ext_cls.get_content
    for kind in (lambda c: c.decode(), lambda c: json.loads(c)):
        monkeypatch.setattr(ext_cls, "get_content", lambda self, k=kind: k(original(self)))
        assert load_nifti_mrs(path).spectrometer_mhz == pytest.approx(SF)


def test_higher_dims_tags_and_trailing_singletons(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((N, 4, 8, 1)) + 1j * rng.standard_normal((N, 4, 8, 1))
    path = _write(tmp_path, data, dim_tags=("DIM_COIL", "DIM_DYN", "DIM_EDIT"))
    spec = load_nifti_mrs(path)
    assert spec.fid.shape == (N, 4, 8)
    assert spec.dim_tags == ("DIM_COIL", "DIM_DYN")
    np.testing.assert_allclose(spec.fid, data[..., 0].astype(np.complex64))
    # without dim_N keys the defaults apply
    path2 = _write(tmp_path, data[..., 0, 0], name="y_svs.nii.gz")
    assert load_nifti_mrs(path2).dim_tags == ("DIM_COIL",)
    path3 = _write(tmp_path, data[:, :, :, 0], name="z_svs.nii.gz", dim_tags=("DIM_DYN", "DIM_COIL"))
    spec3 = load_nifti_mrs(path3)
    assert spec3.dim_tags == ("DIM_DYN", "DIM_COIL") and spec3.fid.shape == (N, 4, 8)


def test_sidecar_fills_missing_header_values(tmp_path):
    path = _write(tmp_path, te_s=None, tr_s=None,
                  header_extra={"SpectrometerFrequency": None, "ResonantNucleus": None},
                  sidecar_extra={"EchoTime": 0.03, "RepetitionTime": 3.0, "MixingTime": 0.01})
    spec = load_nifti_mrs(path, sidecar=_side(path))
    assert spec.spectrometer_mhz == pytest.approx(SF) and spec.nucleus == "1H"
    assert (spec.echo_time_s, spec.repetition_time_s, spec.mixing_time_s) == pytest.approx(
        (0.03, 3.0, 0.01))


def test_scalar_vs_array_normalisation_is_not_a_mismatch(tmp_path):
    path = _write(tmp_path, header_extra={"SpectrometerFrequency": SF, "ResonantNucleus": "1H"},
                  sidecar_extra={"SpectrometerFrequency": [SF], "ResonantNucleus": ["1H"]})
    assert load_nifti_mrs(path, sidecar=_side(path)).spectrometer_mhz == pytest.approx(SF)


def test_ppm_centre_from_specfreqchemshift_and_rxoffset(tmp_path):
    path = _write(tmp_path, header_extra={"SpecFreqChemShift": 4.7, "RxOffset": -1.0})
    spec = load_nifti_mrs(path)
    assert spec.ppm_centre == pytest.approx(3.7)
    # the same stored peak therefore sits 0.95 ppm lower than with the default centre
    assert _peak_ppm(spec) == pytest.approx(3.027 - 0.95, abs=HALF_BIN_PPM)
    p31 = _write(tmp_path, name="p_svs.nii.gz", nucleus="31P", sf_mhz=51.0)
    assert load_nifti_mrs(p31).ppm_centre == pytest.approx(0.0)


def test_long_tr_is_legitimate(tmp_path):
    path = _write(tmp_path, tr_s=100.0)
    assert load_nifti_mrs(path, sidecar=_side(path)).repetition_time_s == pytest.approx(100.0)


def test_real_philips_and_siemens_files():
    real = SHARED / "data" / "real"
    if not real.is_dir():
        pytest.skip(f"shared real data not found at {real}")
    svs = real / "philips_press_3t/sub-03/ses-01/mrs/sub-03_ses-01_acq-press_svs.nii.gz"
    spec = load_nifti_mrs(svs, sidecar=read_json(sidecar_path(svs)))
    assert spec.fid.shape == (2048,) and spec.dwell_s == pytest.approx(5e-4)
    assert spec.echo_time_s == pytest.approx(0.03)
    assert abs(spec.affine[0, 0]) > 20  # oblique 26 mm voxel
    raw = real / "siemens_steam_7t_raw/sub-01/mrs/sub-01_acq-steam_svs.nii.gz"
    spec = load_nifti_mrs(raw, sidecar=read_json(sidecar_path(raw)))
    assert spec.fid.shape == (4096, 4, 16) and spec.dim_tags == ("DIM_COIL", "DIM_DYN")
    assert spec.spectrometer_mhz == pytest.approx(297.219948)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def _assert_error(path, match, sidecar=None):
    with pytest.raises(InputError, match=match) as info:
        load_nifti_mrs(path, sidecar=sidecar)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_error_missing_empty_directory_text_truncated(tmp_path):
    _assert_error(tmp_path / "nope.nii.gz", "file not found")
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    _assert_error(empty, "empty file")
    d = tmp_path / "dir.nii.gz"
    d.mkdir()
    _assert_error(d, "is a directory")
    text = tmp_path / "text.nii.gz"
    text.write_text("this is not a NIfTI file\n" * 20)
    _assert_error(text, "not a NIfTI file: named .gz but not gzip-compressed")
    text2 = tmp_path / "text.nii"
    text2.write_text("this is not a NIfTI file\n" * 40)
    _assert_error(text2, "not a NIfTI file: no NIfTI-1/NIfTI-2 header")
    gz = tmp_path / "textgz.nii.gz"
    gz.write_bytes(gzip.compress(b"this is not a NIfTI file\n" * 40))
    _assert_error(gz, "not a NIfTI file: no NIfTI-1/NIfTI-2 header")
    short = tmp_path / "short.nii"
    short.write_bytes(b"\x5c\x01")
    _assert_error(short, "shorter than a NIfTI header")
    good = _write(tmp_path)
    raw = gzip.decompress(good.read_bytes())
    trunc = tmp_path / "trunc.nii.gz"
    trunc.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    _assert_error(trunc, "truncated or corrupt")
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(good.read_bytes()[:600])
    _assert_error(cut, "truncated or corrupt|not a readable NIfTI")
    plain = _write(tmp_path, name="plain.nii")
    blob = plain.read_bytes()
    plain.write_bytes(blob[:400])
    _assert_error(plain, "file truncated: 400 bytes, shorter than the 540-byte NIfTI header")
    plain.write_bytes(blob[:-100])
    _assert_error(plain, f"file truncated: {len(blob) - 100} bytes, the header declares {len(blob)}")


def test_error_symlink_loop_and_broken_link(tmp_path):
    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    os.symlink(b, a)
    os.symlink(a, b)
    _assert_error(a, "symlink loop")
    c = tmp_path / "c.nii.gz"
    os.symlink(tmp_path / "missing.nii.gz", c)
    _assert_error(c, "broken symlink")


def test_error_not_nifti_mrs_without_extension(tmp_path):
    img = nib.Nifti2Image(np.zeros((1, 1, 1, 16), np.complex64), np.eye(4))
    p = tmp_path / "plain.nii.gz"
    nib.save(img, str(p))
    _assert_error(p, "not NIfTI-MRS: no header extension with code 44")
    with pytest.raises(InputError, match="code 44"):
        read_header_extension(p)


def test_error_bad_extension_json(tmp_path):
    img = nib.Nifti2Image(np.zeros((1, 1, 1, 16), np.complex64), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, b'{"SpectrometerFrequency": [1'))
    p = tmp_path / "badjson.nii.gz"
    nib.save(img, str(p))
    _assert_error(p, "header extension is not valid JSON")


def test_error_real_valued(tmp_path):
    path = _write(tmp_path, dtype=np.float32, fid=np.abs(_fid()))
    _assert_error(path, "data are real-valued .*NIfTI-MRS requires complex")


def test_error_dimensions(tmp_path):
    img = nib.Nifti2Image(np.zeros((1, 1, 16), np.complex64), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(
        44, json.dumps({"SpectrometerFrequency": [SF], "ResonantNucleus": ["1H"]}).encode()))
    p = tmp_path / "3d.nii.gz"
    nib.save(img, str(p))
    _assert_error(p, "needs 4 to 7 dimensions .* has 3")
    mrsi = write_nifti_mrs(tmp_path / "mrsi.nii.gz", np.zeros((16,)), dwell_s=DWELL, sf_mhz=SF)
    img = nib.load(str(mrsi))
    img2 = nib.Nifti2Image(np.zeros((2, 2, 1, 16), np.complex64), img.affine, img.header)
    nib.save(img2, str(mrsi))
    _assert_error(mrsi, "not single-voxel: spatial dims are 2x2x1")


def test_error_huge_declared_dimensions_refused_before_reading(tmp_path):
    path = _write(tmp_path, name="huge.nii")
    raw = bytearray(path.read_bytes())
    hdr = nib.Nifti2Header.from_fileobj(__import__("io").BytesIO(bytes(raw)))
    hdr["dim"] = [7, 1, 1, 1, 4096, 1024, 1024, 64]
    raw[: hdr.sizeof_hdr] = hdr.binaryblock
    path.write_bytes(bytes(raw))
    _assert_error(path, "exceeds the 2 GiB limit")


def test_error_missing_spectrometer_frequency(tmp_path):
    path = _write(tmp_path, header_extra={"SpectrometerFrequency": None},
                  sidecar_extra={"SpectrometerFrequency": None})
    _assert_error(path, "SpectrometerFrequency missing from both", sidecar=_side(path))


@pytest.mark.parametrize("dwell", [0.0, -1e-3, float("nan"), float("inf")])
def test_error_bad_dwell(tmp_path, dwell):
    path = _write(tmp_path, write_sidecar=False)
    img = nib.load(str(path))
    pix = img.header["pixdim"].copy()
    pix[4] = dwell
    img.header["pixdim"] = pix
    nib.save(img, str(path))
    _assert_error(path, "dwell time pixdim\\[4\\] .* not a positive finite number")


def test_error_sidecar_inconsistencies(tmp_path):
    p = _write(tmp_path, sidecar_extra={"SpectralWidth": 2100.0})
    _assert_error(p, "sidecar SpectralWidth 2100 Hz is inconsistent with 1/dwell = 2000 Hz",
                  sidecar=_side(p))
    p = _write(tmp_path, name="b_svs.nii.gz", sidecar_extra={"SpectralWidth": 2010.0})
    assert load_nifti_mrs(p, sidecar=_side(p)).dwell_s == pytest.approx(DWELL)  # within 1 %
    p = _write(tmp_path, name="c_svs.nii.gz", sidecar_extra={"SpectrometerFrequency": [127.0]})
    _assert_error(p, r"sidecar SpectrometerFrequency \[127.0\] MHz differs from NIfTI-MRS header "
                     r"\[123.2\] MHz", sidecar=_side(p))
    p = _write(tmp_path, name="d_svs.nii.gz", sidecar_extra={"ResonantNucleus": "31P"})
    _assert_error(p, r"sidecar ResonantNucleus \['31P'\] differs from NIfTI-MRS header \['1H'\]",
                  sidecar=_side(p))


def test_error_timing(tmp_path):
    p = _write(tmp_path, te_s=35)
    _assert_error(p, "EchoTime 35 looks like milliseconds; BIDS requires seconds")
    p = _write(tmp_path, name="b.nii.gz", te_s=None, sidecar_extra={"EchoTime": 35})
    _assert_error(p, "EchoTime 35 looks like milliseconds", sidecar=_side(p))
    p = _write(tmp_path, name="c.nii.gz", te_s=0.0)
    _assert_error(p, "EchoTime 0 must be positive")
    p = _write(tmp_path, name="d.nii.gz", te_s=0.144, tr_s=0.1)
    _assert_error(p, "RepetitionTime 0.1 s is shorter than EchoTime 0.144 s")
    p = _write(tmp_path, name="e.nii.gz", tr_s=2000.0)
    _assert_error(p, "RepetitionTime 2000 looks like milliseconds")


def test_error_unknown_dim_tag(tmp_path):
    data = np.ones((N, 2), complex)
    p = _write(tmp_path, data, dim_tags=("DIM_FOO",))
    _assert_error(p, "unknown dimension tag dim_5 = 'DIM_FOO'")


def test_error_non_finite_samples_counted(tmp_path):
    fid = _fid()
    fid[[3, 10, 20]] = np.nan
    p = _write(tmp_path, fid)
    _assert_error(p, "data contain 3 non-finite samples")


# ---------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------
def _spectrum(fid=None, tags=(), **kw):
    fid = _fid() if fid is None else fid
    kw.setdefault("header", {"Manufacturer": "ACME", "SpectrometerFrequency": [SF],
                             "ResonantNucleus": ["1H"]})
    return Spectrum(fid=fid, dwell_s=DWELL, spectrometer_mhz=SF, dim_tags=tags,
                    echo_time_s=0.03, repetition_time_s=2.0, affine=np.diag([20.0, 25, 30, 1]), **kw)


def test_round_trip_preserves_data_header_and_ppm(tmp_path):
    rng = np.random.default_rng(5)
    fid = _fid()[:, None, None] * (1 + 0.1 * rng.standard_normal((1, 2, 3)))
    spec = _spectrum(fid, ("DIM_COIL", "DIM_DYN"), mixing_time_s=0.01)
    p = save_nifti_mrs(spec, tmp_path / "out" / "x_svs.nii.gz", version="1.2.3")
    img = nib.load(str(p))
    assert isinstance(img, nib.Nifti2Image)
    assert img.header.get_intent()[2] == "mrs_v0_11"
    assert img.header.get_data_dtype() == np.complex64
    assert img.shape == (1, 1, 1, N, 2, 3)
    assert img.header["pixdim"][4] == pytest.approx(DWELL)
    back = load_nifti_mrs(p)
    np.testing.assert_allclose(back.fid, fid, rtol=1e-6, atol=1e-5)
    assert back.dim_tags == ("DIM_COIL", "DIM_DYN")
    assert back.dwell_s == pytest.approx(DWELL) and back.spectrometer_mhz == pytest.approx(SF)
    assert (back.echo_time_s, back.repetition_time_s, back.mixing_time_s) == pytest.approx(
        (0.03, 2.0, 0.01))
    np.testing.assert_allclose(back.affine, spec.affine)
    assert back.header["Manufacturer"] == "ACME"
    assert back.header["dim_5"] == "DIM_COIL" and back.header["dim_6"] == "DIM_DYN"
    assert back.header["SpectralWidth"] == pytest.approx(2000.0)
    assert _peak_ppm(back) == pytest.approx(3.027, abs=HALF_BIN_PPM)
    assert list(tmp_path.joinpath("out").iterdir()) == [p]  # no temporary left behind


def test_round_trip_keeps_ppm_centre(tmp_path):
    spec = _spectrum(ppm_centre=4.7)
    back = load_nifti_mrs(save_nifti_mrs(spec, tmp_path / "a.nii.gz"))
    assert back.ppm_centre == pytest.approx(4.7)
    spec = _spectrum(header={"RxOffset": -0.5})
    spec = spec.replace(ppm_centre=4.15)
    back = load_nifti_mrs(save_nifti_mrs(spec, tmp_path / "b.nii.gz"))
    assert back.ppm_centre == pytest.approx(4.15) and back.header["RxOffset"] == -0.5


def test_processing_applied_appended_once(tmp_path):
    prior = {"Time": "2020", "Program": "spec2nii", "Version": "0.8", "Method": "RF coil combination",
             "Details": "vendor"}
    spec = _spectrum(header={"ProcessingApplied": [prior]})
    s1 = spec.with_step(spec.fid, StepRecord("Signal averaging", "Averaged 8 transients.",
                                             {"n": np.int64(8)}))
    s2 = s1.with_step(s1.fid, StepRecord("Phasing", "Zero-order phase.", {"phase_deg": 12.5}))
    p = save_nifti_mrs(s2, tmp_path / "a.nii.gz", program="bidsmrs", version="9.9")
    pa = read_header_extension(p)["ProcessingApplied"]
    assert [e["Method"] for e in pa] == ["RF coil combination", "Signal averaging", "Phasing"]
    assert pa[0] == prior
    assert pa[1]["Program"] == "bidsmrs" and pa[1]["Version"] == "9.9"
    assert pa[1]["Details"].startswith("Averaged 8 transients.") and '"n": 8' in pa[1]["Details"]
    assert set(pa[2]) == {"Time", "Program", "Version", "Method", "Details"}
    # loading the file and saving with the same history does not duplicate entries
    back = load_nifti_mrs(p)
    again = back.replace(history=s2.history)
    pa2 = read_header_extension(save_nifti_mrs(again, tmp_path / "b.nii.gz", version="9.9"))[
        "ProcessingApplied"]
    assert [e["Method"] for e in pa2] == ["RF coil combination", "Signal averaging", "Phasing"]
    # a further step is appended
    more = again.with_step(again.fid, StepRecord("Eddy current correction", "Klose."))
    pa3 = read_header_extension(save_nifti_mrs(more, tmp_path / "c.nii.gz", version="9.9"))[
        "ProcessingApplied"]
    assert [e["Method"] for e in pa3][-1] == "Eddy current correction" and len(pa3) == 4


def test_dim_headers_follow_their_tags_and_extra_header(tmp_path):
    hdr = {"dim_5": "DIM_COIL", "dim_6": "DIM_EDIT", "dim_6_header": {"EditCondition": ["ON", "OFF"]},
           "dim_6_info": "edit"}
    spec = _spectrum(np.ones((N, 2), complex), ("DIM_EDIT",), header=hdr)  # coils combined
    ext = read_header_extension(save_nifti_mrs(spec, tmp_path / "a.nii.gz"))
    assert ext["dim_5"] == "DIM_EDIT" and ext["dim_5_header"] == {"EditCondition": ["ON", "OFF"]}
    assert ext["dim_5_info"] == "edit" and "dim_6" not in ext and "dim_6_header" not in ext
    spec = _spectrum(np.ones((N, 3), complex), ("DIM_USER_0",))
    ext = read_header_extension(save_nifti_mrs(
        spec, tmp_path / "b.nii.gz",
        extra_header={"dim_5_header": {"Value": ["data", "fit", "baseline"], "Description": "x"}}))
    assert ext["dim_5_header"]["Value"] == ["data", "fit", "baseline"]


def test_save_is_deterministic_apart_from_time(tmp_path):
    spec = _spectrum()
    spec = spec.with_step(spec.fid, StepRecord("Phasing", "p", {"a": 1}))
    a = save_nifti_mrs(spec, tmp_path / "a.nii.gz", version="1")
    b = save_nifti_mrs(spec, tmp_path / "b.nii.gz", version="1")
    ia, ib = nib.load(str(a)), nib.load(str(b))
    np.testing.assert_array_equal(np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj))
    ea, eb = read_header_extension(a), read_header_extension(b)
    for e in (ea, eb):
        for entry in e["ProcessingApplied"]:
            entry.pop("Time")
    assert ea == eb
    assert ia.header.binaryblock == ib.header.binaryblock


def test_default_affine_is_unlocalised_and_sidecar_helper(tmp_path):
    spec = _spectrum().replace(affine=None)
    back = load_nifti_mrs(save_nifti_mrs(spec, tmp_path / "a.nii.gz"))
    np.testing.assert_allclose(np.diag(back.affine)[:3], [10000.0] * 3)
    side = bids_sidecar_for(spec, PulseSequenceType="PRESS")
    assert side["SpectrometerFrequency"] == [SF] and side["ResonantNucleus"] == ["1H"]
    assert side["SpectralWidth"] == pytest.approx(2000.0) and side["NumberOfSpectralPoints"] == N
    assert side["EchoTime"] == 0.03 and side["PulseSequenceType"] == "PRESS"
    assert "MixingTime" not in side


def test_mixing_time_and_timing_mismatch_warning(tmp_path, caplog):
    p = _write(tmp_path, header_extra={"MixingTime": 20})
    _assert_error(p, "MixingTime 20 looks like milliseconds")
    p = _write(tmp_path, name="b.nii.gz", header_extra={"MixingTime": 0})
    assert load_nifti_mrs(p).mixing_time_s is None
    p = _write(tmp_path, name="c.nii.gz", te_s=0.03, sidecar_extra={"EchoTime": 0.035})
    with caplog.at_level("WARNING", logger="bidsmrs.io.nifti_mrs"):
        spec = load_nifti_mrs(p, sidecar=_side(p))
    assert spec.echo_time_s == pytest.approx(0.03)  # the header wins
    assert any("EchoTime differs between NIfTI-MRS header" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("which", ["sform", "qform"])
def test_affine_from_sform_or_qform(tmp_path, which):
    path = _write(tmp_path, name="a.nii")
    img = nib.load(str(path), mmap=False)  # never rewrite a memory-mapped file (SIGBUS)
    aff = np.array([[0.0, -25.0, 0, 10.0], [20.0, 0.0, 0, -5.0], [0, 0, 30.0, 7.0], [0, 0, 0, 1]])
    if which == "sform":
        img.set_qform(None, code=0)
        img.set_sform(aff, code=1)
    else:
        img.set_sform(None, code=0)
        img.set_qform(aff, code=1)
    nib.save(img, str(path))
    np.testing.assert_allclose(load_nifti_mrs(path).affine, aff, atol=1e-4)


@pytest.mark.parametrize("name", ["fuzz.nii", "fuzz.nii.gz"])
def test_corrupted_files_never_raise_anything_but_input_error(tmp_path, name):
    """Seeded byte corruption/truncation: every failure is a one-line InputError."""
    rng = np.random.default_rng(11)
    data = rng.standard_normal((256, 2)) + 1j * rng.standard_normal((256, 2))
    good = _write(tmp_path, data, name=name, dim_tags=("DIM_DYN",), write_sidecar=False)
    blob = good.read_bytes()
    bad = tmp_path / ("bad" + name[4:])
    n_errors = 0
    for _ in range(150):
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            b = b[: int(rng.integers(1, len(b)))]
        bad.write_bytes(bytes(b))
        try:
            load_nifti_mrs(bad)
        except InputError as exc:
            n_errors += 1
            assert "\n" not in str(exc) and str(bad) in str(exc)
    assert n_errors > 30  # the corruption is detected in many cases


def test_implausible_dwell_and_swapped_dimensions_are_named(tmp_path):
    from bidsmrs.errors import InputError
    from bidsmrs.io.nifti_mrs import load_nifti_mrs
    from tests.bidsfixtures import write_nifti_mrs

    fid = np.exp(-np.arange(2048) / 200.0).astype(complex)
    slow = write_nifti_mrs(tmp_path / "slow_svs.nii.gz", fid, dwell_s=1.0, sf_mhz=123.2)
    with pytest.raises(InputError, match="spectral width of 1 Hz"):
        load_nifti_mrs(slow)
    swapped = write_nifti_mrs(tmp_path / "swapped_svs.nii.gz", np.ones((32, 2048), complex), dwell_s=2.5e-4,
                              sf_mhz=123.2, dim_tags=("DIM_DYN",))
    with pytest.raises(InputError, match="look swapped") as exc:
        load_nifti_mrs(swapped)
    assert "DIM_DYN" in str(exc.value) and "swapped_svs.nii.gz" in str(exc.value)
