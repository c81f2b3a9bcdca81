"""ScanQA scoring equals ATR-DBI/ScanQA ``scripts/score.py`` on messy predictions for real val questions.

Fixtures (``tests/fixtures/scanqa_val_messy_*.json``):
- gold: 60 records of the released ``ScanQA_v1.0_val.json`` (ATR-DBI/ScanQA, licence CC BY-NC-SA 3.0;
  copy stored in NikolasHars/ScanQA_visualization), drawn with ``random.Random(31).sample``.
- predictions: ``pred.json`` records (``scene_id``, ``question_id``, ``answer_top10`` of 1-10 answers),
  each answer a seeded mechanical perturbation of one of the question's references (upper case, title
  case, a leading "the "/"a ", a trailing "." / "?" / ",", an "s" appended, "It is X.", padding spaces,
  "X next to the <another answer>", another question's answer, or the empty string); 3 top answers are empty.

Pinned numbers: the official file's own functions (``evals_json``, ``eval_pycoco``; file unchanged,
commit 0a9f162) run in a scratch directory on these fixtures with pycocoevalcap 1.2, nltk 3.10.4 and
WordNet 3.0 from Debian's wordnet-base as nltk data (``nltk.download`` fails offline; nltk's OMW sense
map switched off, as it needs an ``index.sense`` Debian lacks and lemmatizing never reads it).
``evals_json`` raises ZeroDivisionError on the 60 (an empty top answer), so EM and F-value are pinned
on the 57 questions with a non-empty top answer; ``eval_pycoco`` ran on both sets.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import command, one_error_line

from thinkspace.data.datasets.scanqa import ScanQA
from thinkspace.eval.predictions import BenchmarkPredictions
from thinkspace.eval.scanqa import question_class, score_scanqa, unigram_f_value
from thinkspace.eval.wordnet_lemmas import find_wordnet
from thinkspace.records import read_table

FIXTURES = Path(__file__).parent / "fixtures"
GOLD = FIXTURES / "scanqa_val_messy_gold.json"
PRED = FIXTURES / "scanqa_val_messy_pred.json"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="no 'java' on the PATH (default-jre-headless)")
needs_wordnet = pytest.mark.skipif(find_wordnet()[0] is None, reason="no WordNet database on disk (wordnet-base)")

#: official score.py on the 57 questions with a non-empty top answer (evals_json + eval_pycoco).
OFFICIAL_57 = {"EM@1": 7.017543859649122, "EM@10": 19.298245614035086, "F-value": 42.507658033973826,
               "BLEU-1": 53.45911949651912, "BLEU-2": 45.786854649194574, "BLEU-3": 39.017529192405846,
               "BLEU-4": 29.93207970710552, "METEOR": 39.26437322233082, "ROUGE-L": 65.19410835047795,
               "CIDEr": 188.8568379128177}
#: official eval_pycoco on all 60 (its evals_json stops with ZeroDivisionError there).
OFFICIAL_60_CAPTIONS = {"BLEU-1": 53.45911949651912, "BLEU-2": 45.786854649194574, "BLEU-3": 39.017529192405846,
                        "BLEU-4": 29.93207970710552, "METEOR": 37.83968173544941, "ROUGE-L": 61.934402932954036,
                        "CIDEr": 179.6729820173976}
#: official evals_json per qclass1 class (the --detailed grouping) on the 57: Top1 (EM).
OFFICIAL_57_CLASSES = {"Place": 30.0, "Number": 0.0, "Color": 0.0, "Object nature": 0.0,
                       "Object": 5.88235294117647, "Other": 0.0}


def non_empty_top(tmp_path: Path) -> tuple[Path, Path]:
    """The 57-question files: predictions whose top answer has a token, and their gold records."""
    preds = [p for p in json.loads(PRED.read_text()) if p["answer_top10"][0].split()]
    keep = {p["question_id"] for p in preds}
    gold = [g for g in json.loads(GOLD.read_text()) if g["question_id"] in keep]
    (tmp_path / "gold.json").write_text(json.dumps(gold))
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    return tmp_path / "pred.json", tmp_path / "gold.json"


@needs_wordnet
def test_em_and_f_value_equal_the_official_script(tmp_path):
    pred, gold = non_empty_top(tmp_path)
    score = score_scanqa(read_table(pred), gold=gold, caption_metrics=False)
    assert score.n == 57
    for key in ("EM@1", "EM@10", "F-value"):
        assert score.groups[key] == pytest.approx(OFFICIAL_57[key], abs=1e-9), key
    assert score.overall == score.groups["EM@1"]
    assert {k.split("/", 1)[1]: v for k, v in score.extra.items()} == pytest.approx(OFFICIAL_57_CLASSES)
    # the 3 empty top answers score 0 here (the official code divides by zero on them)
    full = score_scanqa(read_table(PRED), gold=GOLD, caption_metrics=False)
    assert full.n == 60
    assert full.groups["F-value"] == pytest.approx(OFFICIAL_57["F-value"] * 57 / 60, abs=1e-9)
    assert full.groups["EM@1"] == pytest.approx(100 * 4 / 60)


@pytest.mark.slow  # two Java tokenizer runs and a METEOR process per scoring: about 5 s each here
@needs_java
@needs_wordnet
def test_caption_metrics_equal_the_official_script_through_the_cli(tmp_path, capsys):
    pred, gold = non_empty_top(tmp_path)
    assert command("score")(["scanqa", str(pred), "--gold", str(gold), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "scanqa" and out["n"] == 57
    assert out["by_metric"] == pytest.approx(OFFICIAL_57, abs=1e-9)
    full = score_scanqa(read_table(PRED), gold=GOLD)
    for key, value in OFFICIAL_60_CAPTIONS.items():
        assert full.groups[key] == pytest.approx(value, abs=1e-9), key


def test_f_value_counts_repeats_and_lemmas_as_the_official_rule():
    # precision: reference tokens found in the answer / reference length; recall the other way round
    assert unigram_f_value(["brown", "chair"], ["brown", "chair", "chair"]) == pytest.approx(1.0)
    assert unigram_f_value(["black"], ["black", "tv"]) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert unigram_f_value([], ["tv"]) == 0.0 and unigram_f_value(["tv"], ["sofa"]) == 0.0


def test_question_classes_follow_qclass1():
    assert question_class("Where is the chair?") == "Place"
    assert question_class("What is the color of the sofa?") == "Color"
    assert question_class("What type of table is it?") == "Object nature"
    assert question_class("What is under the desk?") == "Object"
    assert question_class("where is the chair?") == "Other"  # case kept, as officially


def test_missing_wordnet_leaves_the_f_value_out_with_the_reason(tmp_path, monkeypatch):
    import nltk.data

    import thinkspace.eval.wordnet_lemmas as lemmas

    monkeypatch.setattr(lemmas, "DEBIAN_WORDNET", tmp_path / "none")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    score = score_scanqa(read_table(PRED), gold=GOLD, caption_metrics=False)
    assert "F-value" not in score.groups and score.groups["EM@1"] == pytest.approx(100 * 4 / 60)
    assert any(n.startswith("F-value unavailable: no WordNet database") and "wordnet-base" in n for n in score.notes)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: holds no WordNet database"):
        find_wordnet(tmp_path)


def test_missing_extra_and_missing_java_name_what_to_install(monkeypatch):
    import thinkspace.eval.caption_metrics as captions

    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="no 'java' on the PATH.*default-jre-headless"):
        score_scanqa(read_table(PRED), gold=GOLD)
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    with pytest.raises(ImportError, match=r"the 'scanqa' extra.*default-jre-headless.*wordnet-base"):
        captions.require_scanqa_extra()


@pytest.mark.parametrize(("record", "extra", "message"), [
    ({"question_id": "val-scene0011-0", "answer_top10": "brown"}, [],
     r"pred.jsonl:1: answer_top10 of question val-scene0011-0 must be a non-empty list of answer strings"),
    ({"question_id": "val-x-1", "answer_top10": ["brown"]}, ["--gold", str(GOLD)],
     r"pred.jsonl:1: question val-x-1 is not in the gold file"),
    ({"question_id": "val-x-1", "answer_top10": ["brown"]}, [],
     r"pred.jsonl:1: missing field 'answers' \(ScanQA reference answers; or pass --gold"),
])
def test_bad_input_names_file_line_and_expectation(tmp_path, capsys, record, extra, message):
    path = tmp_path / "pred.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert command("score")(["scanqa", str(path), *extra]) == 2
    assert re.search(message, one_error_line(capsys, "score"))


def test_test_run_writes_records_and_official_pred_json(tmp_path, capsys):
    """``thinkspace test``'s callback on ScanQA's test_w_obj layout (no answers): written, not scored."""
    questions = [{k: v for k, v in g.items() if k != "answers"} for g in json.loads(GOLD.read_text())[:2]]
    (tmp_path / "ScanQA_v1.0_test_w_obj.json").write_text(json.dumps(questions))
    data = ScanQA(str(tmp_path / "ScanQA_v1.0_test_w_obj.json"))
    assert data.benchmark == "scanqa" and not data.scorable
    callback = BenchmarkPredictions(directory=str(tmp_path / "out"))
    callback.rows = [(questions[1]["question_id"], " a brown chair \n", None),
                     (questions[0]["question_id"], "white", None)]
    trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"test": data, "predict": data}), log_dir=None,
                              default_root_dir=str(tmp_path), global_rank=0, world_size=1, logger=None)
    path = callback.finish(trainer, "test")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert path.name == "predictions_test_scanqa.jsonl"
    assert [r["answer_top10"] for r in records] == [["a brown chair"], ["white"]]
    assert records[0]["question"] == questions[1]["question"]
    official = json.loads((tmp_path / "out" / "pred.test_w_obj.json").read_text())
    assert official == [{"scene_id": q["scene_id"], "question_id": q["question_id"], "answer_top10": a}
                        for q, a in zip(questions[::-1], [["a brown chair"], ["white"]])]
    assert "not scored (the questions carry no answers)" in capsys.readouterr().out
    assert not (tmp_path / "out" / "scores_test_scanqa.json").exists()
    callback.finish(trainer, "predict")  # beside the test run's files, not over them
    assert json.loads((tmp_path / "out" / "pred.test_w_obj.predict.json").read_text()) == official
    assert json.loads((tmp_path / "out" / "pred.test_w_obj.json").read_text()) == official


@needs_wordnet
def test_em_and_f_value_alone_need_no_java(tmp_path, capsys, monkeypatch):
    pred, gold = non_empty_top(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # as on a machine without Java
    assert command("score")(["scanqa", str(pred), "--gold", str(gold), "--no-caption-metrics", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["by_metric"]) == {"EM@1", "EM@10", "F-value"}
    assert out["by_metric"]["F-value"] == pytest.approx(OFFICIAL_57["F-value"], abs=1e-9)
    assert command("score")(["vsibench", str(pred), "--no-caption-metrics"]) == 2
    assert one_error_line(capsys, "score") == "thinkspace score: error: --no-caption-metrics is for scanqa, not vsibench"


def test_eval_config_reads_val_on_top_of_the_joint_recipe():
    """configs/eval/scanqa.yaml keeps joint.yaml's backbone and camera prior (it names neither)."""
    import yaml

    config = Path(__file__).parents[1] / "configs" / "eval" / "scanqa.yaml"
    text = config.read_text()
    raw = yaml.safe_load(text)
    assert text.splitlines()[0] == "# base: configs/loc3r/joint.yaml"
    assert set(raw["model"]) == {"generation"} and "cues" not in raw["model"]
    test = raw["data"]["test"]
    assert test["class_path"] == "thinkspace.data.datasets.scanqa.ScanQA"
    assert test["init_args"]["path"] == "data/ScanQA/ScanQA_v1.0_val.json" and test["init_args"]["as_video"] is True


