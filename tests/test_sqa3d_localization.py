"""SQA3D localization output and scoring: predictions written in SQA3D's frame, scored once
per situation (the official localization file's unit), at most 3 predictions per record.

The fixture holds SQA3D's five released test records of scene0050_00: three questions of
one situation (A: by the ottoman), one of B (on the armchair), one of C (facing the armchair).
"""

from __future__ import annotations

import json
import math

import pytest

import benchmark_fixtures as fx
from cli_helpers import QUICKSTART, command, one_error_line
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.eval import score_sqa3d

score_main = command("score")

def released(tmp_path) -> SQA3D:
    questions, annotations = fx.sqa3d_released(tmp_path)
    return SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), num_frames=8)


def predicted(data: SQA3D, shifts: dict[str, tuple[float, float]]) -> list[tuple[str, dict]]:
    """Prediction records whose world situation is the gold one moved by (metres along world x,
    degrees) per situation text prefix; the text answers are all right."""
    rows = []
    for i in range(len(data)):
        sample = data[i]
        metres, degrees = next(v for k, v in shifts.items() if sample.situation.text.startswith(k))
        x, y = sample.situation.position
        situation = (x + metres, y, sample.situation.yaw + math.radians(degrees))
        rows.append((f"preds.jsonl:{i + 1}", data.prediction_record(i, sample.answer, situation)))
    return rows


def test_a_perfect_prediction_scores_100_and_a_shifted_one_the_hand_counted_accuracies(tmp_path):
    data = released(tmp_path)
    perfect = score_sqa3d(predicted(data, {"I": (0.0, 0.0)}))
    assert perfect.overall == 100.0
    assert perfect.extra == pytest.approx({"acc@0.5m": 100.0, "acc@1.0m": 100.0, "acc@15deg": 100.0,
                                           "acc@30deg": 100.0})
    assert perfect.notes == ["localization scored per situation: 3 situations"]
    # A 0.6 m and 20 deg off, B 0.3 m and -10 deg, C 1.2 m and 40 deg: per situation 1/3 and 2/3
    shifted = score_sqa3d(predicted(data, {"I am standing": (0.6, 20.0), "I am sitting": (0.3, -10.0),
                                           "I am facing": (1.2, 40.0)}))
    assert shifted.extra == pytest.approx({"acc@0.5m": 100 / 3, "acc@1.0m": 200 / 3, "acc@15deg": 100 / 3,
                                           "acc@30deg": 200 / 3})


def test_scoring_is_per_situation_not_per_question(tmp_path):
    data = released(tmp_path)
    rows = predicted(data, {"I am standing": (2.0, 90.0), "I am sitting": (0.0, 0.0), "I am facing": (0.0, 0.0)})
    # per question A's three misses would give 2 of 5 = 40 %; per situation it is 2 of 3
    assert score_sqa3d(rows).extra["acc@0.5m"] == pytest.approx(200 / 3)
    # the first record of a situation gives its prediction; a later one that disagrees is noted
    rows[1][1]["agent_pos"] = rows[3][1]["agent_pos"]
    score = score_sqa3d(rows)
    assert score.extra["acc@0.5m"] == pytest.approx(200 / 3)
    assert score.notes[1].startswith("1 record(s) predict another pose than the first record of their situation")
    del rows[0][1]["situation"]
    with pytest.raises(KeyError, match=r"preds.jsonl:1: missing field 'situation'"):
        score_sqa3d(rows)
    rows[0][1]["situation"] = rows[1][1]["situation"]
    gold = fx.sqa3d_localization(tmp_path / "v1_balanced_localization_test_scannetv2.json")
    assert len(json.loads(gold.read_text())["annotations"]) == 3
    assert score_sqa3d(rows, localization=gold).extra["acc@30deg"] == pytest.approx(200 / 3)
    # a gold file with one more situation: a miss, as the official metric counts it (total = len(gold))
    more = json.loads(gold.read_text())
    more["annotations"].append(dict(more["annotations"][0], situation="I am elsewhere."))
    gold.write_text(json.dumps(more))
    assert score_sqa3d(rows, localization=gold).extra["acc@30deg"] == pytest.approx(200 / 4)
    score = score_sqa3d(rows[:3], localization=gold)  # A's three records only
    assert score.extra["acc@1.0m"] == 0.0
    assert "3 of 4 gold situations have no prediction: counted as misses" in score.notes[-1]
    assert score_sqa3d(rows[:3]).notes[0] == "localization scored per situation: 1 situations"


