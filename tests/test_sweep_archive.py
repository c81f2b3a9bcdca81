"""A sweep's report inputs archived (``sweep --archive``) and reported again from the archive
(``sweep --report FILE.tar.gz``), including the committed archive of the study's positive control."""

import io
import json
import tarfile
from pathlib import Path

import pytest
from cli_helpers import command, one_error_line

from thinkspace.sweep.archive import is_report_input, read_archive, write_archive
from thinkspace.sweep.files import write_questions

main = command("sweep")
ROOT = Path(__file__).resolve().parents[1]
CONTROL = ROOT / "docs" / "ablations" / "camera_turn_control.tar.gz"


def run_dir(out, name, setting, seed, correct):
    d = out / name
    (d / "checkpoints").mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"name": name, "labels": {"setting": setting, "seed": seed}}))
    (d / "status.json").write_text(json.dumps({"state": "done", "seconds": 12.5}))
    (d / "metrics_fit.json").write_text(json.dumps({"metrics": {"val/accuracy": 0.5}}))
    (d / "metrics_test_heldout.json").write_text(json.dumps({"metrics": {"test/accuracy": sum(correct) / 4}}))
    write_questions(d / "questions_test_heldout.csv",
                    [{"id": f"q{i}", "correct": c, "answer": "A", "prediction": "A" if c else "B", "task": ""}
                     for i, c in enumerate(correct)])
    (d / "checkpoints" / "last.ckpt").write_bytes(b"\0" * 4096)  # what the archive leaves out
    (d / "fit.log").write_text("training...\n")


@pytest.fixture
def sweep_dir(tmp_path):
    out = tmp_path / "sweep"
    for seed in (0, 1):
        run_dir(out, f"text_{seed}", "text", seed, [1, 0, 0, 1])
        run_dir(out, f"cue_{seed}", "cue", seed, [1, 1, 1, 1])
    (out / "sweep.json").write_text(json.dumps({"runs": ["text_0", "text_1", "cue_0", "cue_1"],
                                                "metric": "heldout:test/accuracy", "baseline": "text"}))
    return out


def test_the_archive_holds_exactly_the_report_inputs_and_is_byte_stable(sweep_dir, tmp_path, capsys):
    assert main(["--archive", str(sweep_dir)]) == 0
    archive = sweep_dir / "report_inputs.tar.gz"
    assert f"[sweep] wrote {archive} (21 files, " in capsys.readouterr().out
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert {m.mtime for m in tar.getmembers()} == {0}
    assert names[0] == "cue_0/metrics_fit.json" and names == sorted(names) and "sweep.json" in names
    assert {Path(n).name for n in names} == {"run.json", "status.json", "metrics_fit.json",
                                              "metrics_test_heldout.json", "questions_test_heldout.csv",
                                              "sweep.json"}
    again, count = write_archive(sweep_dir, tmp_path / "again.tar.gz")
    assert count == 21 and again.read_bytes() == archive.read_bytes()  # no clock, no owner in it


def test_a_report_from_the_archive_equals_the_report_from_the_runs(sweep_dir, tmp_path, capsys):
    write_archive(sweep_dir, tmp_path / "kept.tar.gz")
    assert main(["--report", str(sweep_dir), "--no-chart"]) == 0
    assert main(["--report", str(tmp_path / "kept.tar.gz"), "--out", str(tmp_path / "again"), "--no-chart"]) == 0
    assert f"[sweep] unpacked {tmp_path / 'kept.tar.gz'} into {tmp_path / 'again'}" in capsys.readouterr().out
    from_runs = (sweep_dir / "results.md").read_text()
    assert "| setting=cue | 2 x 4 | 1.000 | +0.500 |" in from_runs
    assert (tmp_path / "again" / "results.md").read_text() == from_runs
    assert (tmp_path / "again" / "results.csv").read_text() == (sweep_dir / "results.csv").read_text()


def test_the_committed_positive_control_rewrites_the_table_docs_ablations_shows(tmp_path):
    """docs/ablations.md's positive-control table, rewritten from its committed per-question answers."""
    assert main(["--report", str(CONTROL), "--out", str(tmp_path / "control"), "--no-chart"]) == 0
    text = (tmp_path / "control" / "results.md").read_text()
    rows = ["| setting=text_only (baseline) | 3 x 256 | 0.482 | | | | | |",
            "| setting=camera_prior_gt | 3 x 256 | 1.000 | +0.518 | [+0.457, +0.598] | 0 / 398 | 2.0e-04 | 4.0e-04 |",
            "| setting=camera_prior_est | 3 x 256 | 1.000 | +0.518 | [+0.457, +0.598] | 0 / 398 | 2.0e-04 | 4.0e-04 |"]
    docs = (ROOT / "docs" / "ablations.md").read_text()
    for row in rows:
        assert row in text and row in docs


@pytest.mark.parametrize("name", ["../run.json", "/etc/run.json", "a/b/run.json", "a/last.ckpt", "a/./run.json",
                                  "run.json", ""])
def test_names_outside_the_report_inputs_are_not_inputs(name):
    assert not is_report_input(name)


def _archive_with(tmp_path, name, data=b"{}", kind=tarfile.REGTYPE):
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("r/run.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        info = tarfile.TarInfo(name)
        info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize("name,kind", [("../evil.json", tarfile.REGTYPE), ("/tmp/run.json", tarfile.REGTYPE),
                                       ("r/checkpoints/last.ckpt", tarfile.REGTYPE),
                                       ("r/status.json", tarfile.SYMTYPE)])
def test_an_archive_with_anything_but_report_inputs_is_refused_and_leaves_nothing(tmp_path, name, kind):
    archive = _archive_with(tmp_path, name, kind=kind)
    with pytest.raises(ValueError, match=f"bad.tar.gz: member '{name}' is not a report input"):
        read_archive(archive, tmp_path / "out" / "unpacked")
    assert list((tmp_path / "out").iterdir()) == []  # no half-unpacked directory, no staging left


def test_unreadable_archives_and_existing_targets_name_the_problem(tmp_path, sweep_dir):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="junk.tar.gz: not a readable gzipped tar archive"):
        read_archive(junk, tmp_path / "a")
    with pytest.raises(ValueError, match="missing.tar.gz: no such file"):
        read_archive(tmp_path / "missing.tar.gz", tmp_path / "b")
    archive, _ = write_archive(sweep_dir)
    with pytest.raises(ValueError, match=f"{sweep_dir} exists already; give --out a new directory"):
        read_archive(archive, sweep_dir)
    with pytest.raises(ValueError, match="holds no runs"):
        write_archive(tmp_path / "a")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_to_without_archive_is_refused_not_ignored(sweep_dir, tmp_path, capsys):
    assert main(["--report", str(sweep_dir), "--no-chart", "--to", str(tmp_path / "kept.tar.gz")]) == 2
    assert f"--to {tmp_path / 'kept.tar.gz'} is for --archive DIR" in one_error_line(capsys, "sweep")
    assert not (sweep_dir / "results.md").exists() and not (tmp_path / "kept.tar.gz").exists()
