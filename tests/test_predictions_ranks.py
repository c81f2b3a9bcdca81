"""``thinkspace test`` on several processes: one predictions file, in the dataset's order, scored once.

The callback (``BenchmarkPredictions``) gathers every rank's rows to global rank 0; these tests run it
on two gloo processes with SQA3D's five released questions of scene0050_00 (predicted situations
included) and compare the files with a one-process run's.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
from pathlib import Path
from types import SimpleNamespace

import benchmark_fixtures as fx
import pytest

from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.eval.predictions import BenchmarkPredictions, merge_rank_rows


def test_merged_rows_keep_the_first_of_a_repeat_and_the_samplers_order():
    # 5 samples on 2 ranks, dealt i % 2 with the last round padded by sample 0: rank 1 ends with s0 again
    parts = [[("s0", "a", None), ("s2", "c", None), ("s4", "e", None)],
             [("s1", "b", (1.0, 2.0, 0.5)), ("s3", "d", None), ("s0", "padding", None)]]
    assert merge_rank_rows(parts) == [("s0", "a", None), ("s1", "b", (1.0, 2.0, 0.5)), ("s2", "c", None),
                                      ("s3", "d", None), ("s4", "e", None)]
    # a rank that holds fewer rows (or none) still merges; positions_of sorts by dataset index
    positions = {"s0": 4, "s1": 3, "s2": 2, "s3": 1, "s4": 0}
    merged = merge_rank_rows([parts[0], parts[1][:1], []], lambda ids: [positions[i] for i in ids])
    assert [row[0] for row in merged] == ["s4", "s2", "s1", "s0"]
    assert merge_rank_rows([[], []]) == []
    # without a benchmark ids may repeat (a Mixture serving a sample twice): the dataset's length cuts
    # the padding off the tail, and a genuine repeat stays, as one process writes it
    repeated = [[("s0", "a", None), ("s1", "c", None)], [("s0", "b", None), ("s0", "padding", None)]]
    assert merge_rank_rows(repeated, total=3) == [("s0", "a", None), ("s0", "b", None), ("s1", "c", None)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _questions(tmp_path: Path) -> tuple[SQA3D, list[tuple[str, str, tuple[float, float, float]]]]:
    """The released questions and one row each: the gold answer for even positions, a wrong one for odd
    ones, and the gold situation moved 0.6 m along world x and turned 20 degrees."""
    questions, annotations = fx.sqa3d_released(tmp_path)
    data = SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), num_frames=2)
    rows = []
    for i in range(len(data)):
        sample = data[i]
        x, y = sample.situation.position
        rows.append((sample.id, sample.answer if i % 2 == 0 else "no idea",
                     (x + 0.6, y, sample.situation.yaw + math.radians(20))))
    return data, rows


class RecordingLogger:
    """A logger that appends every ``log_metrics`` call to ``path`` (one json line per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"metrics": metrics, "step": step}) + "\n")


