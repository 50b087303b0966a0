"""RUN/report.html as a browser shows it: headless Chromium renders it, decodes every image, runs its script."""
import json
import re
import shutil
import subprocess

import pytest

from ganprov.pipeline.cli import main

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)

# Put before the report's own script: records script errors, and on load writes what it found into the DOM.
PROBE = """<script>
const errors = [];
window.addEventListener("error", event => errors.push(String(event.message)));
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({images: images.length, errors: errors,
                                      decoded: images.filter(image => image.naturalWidth > 0).length});
  document.body.append(probe);
});
</script>"""


def rendered(page, tmp_path, query: str = "") -> tuple[str, dict]:
    """The DOM after load, and the probe's findings."""
    copy = tmp_path / "report.html"
    copy.write_text(page.replace("<meta charset=utf-8>", "<meta charset=utf-8>" + PROBE, 1), encoding="utf-8")
    result = subprocess.run(
        [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", copy.as_uri() + query],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    probe = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert probe, result.stdout[-2000:]
    return result.stdout, json.loads(probe.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(BROWSER is None, reason="no chromium here (Debian: apt-get install -y chromium)")
def test_the_report_renders_in_a_browser(run_copy, tmp_path):
    _, run = run_copy
    assert main(["report", "--run", str(run.path)]) == 0
    page = run.report.read_text()
    groups = json.loads((run.predictions / "fingerprint.groups.json").read_text())
    names = [line.split(",")[0] for line in (run.predictions / "fingerprint.proba.csv").read_text().splitlines()[1:]]

    dom, probe = rendered(page, tmp_path)
    assert probe["errors"] == [] and probe["images"] > 0 and probe["decoded"] == probe["images"]
    for v in groups:
        assert f'<section class="group" id="g{v["group"]}">' in dom
    assert all(f'<tr id="u{row}">' in dom for row in range(len(names)))
    assert '<input id="search"' in dom and f"{len(names)} of {len(names)} shown" in dom

    dom, probe = rendered(page, tmp_path, f"?q={names[1]}")  # the address fills the box, the script filters
    assert probe["errors"] == [] and f"1 of {len(names)} shown" in dom
    assert re.findall(r'<tr id="u(\d+)">', dom) == ["1"]  # the other rows are hidden
