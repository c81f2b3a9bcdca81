"""The paired statistics of a sweep: per-question files, the baseline setting, and the report.

The fake trainer of ``sweep_helpers.py`` stands in for ``thinkspace fit``/``test`` (its test
stage writes known answers); ``test_sweep_e2e.py`` checks that a real test stage writes the file.
"""

import json
import struct
import sys
from types import SimpleNamespace

import pytest
import yaml

from cli_helpers import command
from sweep_helpers import FAKE, QUICKSTART
from thinkspace.sweep.files import read_questions, read_tasks, write_questions
from thinkspace.sweep.grid import load_sweep
from thinkspace.sweep.paired import compare, holm
from thinkspace.sweep.results import write_report

main = command("sweep")


def png_width(path):
    return struct.unpack(">I", path.read_bytes()[16:20])[0]  # the IHDR chunk's width


def test_a_sweep_with_a_baseline_reports_paired_statistics(tmp_path):
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "command": [sys.executable, str(script)],
        "settings": {"plain": {"model.optimizer.init_args.lr": 0.1}, "better": {"model.optimizer.init_args.lr": 0.2}},
        "seeds": [0, 1], "evaluate": {"heldout": {}}, "metric": "heldout:test/accuracy", "baseline": "plain"},
        sort_keys=False))
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", str(grid), "--out", str(out)]) == 0
    run = next(out.glob("setting=better_seed=1_*"))
    assert (run / "questions_test_heldout.csv").read_text().splitlines()[:3] == [
        "id,correct,answer,prediction", "q00,1,A,A", "q01,1,A,A"]
    assert json.loads((out / "sweep.json").read_text())["baseline"] == "plain"
    lines = (out / "results.md").read_text().splitlines()
    start = lines.index("### Paired against `plain`: answers of the `heldout` stage")
    assert lines[start + 2] == ("| setting | seeds x questions | accuracy | difference vs baseline | 95% CI | b / c | "
                                "p (bootstrap) | p (Holm) |")
    assert lines[start + 4] == "| setting=plain (baseline) | 2 x 40 | 0.500 | | | | | |"
    cells = [c.strip() for c in lines[start + 5].strip("|").split("|")]
    # better answers 10 of the 20 questions plain gets wrong, in both seeds: c = 20, b = 0; no replicate
    # at or below 0, so p is the floor 2 / 10001, and one comparison leaves Holm's p the same
    assert cells[:4] == ["setting=better", "2 x 40", "0.750", "+0.250"]
    assert cells[5:] == ["0 / 20", "2.0e-04", "2.0e-04"]
    low, high = (float(x) for x in cells[4].strip("[]").split(","))
    assert 0.1 < low < 0.25 < high < 0.41  # about 0.25 +- 1.96 sqrt(0.25 0.75 / 40)
    assert "resampling seeds and questions (10000 replicates, generator seed 0)" in lines[start + 7]
    assert "p (Holm): corrected by Holm's method across the 1 comparison of this table" in lines[start + 7]
    with_panel = png_width(out / "results.png")
    assert main(["--report", str(out), "--metric", "val/accuracy"]) == 0  # a validation headline: no pairs
    text = (out / "results.md").read_text()
    assert "Paired statistics: none. They need an evaluate stage: the headline `val/accuracy`" in text
    assert png_width(out / "results.png") < with_panel  # the differences panel is gone


def answers_dir(tmp_path, name, setting, seed, answers, state="done", stage="heldout", tasks=None, **labels):
    d = tmp_path / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"name": name, "labels": {"setting": setting, **labels, "seed": seed}}))
    (d / "status.json").write_text(json.dumps({"state": state}))
    (d / "metrics_fit.json").write_text(json.dumps({"metrics": {"val/accuracy": 0.5}}))
    if answers is not None:
        write_questions(d / f"questions_test_{stage}.csv",
                        [{"id": k, "correct": v, "answer": "A", "prediction": "A" if v else "B",
                          "task": (tasks or {}).get(k, "")} for k, v in answers.items()])


