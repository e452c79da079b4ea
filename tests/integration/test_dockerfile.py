"""Keep the Dockerfile honest: replay its install steps (wheel -> fresh venv) and run the
entrypoint exactly as its ENTRYPOINT does, on the demo dataset (issue 2)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docker")]


def _entrypoint() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    m = re.search(r'^ENTRYPOINT\s+\[(.*)\]\s*$', text, re.M)
    assert m, "Dockerfile has no exec-form ENTRYPOINT"
    return [part.strip().strip('"') for part in m.group(1).split(",")]


def test_dockerfile_declares_what_the_test_replays():
    text = (ROOT / "Dockerfile").read_text()
    assert "python -m build --wheel" in text
    assert "pip install --no-cache-dir /wheels/*.whl" in text
    assert re.search(r"^USER\s+(?!root)\w+", text, re.M), "the image must not run as root"
    assert "MPLCONFIGDIR=/tmp" in text
    assert _entrypoint() == ["/opt/bidsmrs/bin/python", "/run.py"]


def test_wheel_in_fresh_venv_runs_entrypoint(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("bidsmrs-*.whl")
    venv = tmp_path / "opt-bidsmrs"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True)
    if pip.returncode != 0 and "Could not find a version" in pip.stderr:
        pytest.skip(f"dependencies not installable here: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr
    # the image copies run.py to /run.py and runs it with the venv's python, outside the source tree
    run_py = tmp_path / "run.py"
    run_py.write_text((ROOT / "run.py").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MPLCONFIGDIR=str(tmp_path / "mpl"), BIDSMRS_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path))
    python = str(venv / "bin" / "python")
    version = subprocess.run([python, str(run_py), "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
    assert version.returncode == 0 and (ROOT / "version").read_text().strip() in version.stdout
    demo = tmp_path / "demo"
    subprocess.run([str(venv / "bin" / "bidsmrs-demo"), str(demo), "--no-run"], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    out = tmp_path / "out"
    proc = subprocess.run([python, str(run_py), str(demo / "bids"), str(out), "participant", "--participant-label",
                           "01", "--anat-derivatives", str(demo / "anat_derivatives"), "--skip-bids-validation"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "sub-01" / "mrs" / "sub-01_acq-press_desc-concentrations_svs.tsv").is_file()
    assert (out / "sub-01.html").is_file()
