"""The audit report in a real browser: headless Chromium (Debian's ``chromium`` +
``chromium-driver``) through selenium.

Renders an audit of a small trained CNN, opens ``index.html`` from disk and checks: no console
errors, every image decoded (``naturalWidth > 0``), no request leaves the page (every resource
is a ``data:`` URI; the performance log lists no http(s) fetch), no horizontal overflow at
1280 px and at 420 px, and the whole page ≤ 5 MB. Screenshots are written to
``$DEEPSCOPE_SCREENSHOTS`` (CI: ``report/screenshots/``, kept as an artifact) or else the
test's tmp folder; their paths are printed.

Skips only when no Chromium/chromedriver is installed locally; ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import types
from pathlib import Path

import pytest

if os.environ.get("DEEPSCOPE_REQUIRE_BROWSER"):
    from selenium import webdriver  # CI: a missing selenium is an error, not a skip
else:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install 'deepscope[browser]')")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if os.environ.get("DEEPSCOPE_REQUIRE_BROWSER") and not (CHROMIUM and DRIVER):
    raise RuntimeError("DEEPSCOPE_REQUIRE_BROWSER is set (CI) but chromium / chromedriver is "
                       "missing: apt-get install -y chromium chromium-driver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Chromium or chromedriver not found (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    """An audit of a tiny CNN trained on synthetic images, rendered to index.html."""
    from deepscope import models
    from deepscope.audit.inputs import prepare
    from deepscope.audit.run import Audit
    from deepscope.audit.spec import AuditConfig
    from deepscope.data import stratified_split
    from deepscope.report.audit_report import render_audit
    from deepscope.testing.data import blobs
    from deepscope.testing.models import tiny_cnn

    ds = blobs(900, 3, styles=2, noise=0.3, seed=0)
    train, held = stratified_split(ds, (0.4, 0.6), seed=0, names=("train", "held"))
    model = tiny_cnn(3)
    models.fit(model, train, epochs=3, seed=0, progress=False)
    loaded = types.SimpleNamespace(module=model, kind="module", class_names=None,
                                   checkpoint=None, differentiable=True, path="tiny.pt")
    result = Audit(prepare(loaded, held, train=train), AuditConfig()).run()
    out = tmp_path_factory.mktemp("audit")
    return render_audit(result, out)


def _driver(width: int):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=DRIVER)
    return webdriver.Chrome(options=opts, service=service)


def _screenshot_dir(tmp_path: Path) -> Path:
    where = Path(os.environ.get("DEEPSCOPE_SCREENSHOTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.mark.parametrize("width", [1280, 420])
def test_report_renders_offline_without_errors(report_page: Path, tmp_path: Path,
                                               width: int) -> None:
    assert report_page.stat().st_size <= 5 * 1024 * 1024
    driver = _driver(width)
    try:
        # headless Chrome keeps windows at least 500 px wide: emulate the exact viewport
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        driver.get(report_page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.naturalWidth, i.src.slice(0, 22)])")
        assert len(images) >= 8
        assert all(w > 0 for w, _ in images), images
        assert all(src.startswith("data:image/png") for _, src in images)
        external = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('data:'))")
        assert external == []
        linked = driver.execute_script(
            "return Array.from(document.querySelectorAll('[src],[href]'))"
            ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
            ".filter(u => !u.startsWith('data:') && !u.startsWith('#'))")
        assert linked == []
        fetched = [e["message"] for e in driver.get_log("performance")
                   if "Network.requestWillBeSent" in e["message"]
                   and ('"url":"http' in e["message"])]
        assert fetched == []
        inner = driver.execute_script("return window.innerWidth")
        assert inner == width
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= inner, f"horizontal overflow at {width}px: {scroll} > {inner}"
        height = driver.execute_script("return document.body.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": min(height + 50, 16000), "deviceScaleFactor": 1,
            "mobile": False})
        shot = _screenshot_dir(tmp_path) / f"audit-{width}px.png"
        assert driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