def test_more_than_three_predictions_per_record_is_an_error(tmp_path):
    data = released(tmp_path)
    (where, record), *_ = predicted(data, {"I": (0.0, 0.0)})
    record["agent_pos"] = [record["agent_pos"]] * 4
    with pytest.raises(ValueError, match=r"preds.jsonl:1: agent_pos holds 4 predictions; SQA3D's localization "
                                         r"metric takes 1 to 3 per record"):
        score_sqa3d([(where, record)])
    record["agent_pos"] = record["agent_pos"][:3]  # three are fine, the closest counts
    assert score_sqa3d([(where, record)]).extra["acc@0.5m"] == 100.0


def test_score_command_takes_the_localization_file(tmp_path, capsys):
    data = released(tmp_path)
    rows = predicted(data, {"I am standing": (0.6, 20.0), "I": (0.0, 0.0)})
    path = fx.write_jsonl(tmp_path / "preds.jsonl", [r for _, r in rows])
    gold = fx.sqa3d_localization(tmp_path / "gold.json")
    assert score_main(["sqa3d", str(path), "--localization", str(gold), "--json"]) == 0
    extra = json.loads(capsys.readouterr().out)["extra"]
    assert extra == pytest.approx({"acc@0.5m": 200 / 3, "acc@1.0m": 100.0, "acc@15deg": 200 / 3, "acc@30deg": 100.0})
    assert score_main(["vsibench", str(path), "--localization", str(gold)]) == 2
    assert one_error_line(capsys, "score") == "thinkspace score: error: --localization is for sqa3d, not vsibench"


def test_situation_text_is_in_the_prompt_once(tmp_path):
    from thinkspace.objectives import Situation

    data = released(tmp_path)
    sample = data[3]
    assert sample.prompt == ("I am sitting on the armchair facing the desk. "
                             "How many backpacks are on the ottoman behind me to the left side?")
    objective = Situation()  # prompt editing needs no backbone
    assert objective.prepare(sample).prompt == ("I am sitting on the armchair facing the desk. <Pos><Ori>\n"
                                                "How many backpacks are on the ottoman behind me to the left side?")
    # the synthetic world's prompt ("{situation}\n{question}...") keeps its text once too
    from thinkspace.data.datasets.synthetic import SyntheticSpatial

    synthetic = SyntheticSpatial(1, kind="video", settings=["situation"], image_size=32, num_frames=2)[0]
    rest = synthetic.prompt.removeprefix(synthetic.situation.text + "\n")
    assert objective.prepare(synthetic).prompt == f"{synthetic.situation.text} <Pos><Ori>\n{rest}"
    assert objective.prepare(synthetic).prompt.count(synthetic.situation.text) == 1


def test_thinkspace_test_writes_agent_pos_and_rot_and_scores_them(tmp_path):
    """``thinkspace test`` with a situation objective: every record carries agent_pos/agent_rot,
    the three questions of one situation agree, and the scores hold the four accuracies;
    ``thinkspace predict`` writes the same poses."""
    from thinkspace.cli import main

    questions, annotations = fx.sqa3d_released(tmp_path)
    args = ["--config", str(QUICKSTART), "--run_dir", str(tmp_path / "run"),
            "--model.objectives.situation", "thinkspace.objectives.Situation",
            "--data.test", "thinkspace.data.datasets.sqa3d.SQA3D",
            "--data.test.init_args.questions", str(questions), "--data.test.init_args.annotations", str(annotations),
            "--data.test.init_args.scannet_root", str(tmp_path / "scans"), "--data.test.init_args.num_frames", "2",
            "--data.predict", "thinkspace.data.datasets.sqa3d.SQA3D", "--data.predict.init_args.questions",
            str(questions), "--data.predict.init_args.annotations", str(annotations),
            "--data.predict.init_args.scannet_root", str(tmp_path / "scans"), "--data.predict.init_args.num_frames", "2",
            "--data.batch_size", "2", "--data.num_workers", "0", "--model.generation.max_new_tokens", "2",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["test", *args]) == 0
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "predictions_test_sqa3d.jsonl").read_text().splitlines()]
    assert len(records) == 5 and all(len(r["agent_pos"]) == 3 and len(r["agent_rot"]) == 4 for r in records)
    ottoman = [r for r in records if r["situation"].startswith("I am standing by the ottoman")]
    assert len(ottoman) == 3
    for r in ottoman[1:]:  # same frames, same situation text: the same prediction
        assert r["agent_pos"] == pytest.approx(ottoman[0]["agent_pos"], abs=1e-4)
    logged = json.loads((run / "scores_test_sqa3d.json").read_text())
    assert set(logged["extra"]) == {"acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"}
    assert logged["notes"][0] == "localization scored per situation: 3 situations"
    assert main(["predict", *args]) == 0  # predict writes the same poses
    again = [json.loads(line) for line in (run / "predictions_predict_sqa3d.jsonl").read_text().splitlines()]
    for mine, theirs in zip(again, records):
        assert mine["agent_rot"] == pytest.approx(theirs["agent_rot"], abs=1e-5)
