"""RUN/report.html: a section per generator group, the validation each regime allows, a row per unknown image."""
import base64
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.pipeline.cli import main
from ganprov.pipeline.report_groups import Section, Unknown, images_table, overview, second_opinion_html, section_html
from ganprov.pipeline.report_html import thumbnail

PNG = b"\x89PNG\r\n\x1a\n"


def report(run, *options) -> str:
    assert main(["report", "--run", str(run.path), *options]) == 0
    return run.report.read_text()


def verdicts(run) -> list[dict]:
    return json.loads((run.predictions / "fingerprint.groups.json").read_text())


def unknown_rows(run) -> list[str]:
    return (run.predictions / "fingerprint.proba.csv").read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def audit_run(fitted_run, tmp_path_factory):
    """The shared run, embedded again from the same data without generated/: the audit regime."""
    data, fitted = fitted_run
    root = tmp_path_factory.mktemp("audit")
    audit_data = shutil.copytree(data, root / "data", ignore=shutil.ignore_patterns("generated"))
    run = RunFolder(shutil.copytree(fitted.path, root / "run", ignore=shutil.ignore_patterns("heads", "predictions")))
    assert main(["embed", "--data", str(audit_data), "--run", str(run.path), "--force", "--workers", "0"]) == 0
    assert main(["fit", "--run", str(run.path), "--head", "fingerprint"]) == 0
    assert main(["predict", "--run", str(run.path), "--head", "fingerprint"]) == 0
    assert main(["evaluate", "--run", str(run.path)]) == 0
    return run


def test_report_is_one_self_contained_page_built_around_the_generator_groups(run_copy):
    _, run = run_copy
    assert main(["evaluate", "--run", str(run.path), "--head", "fingerprint"]) == 0
    page = report(run)
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert len(sources) == len(re.findall(r"<img\b", page)) > 0
    for source in sources:  # every image inlined: the page opens anywhere, copied alone
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)
    assert not re.search(r"<(link|iframe)\b|<script\b[^>]*\bsrc|\bhref=\"?[^\"#]|url\(", page)  # nothing fetched
    for v in verdicts(run):
        section = page.split(f"<section class=group id=g{v['group']}>", 1)[1].split("</section>", 1)[0]
        assert f"{v['size']} images → " in section and f"support <b>{v['support']:.3f}</b>" in section
        assert section.count("<td>subset ") == 3 and "real/t1/" in section  # nearest real images per subset
        assert ("undetermined" in section) == (v["subset"] == 0)
    for row, line in enumerate(unknown_rows(run)):  # an anchor per image, with its group and label
        filename, *_, label, _, group = line.split(",")
        assert f'<tr id=u{row}><td>{row}<td>{filename}<td>{group}<td><a href="#g{group}">' in page
    assert "<input id=search" in page and "<h2 id=validation>Validation</h2>" in page
    assert "Held-out generated images" in page and 'alt="confusion matrix validation"' in page


def test_the_audit_regime_says_what_it_cannot_validate_and_shows_what_it_can(audit_run):
    page = report(audit_run)
    assert "<b>audit</b>" in page and "<b>Not validated here" in page
    assert "<h3>Content model</h3>" in page and "held-out real images" in page
    assert re.search(r"The fewest held-out images of one subset: [1-9]\d*;", page)
    assert re.search(r"<h3>Group stability</h3>.*adjusted Rand index.*<b>[01]\.\d{3} and [01]\.\d{3}</b>", page)
    assert all(f"id=g{v['group']}>" in page for v in verdicts(audit_run))


def test_a_head_without_groups_gets_a_section_per_attributed_subset(run_copy):
    _, run = run_copy
    page = report(run, "--head", "logreg")
    labels = {line.split(",")[-2] for line in (run.predictions / "logreg.proba.csv").read_text().splitlines()[1:]}
    assert {f"<section class=group id=s{label}>" for label in labels} <= set(re.findall(r"<section[^>]*>", page))
    assert "<th>group</th>" not in page and "<tr id=u0>" in page


def test_a_report_with_nothing_to_attribute(run_copy):
    _, run = run_copy
    shutil.rmtree(run.predictions)
    page = report(run)
    assert "Nothing attributed" in page and "<section" not in page and "id=search" not in page
    assert "<h2 id=validation>Validation</h2>" in page