@pytest.mark.slow  # the Java tokenizer and METEOR: about 5 s here
@needs_java
@needs_wordnet
def test_test_run_on_val_scores_what_it_wrote(tmp_path):
    data = ScanQA(str(GOLD))
    assert data.scorable
    callback = BenchmarkPredictions(directory=str(tmp_path), print_table=False)
    callback.rows = [(p["question_id"], p["answer_top10"][0], None) for p in json.loads(PRED.read_text())]
    trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"test": data, "predict": data}), log_dir=None,
                              default_root_dir=str(tmp_path), global_rank=0, world_size=1, logger=None)
    path = callback.finish(trainer, "test")
    scores = json.loads((tmp_path / "scores_test_scanqa.json").read_text())
    direct = score_scanqa(read_table(path), caption_metrics=False)  # the file's own answers, no --gold
    assert scores["n"] == 60 and scores["by_metric"]["EM@1"] == pytest.approx(direct.groups["EM@1"])
    assert scores["by_metric"]["F-value"] == pytest.approx(direct.groups["F-value"])
    assert set(scores["by_metric"]) == {"EM@1", "EM@10", "F-value", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4",
                                        "METEOR", "ROUGE-L", "CIDEr"}
    assert json.loads((tmp_path / "pred.scanqa_val_messy_gold.json").read_text())[0]["answer_top10"] == \
        [json.loads(PRED.read_text())[0]["answer_top10"][0].strip()]