def test_questions_of_several_tasks_are_compared_per_task_too(tmp_path):
    tasks = {f"q{i}": "perspective" if i < 5 else "situated" for i in range(10)}
    base = {f"q{i}": int(i >= 8) for i in range(10)}  # perspective all wrong, situated 2 of 5 right
    better = {k: 1 if tasks[k] == "perspective" else v for k, v in base.items()}  # perspective all right
    for seed in (0, 1):
        answers_dir(tmp_path, f"a{seed}", "a", seed, base, tasks=tasks)
        answers_dir(tmp_path, f"b{seed}", "b", seed, better, tasks=tasks)
    write_report(tmp_path, "heldout:test/accuracy", chart=False, baseline="a")
    lines = (tmp_path / "results.md").read_text().splitlines()
    start = lines.index("#### By task (the questions files' `task` column, or the family a synthetic id names)")
    assert lines[start + 2].startswith("| setting | task | baseline accuracy | seeds x questions | accuracy |")
    # perspective: 10 pairs (2 seeds x 5) all turned right, every replicate +1: p at its floor 2 / 10001, twice
    # that after Holm over the table's 2 rows; situated: nothing changes, p = 1
    assert lines[start + 4] == ("| setting=b | perspective | 0.000 | 2 x 5 | 1.000 | +1.000 | [+1.000, +1.000] | "
                                "0 / 10 | 2.0e-04 | 4.0e-04 |")
    assert lines[start + 5] == ("| setting=b | situated | 0.400 | 2 x 5 | 0.400 | +0.000 | [+0.000, +0.000] | "
                                "0 / 0 | 1 | 1 |")
    assert "p (Holm): corrected across the 2 rows of this table." in lines[start + 7]
    answers_dir(tmp_path, "c0", "c", 0, base)  # files without tasks: no per-task rows for that setting
    write_report(tmp_path, "heldout:test/accuracy", chart=False, baseline="c")
    assert "By task" not in (tmp_path / "results.md").read_text()


def test_the_family_comes_from_synthetic_ids_and_old_files_keep_their_task_column(tmp_path):
    # new files: ids name the family, so no task column is needed for the per-family table
    family = {i: "perspective" if i < 5 else "situated" for i in range(10)}
    new = {f"synthetic-{family[i]}-test-0-{i}": int(i >= 8) for i in range(10)}
    better = {k: 1 if "perspective" in k else v for k, v in new.items()}
    for seed in (0, 1):
        answers_dir(tmp_path / "new", f"a{seed}", "a", seed, new)
        answers_dir(tmp_path / "new", f"b{seed}", "b", seed, better)
    path = tmp_path / "new" / "a0" / "questions_test_heldout.csv"
    assert read_tasks(path) == {k: k.split("-")[1] for k in new}
    # the study's stored files: ids synthetic-test-0-<index> without a family, the family in the column
    old = {f"synthetic-test-0-{i}": v for i, v in enumerate(new.values())}
    tasks = {f"synthetic-test-0-{i}": family[i] for i in range(10)}
    for seed in (0, 1):
        answers_dir(tmp_path / "old", f"a{seed}", "a", seed, old, tasks=tasks)
        answers_dir(tmp_path / "old", f"b{seed}", "b", seed, dict(zip(old, better.values())), tasks=tasks)
    for out in ("new", "old"):
        write_report(tmp_path / out, "heldout:test/accuracy", chart=False, baseline="a")
        lines = (tmp_path / out / "results.md").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("#### By task"))
        assert [line.split(" | ")[1] for line in lines[start + 4:start + 6]] == ["perspective", "situated"], out
        assert lines[start + 4].startswith("| setting=b | perspective | 0.000 | 2 x 5 | 1.000 | +1.000 |"), out