def test_file_names_are_escaped_and_a_row_costs_little(tmp_path):
    names = ['<img src=x onerror="alert(1)">.png', "a&b'.png"] + [f"slice_{i:05d}.png" for i in range(9998)]
    unknown = Unknown(names, np.arange(len(names)) % 4, np.full(len(names), 0.99), np.arange(len(names)) % 4,
                      np.ones((len(names), 4)))
    found = [Section(f"g{g}", f"Group {g}", np.flatnonzero(unknown.groups == g), np.array([g]), None, 0)
             for g in range(4)]
    table = images_table(unknown, found)
    assert "<img src=x" not in table and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png" in table
    assert "a&amp;b&#x27;.png" in table
    assert len(table.encode()) / len(names) < 80  # 10,000 images: under a megabyte of table
    html = section_html(found[0], unknown, two_real_images(), [1], tmp_path, Reading(), {})
    assert 'title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png"' in html and "<img src=x" not in html


def two_real_images():
    from ganprov.models.embeddings import Embeddings
    return Embeddings(np.ones((2, 4)), ["real/t1/<b>.png", "real/t1/b.png"], np.array([1, 1]), np.zeros(2, bool),
                      np.zeros((2, 1)))


def test_thumbnails_stay_small(tmp_path):
    from tiny_data import subset_image
    subset_image(1, 0, 512, np.random.default_rng(0)).save(tmp_path / "big.png")
    small = thumbnail(tmp_path / "big.png")
    assert small.startswith(PNG) and len(small) < 8000  # 64 px, one grey channel
    assert thumbnail(tmp_path / "missing.png") is None


def test_a_16_bit_thumbnail_is_stretched_over_its_range_as_the_network_sees_it(tmp_path):
    import io

    from PIL import Image
    ramp = np.tile(np.linspace(0, 4000, 64).round().astype(np.uint16), (64, 1))  # a CT export: 12 of 16 bits
    Image.fromarray(ramp).save(tmp_path / "ct.png")
    grey = np.asarray(Image.open(io.BytesIO(thumbnail(tmp_path / "ct.png"))))
    assert grey.ndim == 2 and grey.min() == 0 and grey.max() == 255
    assert abs(float(grey.mean()) - 127.5) < 2  # a ramp, not clipped to white