def _run_rank(rank: int, tmp: str, port: int, parts: list, data: SQA3D) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    tmp_path = Path(tmp)
    callback = BenchmarkPredictions(directory=str(tmp_path / "two"))
    trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"test": data}), log_dir=None,
                              default_root_dir=str(tmp_path / "unused"), global_rank=rank, world_size=2,
                              global_step=7, logger=RecordingLogger(tmp_path / "logs" / f"logged_by_{rank}.jsonl"))
    with (tmp_path / "logs" / f"stdout_of_{rank}.txt").open("w") as out, contextlib.redirect_stdout(out):
        for stage in ("test", "predict"):  # predict: no dataset configured, so plain id/prediction rows
            callback.on_test_epoch_start(trainer, None)
            for batch in parts[rank]:  # rows arrive batch by batch, as from test_step
                ids, texts, situations = zip(*batch) if batch else ((), (), ())
                callback.on_test_batch_end(trainer, None, {"ids": list(ids), "predictions": list(texts),
                                                           "situations": list(situations)}, None, 0)
            returned = callback.finish(trainer, stage)
            assert (returned is not None) == (rank == 0), (rank, returned)
    # rank 0 cannot write (its directory is a file): every rank raises at once, none waits in a later sync
    (tmp_path / "a_file").write_text("")
    callback.directory = str(tmp_path / "a_file" / "out")
    callback.rows = [row for batch in parts[rank] for row in batch]
    try:
        callback.finish(trainer, "test")
    except (OSError, RuntimeError) as error:
        (tmp_path / "logs" / f"raised_by_{rank}.txt").write_text(f"{type(error).__name__}: {error}")
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes importing torch and thinkspace: about 15 s on a loaded machine
def test_two_ranks_write_one_file_in_dataset_order_scored_as_one_process(tmp_path):
    import torch.multiprocessing as mp

    data, rows = _questions(tmp_path)
    assert len(rows) == 5
    # one process: every row in dataset order
    one = BenchmarkPredictions(directory=str(tmp_path / "one"), print_table=False)
    one.rows = list(rows)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"test": data}), log_dir=None,
                              default_root_dir=str(tmp_path), global_rank=0, world_size=1, logger=None)
    one.finish(trainer, "test")
    # two processes, dealt as EpochSampler deals 5 samples to 2 ranks: rank 0 gets 0, 2, 4 (batches of 2
    # and 1), rank 1 gets 1, 3 and 0 again as padding (one batch of 3 and an empty one)
    parts = [[[rows[0], rows[2]], [rows[4]]],
             [[rows[1], rows[3], (rows[0][0], "padding repeat", None)], []]]
    (tmp_path / "logs").mkdir()
    mp.spawn(_run_rank, args=(str(tmp_path), _free_port(), parts, data), nprocs=2)

    raised = {r: (tmp_path / "logs" / f"raised_by_{r}.txt").read_text() for r in (0, 1)}
    assert raised[0].startswith("NotADirectoryError") or raised[0].startswith("FileExistsError"), raised[0]
    assert raised[1].startswith("RuntimeError: rank 0 could not write or score the test predictions: "
                                + raised[0].split(":")[0]), raised[1]

    two, single = tmp_path / "two", tmp_path / "one"
    assert sorted(p.name for p in two.iterdir()) == ["predictions_predict.jsonl", "predictions_test_sqa3d.jsonl",
                                                      "scores_test_sqa3d.json"]  # no .rankN file, no temporary
    records = [json.loads(line) for line in (two / "predictions_test_sqa3d.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in records] == [q["question_id"] for q in
                                                   json.loads(fx.SQA3D_RELEASED.read_text())["questions"]]
    assert [r["answer"] == "no idea" for r in records] == [False, True, False, True, False]  # not the padding's
    assert all(len(r["agent_pos"]) == 3 and len(r["agent_rot"]) == 4 for r in records)  # the situations came along
    assert (two / "predictions_test_sqa3d.jsonl").read_text() == (single / "predictions_test_sqa3d.jsonl").read_text()
    scores = json.loads((two / "scores_test_sqa3d.json").read_text())
    assert scores == json.loads((single / "scores_test_sqa3d.json").read_text())
    # 0.6 m and 20 degrees off everywhere: within 1 m and 30 degrees, not within 0.5 m and 15 degrees
    assert scores["extra"] == pytest.approx({"acc@0.5m": 0.0, "acc@1.0m": 100.0, "acc@15deg": 0.0, "acc@30deg": 100.0})
    plain = [json.loads(line) for line in (two / "predictions_predict.jsonl").read_text().splitlines()]
    assert plain == [{"id": row[0], "prediction": row[1]} for row in rows]  # the sampler's order restored
    # scored, logged and printed once, by rank 0
    logged = [json.loads(line) for line in (tmp_path / "logs" / "logged_by_0.jsonl").read_text().splitlines()]
    assert len(logged) == 1 and logged[0]["step"] == 7
    assert logged[0]["metrics"]["test/sqa3d/acc@1.0m"] == pytest.approx(100.0)
    assert not (tmp_path / "logs" / "logged_by_1.jsonl").exists()
    assert "sqa3d: 5 records" in (tmp_path / "logs" / "stdout_of_0.txt").read_text()
    assert (tmp_path / "logs" / "stdout_of_1.txt").read_text() == ""


@pytest.mark.slow  # two `thinkspace test` runs, one of them on two DDP processes: about 30 s on a loaded machine
def test_thinkspace_test_on_two_ddp_processes_writes_what_one_process_writes(tmp_path):
    """A real ``thinkspace test --trainer.devices 2 --trainer.strategy ddp`` on the CPU (gloo): one
    predictions file with each of the 5 questions once (rank 1 holds 2 and a padding repeat), the
    situations' agent_pos/agent_rot in it, the scores equal to one process's, the table printed once.
    Batches of 1, so each question is generated alone in both runs (padding would change no
    answer but could move a float)."""
    from cli_helpers import QUICKSTART, run_cli

    questions, annotations = fx.sqa3d_released(tmp_path)
    args = ["test", "--config", str(QUICKSTART), "--model.objectives.situation", "thinkspace.objectives.Situation",
            "--data.test", "thinkspace.data.datasets.sqa3d.SQA3D", "--data.test.init_args.questions", str(questions),
            "--data.test.init_args.annotations", str(annotations),
            "--data.test.init_args.scannet_root", str(tmp_path / "scans"), "--data.test.init_args.num_frames", "2",
            "--data.batch_size", "1", "--data.num_workers", "0", "--model.generation.max_new_tokens", "2",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    run_cli(*args, "--run_dir", "runs/one", cwd=tmp_path)
    proc = run_cli(*args, "--run_dir", "runs/two", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
                   "--trainer.strategy", "ddp", cwd=tmp_path)
    one, two = tmp_path / "runs/one", tmp_path / "runs/two"
    assert sorted(p.name for p in two.iterdir() if not p.name.startswith("events.")) == [
        "config.yaml", "predictions_test_sqa3d.jsonl", "scores_test_sqa3d.json"]  # no .rankN file
    records = [json.loads(line) for line in (two / "predictions_test_sqa3d.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in records] == [q["question_id"] for q in
                                                   json.loads(questions.read_text())["questions"]]
    assert all(len(r["agent_pos"]) == 3 and len(r["agent_rot"]) == 4 for r in records)
    assert (two / "predictions_test_sqa3d.jsonl").read_text() == (one / "predictions_test_sqa3d.jsonl").read_text()
    assert json.loads((two / "scores_test_sqa3d.json").read_text()) == json.loads(
        (one / "scores_test_sqa3d.json").read_text())
    assert "Starting with 2 processes" in proc.stdout + proc.stderr  # it did run on two ranks
    assert proc.stdout.count("sqa3d: 5 records") == 1