def test_missing_files_and_different_questions_are_reported_not_raised(tmp_path):
    base = {f"q{i}": i % 2 for i in range(10)}
    answers_dir(tmp_path, "a0", "a", 0, base)
    answers_dir(tmp_path, "a1", "a", 1, base)
    answers_dir(tmp_path, "b0", "b", 0, {k: 1 for k in base})
    answers_dir(tmp_path, "b1", "b", 1, None)  # finished before per-question files existed
    answers_dir(tmp_path, "c0", "c", 0, {**base, "q10": 1})  # one question more
    answers_dir(tmp_path, "d0", "d", 0, None, state="failed")
    write_report(tmp_path, "heldout:test/accuracy", baseline="a")
    text = (tmp_path / "results.md").read_text()
    assert "| setting=a (baseline) | 2 x 10 | 0.500 | | | | | |" in text
    result = compare([[0, 1] * 5], [[1] * 10])  # b: paired on seed 0 only, its 5 wrong answers made right
    # (10 questions drawn with replacement miss all 5 gains in 0.5^10 of the replicates: p about 2 / 1000)
    assert 0.001 < result.p < 0.005
    assert (f"| setting=b | 1 x 10 | 1.000 | +0.500 | [{result.low:+.3f}, {result.high:+.3f}] | 0 / 5 | "
            f"{result.p:.3g} | {result.p:.3g} |" in text)  # the only comparison made: Holm leaves it
    assert "- run b1: no questions_test_heldout.csv (a run from before per-question files" in text
    assert "| setting=c | - | - | - | - | - | - | - |" in text
    assert ("- setting=c: no paired statistics: question sets differ: seed 0 of the setting has 11 questions, seed 0 "
            "of the baseline 10 (e.g. id 'q10' is in one only)") in text
    assert ("- setting=d: no paired statistics: no seed has answers from both (baseline seeds [0, 1], setting "
            "seeds [])") in text
    write_report(tmp_path, "heldout:test/accuracy", baseline="nope")
    assert "Paired statistics: none, the baseline `nope` is none of the settings here ['a', 'b', 'c', 'd']" in (
        tmp_path / "results.md").read_text()
    write_report(tmp_path, "heldout:test/accuracy")
    assert "Paired statistics: none, the sweep names no `baseline` setting" in (tmp_path / "results.md").read_text()


def test_settings_are_paired_with_the_baseline_at_the_same_values_of_other_axes(tmp_path):
    for lr, right in ((0.1, 2), (0.2, 6)):  # the baseline answers 2 (lr 0.1) or 6 (lr 0.2) of 8 questions right
        answers_dir(tmp_path, f"a{lr}", "a", 0, {f"q{i}": int(i < right) for i in range(8)}, lr=lr)
    for lr in (0.1, 0.2):
        answers_dir(tmp_path, f"b{lr}", "b", 0, {f"q{i}": int(i < 4) for i in range(8)}, lr=lr)
    write_report(tmp_path, "heldout:test/accuracy", chart=False, baseline="a")
    text = (tmp_path / "results.md").read_text()
    gain = compare([[int(i < 2) for i in range(8)]], [[int(i < 4) for i in range(8)]])
    loss = compare([[int(i < 6) for i in range(8)]], [[int(i < 4) for i in range(8)]])
    assert gain.p == pytest.approx(loss.p, abs=0.02) and 0.1 < gain.p < 0.35  # (6/8)^8 = 0.10 of draws miss both
    adjusted = holm([gain.p, loss.p])  # two comparisons in one table
    assert (f"| setting=b, lr=0.1 | 1 x 8 | 0.500 | +0.250 | [{gain.low:+.3f}, {gain.high:+.3f}] | 0 / 2 | "
            f"{gain.p:.3g} | {adjusted[0]:.3g} |") in text
    assert (f"| setting=b, lr=0.2 | 1 x 8 | 0.500 | -0.250 | [{loss.low:+.3f}, {loss.high:+.3f}] | 2 / 0 | "
            f"{loss.p:.3g} | {adjusted[1]:.3g} |") in text


def test_the_baseline_must_be_one_of_the_settings(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"settings": {"text_only": {}, "points": {"trainer.max_steps": 2}},
                                    "baseline": "text-only"}, sort_keys=False))
    with pytest.raises(ValueError, match=rf"sweep file {path}: 'baseline' must name one of the settings "
                                         r"\['text_only', 'points'\], got 'text-only'"):
        load_sweep(path)
    path.write_text(yaml.safe_dump({"seeds": [0, 1], "baseline": "text_only"}))
    with pytest.raises(ValueError, match=r"'baseline' must name one of the settings \[\], got 'text_only'"):
        load_sweep(path)
    path.write_text(yaml.safe_dump({"settings": {"text_only": {}, "points": {"trainer.max_steps": 2}},
                                    "baseline": "points", "metric": "heldout:test/accuracy"}))
    with pytest.raises(ValueError, match=r"'metric' 'heldout:test/accuracy' is of the evaluate stage 'heldout', "
                                         r"which 'evaluate' does not list \(it lists \[\]\)"):
        load_sweep(path)
    path.write_text(path.read_text() + "evaluate: {heldout: {}}\n")
    assert load_sweep(path).baseline == "points" and load_sweep(path).metric == "heldout:test/accuracy"


