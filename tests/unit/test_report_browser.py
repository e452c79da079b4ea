"""Open the reports in headless Chromium from disk, offline: rendered, no console errors.

Skipped (with the reason) when no Chromium/Chrome binary is found
(``apt-get install -y chromium`` on Debian).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bidsmrs.report.group import write_group_report
from bidsmrs.report.participant import write_participant_report
from tests.reportfixtures import group_tables, make_participant_tree

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
             "headless_shell")


def _browser() -> str:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium/Chrome binary on PATH (tried: " + ", ".join(_BROWSERS) + ")")


def _run(browser: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
            # networking off: every host resolves to nothing and any proxy use fails
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr", "--v=0", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=90, cwd=tmp)


_CONSOLE = re.compile(r":console[:(]|refused to|content security policy|uncaught", re.I)
#: Chromium's own background requests (updates, time, accounts); blocked by the resolver
#: rules above and not caused by the page.
_BROWSER_INTERNAL = re.compile(r"^https?://[^/]*(google|googleapis|gstatic|gvt1)\.com/")


def _problems(stderr: str) -> list[str]:
    """Console messages (errors, CSP violations) in Chromium's stderr log."""
    return [line for line in stderr.splitlines() if _CONSOLE.search(line)]


def _page_requests(netlog: Path) -> list[str]:
    """http(s) URLs requested, from a Chromium NetLog, minus Chromium's own requests."""
    if not netlog.exists():
        return ["<no netlog written>"]
    urls = set(re.findall(r'"url":"(https?://[^"]+)"', netlog.read_text(errors="replace")))
    return sorted(u for u in urls if not _BROWSER_INTERNAL.match(u))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "out"
    srcs = make_participant_tree(out, "01")
    srcs += make_participant_tree(out, "02", seed=2)
    sub = write_participant_report(out, "01")
    write_participant_report(out, "02")
    conc, qc = group_tables(out, srcs, excluded=[srcs[-1]])
    group = write_group_report(out, concentrations=conc, qc=qc)
    return {"sub-01.html": sub, "group.html": group}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sub-01.html", "group.html"])
def test_report_renders_offline_in_chromium(pages, name, tmp_path):
    import matplotlib.image as mpimg

    browser = _browser()
    url = pages[name].resolve().as_uri()
    shot = tmp_path / "shot.png"
    res = _run(browser, tmp_path, url, "--window-size=1200,1800", f"--screenshot={shot}",
               "--hide-scrollbars")
    assert shot.exists(), f"no screenshot; stderr:\n{res.stderr[-2000:]}"
    img = mpimg.imread(str(shot))[..., :3]
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, f"screenshot nearly blank ({len(colours)} colours)"
    assert (img < 0.5).mean() > 0.005  # some dark ink (text, lines) on the page
    assert not _problems(res.stderr), _problems(res.stderr)

    netlog = tmp_path / "netlog.json"
    dom = _run(browser, tmp_path, url, "--dump-dom", f"--log-net-log={netlog}")
    assert "<svg" in dom.stdout and "</html>" in dom.stdout
    assert not _problems(dom.stderr), _problems(dom.stderr)
    assert _page_requests(netlog) == []


@pytest.mark.slow
def test_detectors_catch_a_bad_page(tmp_path):
    """Negative control: a console error and a remote image are both detected."""
    browser = _browser()
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script>'
                   '<img src="https://example.org/x.png"></body></html>')
    netlog = tmp_path / "netlog.json"
    res = _run(browser, tmp_path, bad.as_uri(), "--dump-dom", f"--log-net-log={netlog}")
    assert any("boom" in line for line in _problems(res.stderr))
    assert _page_requests(netlog) == ["https://example.org/x.png"]