def test_writing_the_report_does_not_load_torch(run_copy):
    _, run = run_copy
    code = ("import sys; from ganprov.pipeline.report import write_report; "
            f"write_report({str(run.path)!r}, 'fingerprint'); assert 'torch' not in sys.modules, 'torch loaded'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_gradcam_overlays_each_sampled_image_for_its_groups_subset(run_copy):
    pytest.importorskip("pytorch_grad_cam")
    from PIL import Image
    _, run = run_copy
    page = report(run, "--gradcam")
    overlays = re.findall(r'<img alt="Grad-CAM [^"]*" src="data:image/png;base64,([^"]*)"', page)
    assert len(overlays) == len(unknown_rows(run))  # 6 images: every one is in its group's sample
    for source in overlays:  # the image as the network saw it (32 px), in colour
        from io import BytesIO
        image = Image.open(BytesIO(base64.b64decode(source)))
        assert image.size == (32, 32) and image.mode == "RGB"
    assert "Grad-CAM: where the backbone saw subset" in page


def test_gradcam_without_the_package_is_one_line(run_copy, monkeypatch, capsys):
    _, run = run_copy
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)  # import fails as if not installed
    assert main(["report", "--run", str(run.path), "--gradcam"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install grad-cam" in err


def test_run_draws_gradcam_maps_only_where_grad_cam_is_installed(monkeypatch, capsys):
    from ganprov.pipeline import run_all
    monkeypatch.setattr(run_all.importlib.util, "find_spec", lambda name: None)
    assert not run_all.gradcam_available()
    assert "report without Grad-CAM" in capsys.readouterr().out
    from ganprov.pipeline.cli import build_parser
    options = ["run", "--data", "D", "--run", "R"]
    assert build_parser().parse_args(options).gradcam and not build_parser().parse_args([*options, "--no-gradcam"]).gradcam


def test_the_second_opinion_table_gives_each_groups_two_labels_and_what_the_submission_keeps():
    names = [f"{i}.png" for i in range(5)]
    unknown = Unknown(names, np.array([2, 2, 2, 1, 1]), np.ones(5), np.array([0, 0, 0, 1, 1]), np.zeros((5, 512)))
    found = [Section("g0", "Group 0: 3 images → subset 2", np.array([0, 1, 2]), np.array([0]), None, 2),
             Section("g1", "Group 1: 2 images → subset 1", np.array([3, 4]), np.array([3]), None, 1)]
    second = dict(zip(names, [4, 4, 2, 1, 1]))  # the second backbone sends most of group 0 elsewhere
    agreed = dict(zip(names, [0, 0, 2, 1, 1]))
    text = re.sub(r"<[^>]+>", " ", second_opinion_html(found, unknown, second, agreed))
    assert "2 of 5 images undetermined" in text
    assert re.search(r"Group 0: 3 images → subset 2\s+4 \(2 of 3\)\s+undetermined \(2 of 3\)", text)
    assert re.search(r"Group 1: 2 images → subset 1\s+1 \(2 of 2\)\s+1 \(2 of 2\)", text)
    # and every image's row says what submission.csv holds for it beside this head's label
    rows = re.sub(r"<[^>]+>", " ", images_table(unknown, found, agreed))
    assert "submission.csv" in rows and re.search(r"0\.png\s+0\s+2\s+1\.000\s+undetermined", rows)
    assert "submission.csv" not in images_table(unknown, found)


def test_the_overview_warns_where_several_groups_went_to_one_subset():
    unknown = Unknown([f"{i}.png" for i in range(6)], np.array([2, 2, 2, 2, 0, 0]), np.ones(6),
                      np.array([0, 0, 1, 1, 2, 2]), np.zeros((6, 512)))

    def section(group, subset, best):
        verdict = {"group": group, "subset": subset, "best": best, "support": 1.0, "margin": 0.5}
        return Section(f"g{group}", f"Group {group}", np.flatnonzero(unknown.groups == group), np.array([]), verdict, best)

    # two undetermined groups with one best subset are no claim; two attributed ones are
    assert "Several groups" not in overview([section(0, 2, 2), section(1, 0, 2), section(2, 0, 2)], unknown)
    text = overview([section(0, 2, 2), section(1, 2, 2), section(2, 0, 1)], unknown)
    assert "Several groups attributed to subset 2:" in text and "not among the candidates" in text
    assert "labelled images" not in text  # verdicts of heads saved before the coverage counts: no counts
    covered = [section(0, 2, 2), section(1, 2, 2), section(2, 0, 1)]
    covered[0].verdict.update(covers=0, labelled=284)
    covered[1].verdict.update(covers=1, labelled=284)
    assert ("of subset 2's 284 labelled images the coverage check compared, its groups cover: group 0 0, "
            "group 1 1.") in overview(covered, unknown)


def test_predict_says_so_too(run_copy, monkeypatch, capsys):
    from ganprov.models.group_evidence import GroupVerdict
    from ganprov.pipeline import predict

    _, run = run_copy
    verdicts = [GroupVerdict(g, 2, [2, 0, 0], [1.0, 0.0, 0.0], 1, 1, 1.0, 1.0) for g in (0, 1)]
    found = predict.Attribution(["a.png", "b.png", "c.png", "d.png"], np.full((4, 3), 1 / 3), np.ones(4, int),
                                np.array([0, 0, 1, 1]), verdicts)
    monkeypatch.setattr(predict, "attribute", lambda *args: found)
    predict.predict(run.path, "fingerprint")
    out = capsys.readouterr().out
    assert "fingerprint: several groups attributed to subset 1: either several generators" in out
    assert "labelled images" not in out  # no coverage counts in these verdicts: none said
    found.verdicts[:] = [replace(v, covers=n, labelled=90) for v, n in zip(verdicts, (7, 0))]
    predict.predict(run.path, "fingerprint")
    assert ("  of subset 1's 90 labelled images the coverage check compared, its groups cover: group 0 7, group 1 0\n"
            in capsys.readouterr().out)
    monkeypatch.setattr(predict, "attribute", lambda *args: predict.Attribution(
        found.names, found.proba, found.labels, found.groups,
        [verdicts[0], replace(verdicts[1], subset=0, outcovered_by=0, coverage_p=0.001)]))
    predict.predict(run.path, "fingerprint")
    out = capsys.readouterr().out
    assert "several groups" not in out
    assert "group 1: 2 images → undetermined (best 1, support 1.000, vote margin 1.00; group 0 covers subset 1's " \
           "images more, p 0.001)" in out  # the coverage check says why


def test_a_damaged_metrics_file_is_one_line(run_copy, capsys):
    _, run = run_copy
    run.metrics.parent.mkdir(parents=True, exist_ok=True)
    run.metrics.write_text('[{"head": "logreg", ')  # cut short, as by a full disk
    assert main(["report", "--run", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert f"{run.metrics} cannot be read" in err and "ganprov evaluate" in err and "Traceback" not in err


def test_group_stability_is_checked_on_a_sample_of_a_large_set(audit_run, monkeypatch):
    from ganprov.pipeline import report_validation
    total = EmbeddingsFile(audit_run.embeddings).count("unknown")
    monkeypatch.setattr(report_validation, "STABILITY_ROWS", total - 1)
    page = report(audit_run)
    assert re.search(rf"A random {total - 1:,} of the {total:,} unknown images split at random into two halves.*"
                     r"adjusted Rand index.*<b>[01]\.\d{3} and [01]\.\d{3}</b>", page)


def test_the_second_opinion_is_shown_only_where_submission_csv_is_its_agreement(run_copy):
    from ganprov.pipeline.report import write_report
    _, run = run_copy

    def report(run):  # logreg: the tiny run's fingerprint head leaves every image undetermined
        return write_report(run.path, "logreg", second_opinion=True).read_text()
    ours = run.prediction("logreg")
    theirs = run.second_opinion.prediction("logreg")
    theirs.parent.mkdir(parents=True)
    rows = ours.read_text().splitlines()
    at = next(i for i, row in enumerate(rows) if not row.endswith(",0"))  # an attributed image
    name = rows[at].rsplit(",", 1)[0]
    theirs.write_text("\n".join(rows[:at] + [f"{name},0"] + rows[at + 1:]) + "\n")  # the second leaves it out
    run.submission.write_text(theirs.read_text())  # so the agreement of the two does too
    assert "<h2>Second opinion</h2>" in report(run)
    run.submission.write_text(ours.read_text())  # a later run without a second opinion: its own labels
    assert "<h2>Second opinion</h2>" not in report(run)
    theirs.write_text("other.png,1\n" + ours.read_text())  # an earlier unknown set: other names, no KeyError
    assert "<h2>Second opinion</h2>" not in report(run)


def test_an_attributed_group_is_reported_with_its_subset(run_copy):
    """The tiny run leaves its groups undetermined; its verdicts rewritten as if one group were attributed."""
    _, run = run_copy
    verdicts_path = run.groups("fingerprint")
    found = json.loads(verdicts_path.read_text())
    found[0] |= {"subset": found[0]["best"]}
    verdicts_path.write_text(json.dumps(found))
    page = report(run)
    section = page.split(f"<section class=group id=g{found[0]['group']}>", 1)[1].split("</section>", 1)[0]
    assert f"{found[0]['size']} images → subset {found[0]['best']}" in section and "undetermined" not in section
    for v in found[1:]:
        assert f"images → <span class=undetermined>undetermined</span> (best: subset {v['best']})" in page


def test_a_group_the_coverage_check_left_undetermined_says_which_group_out_covers_it(run_copy):
    _, run = run_copy
    found = verdicts(run)
    found[0].update(subset=0, outcovered_by=1, coverage_p=0.002)
    (run.predictions / "fingerprint.groups.json").write_text(json.dumps(found))
    page = report(run)
    section = page.split(f"<section class=group id=g{found[0]['group']}>", 1)[1].split("</section>", 1)[0]
    best = found[0]["best"]
    assert f"(best: subset {best}; group 1 covers subset {best}'s images more, p 0.002)" in section