def test_questions_file_writes_choice_answers_of_every_batch(tmp_path):
    from thinkspace.sweep.questions import QuestionsFile, is_correct

    assert is_correct("B. the red cube", " b ") and not is_correct("D", "B")  # as test/accuracy parses
    path = tmp_path / "run" / "questions_test_heldout.csv"
    callback = QuestionsFile(str(path))
    trainer = SimpleNamespace(world_size=1, is_global_zero=True)
    callback.on_test_epoch_start(trainer, None)
    for ids, predictions, answers, kinds, tasks in [
        (["v1", "v2"], ["B. red, then\nblue", "C"], ["B", "A"], ["choice", "choice"], ["perspective", "situated"]),
        (["v3", "n1"], ["D", "2.5"], ["D", 2.5], ["choice", "number"], []),  # a batch without tasks
    ]:
        callback.on_test_batch_end(trainer, None, {"ids": ids, "predictions": predictions},
                                   SimpleNamespace(answers=answers, answer_types=kinds, tasks=tasks), 0)
    callback.on_test_epoch_end(trainer, None)
    assert read_questions(path) == {"v1": 1, "v2": 0, "v3": 1}  # the number question is not a choice
    assert read_tasks(path) == {"v1": "perspective", "v2": "situated"}
    assert path.read_text() == ('id,correct,answer,prediction,task\nv1,1,B,"B. red, then\nblue",perspective\n'
                                'v2,0,A,C,situated\nv3,1,D,D,\n')
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # written atomically: no temporary left


def test_a_bad_questions_file_names_its_line(tmp_path):
    path = tmp_path / "questions_test_x.csv"
    path.write_text("id,correct,answer,prediction\nq1,1,A,A\nq2,yes,A,A\n")
    with pytest.raises(ValueError, match=rf"{path}:3: 'correct' must be 0 or 1, got 'yes'"):
        read_questions(path)
    path.write_text("id,correct,answer,prediction\nq1,1,A,A\nq1,0,A,B\n")
    with pytest.raises(ValueError, match=rf"{path}:3: question id 'q1' repeats"):
        read_questions(path)
    path.write_text("id,right\nq1,1\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['correct'\]; expected the header id,correct,answer,pre"):
        read_questions(path)


def _two_ranks(rank, path, port):
    import torch.distributed as dist

    from thinkspace.sweep.questions import QuestionsFile

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    callback = QuestionsFile(path)
    trainer = SimpleNamespace(world_size=2, is_global_zero=rank == 0)
    callback.on_test_epoch_start(trainer, None)
    # a distributed sampler: rank 0 gets q0, q2, q4; rank 1 gets q1, q3 and q0 again as padding
    ids = ["q0", "q2", "q4"] if rank == 0 else ["q1", "q3", "q0"]
    callback.on_test_batch_end(trainer, None, {"ids": ids, "predictions": ["A", "B", "A"]},
                               SimpleNamespace(answers=["A"] * 3, answer_types=["choice"] * 3, tasks=[]), 0)
    callback.on_test_epoch_end(trainer, None)
    dist.destroy_process_group()


@pytest.mark.slow
def test_questions_of_every_rank_reach_one_file(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "questions_test_x.csv"
    mp.spawn(_two_ranks, args=(str(path), port), nprocs=2)
    assert read_questions(path) == {"q0": 1, "q2": 0, "q4": 1, "q1": 1, "q3": 0}  # the padding q0 once
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # rank 1 wrote nothing


def test_runs_answering_one_letter_to_every_question_are_flagged_in_results_md(tmp_path):
    """A collapsed model scores the share of its letter among the gold answers: results.md names such runs."""
    ids = [f"q{i}" for i in range(8)]
    for seed in (0, 1):  # seed 0 collapsed onto "B", seed 1 did not
        d = tmp_path / f"run{seed}"
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"name": f"run{seed}", "labels": {"setting": "text", "seed": seed}}))
        (d / "status.json").write_text(json.dumps({"state": "done"}))
        (d / "metrics_fit.json").write_text(json.dumps({"metrics": {"val/accuracy": 0.25}}))
        predictions = ["<answer>B</answer>"] * 8 if seed == 0 else ["A", "B", "C", "D"] * 2
        write_questions(d / "questions_test_heldout.csv",
                        [{"id": i, "correct": p == "A", "answer": "A", "prediction": p, "task": ""}
                         for i, p in zip(ids, predictions)])
    text = write_report(tmp_path, chart=False)["md"].read_text()
    assert "### Constant answers" in text
    assert "- run run0 (setting=text), stage `heldout`: answered 'B' to all 8 questions" in text
    assert "run run1" not in text.split("### Constant answers")[1]
