"""``Ego3DBench``: views in the official order, each placed right after its label, upstream's prompt."""

import re

import benchmark_fixtures as fx
import numpy as np
import pytest

from thinkspace.data.datasets.ego3d import Ego3DBench, ego3d_prompt
from thinkspace.eval.ego3d import score_ego3d
from thinkspace.objectives import TextCrossEntropy

SUFFIX = "\nOutput the thinking process in <think> </think> and final answer ({}) in <answer> </answer> tags."


@pytest.fixture()
def dataset(tmp_path):
    path = fx.ego3d(tmp_path)
    return Ego3DBench(str(path), image_root=str(tmp_path / "images"))


def colours(sample):
    return [tuple(int(c) for c in np.asarray(f)[0, 0]) for f in sample.frames]


def test_views_in_official_order_and_answers(dataset):
    nuscenes, waymo = dataset[0], dataset[1]
    assert colours(nuscenes) == list(fx.EGO3D_NUSCENES.values())  # file lists them reversed
    assert colours(waymo) == list(fx.EGO3D_WAYMO.values())
    assert nuscenes.meta["views"] == ["Front_Left", "Front", "Front_Right", "Back_Right", "Back", "Back_Left"]
    assert (nuscenes.id, nuscenes.task, nuscenes.answer, nuscenes.answer_type) == ("7", "Localization", "B", "choice")
    assert (waymo.task, waymo.answer, waymo.answer_type) == ("Ego_Centric_Absolute_Distance", 27.29, "number")


def test_prompt_is_upstreams(dataset):
    nuscenes, waymo = dataset[0], dataset[1]
    record = dataset.index[0]["record"]
    assert nuscenes.prompt == (record["question"] + "\nA.Front\nB.Back\nC.Right\nD.Left"
                               + SUFFIX.format("only the letter of the choice"))
    assert waymo.prompt == dataset.index[1]["record"]["question"] + SUFFIX.format("number only")
    for category in ("Ego_Centric_Relative_Distance", "Ego_Centric_Motion_Reasoning", "Object_Centric_Motion_Reasoning"):
        assert ego3d_prompt("Q", ["A. yes", "B. no"], category, yes_no_wording=True) == \
            "Q\nA. yes\nB. no" + SUFFIX.format("yes or no")
        assert ego3d_prompt("Q", ["A. yes", "B. no"], category).endswith("(only the letter of the choice) in "
                                                                           "<answer> </answer> tags.")
    assert ego3d_prompt("Q", [], "Travel_Time", yes_no_wording=True).endswith(SUFFIX.format(
        "only the letter of the choice"))


def test_each_image_right_after_its_label(dataset, qwen25):
    collator = qwen25.collator({"text": TextCrossEntropy()})
    sample = dataset[0]
    text = collator.prompt_text(sample)
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    labels = re.findall(r"([A-Za-z ]+) view:" + re.escape(image), text)
    assert labels == ["Front Left", "Front", "Front Right", "Back Right", "Back", "Back Left"]
    assert text.count(image) == 6 and "<image>" not in text
    # text pieces stripped, joined with nothing between them (upstream's convert_to_qwen_input)
    assert "ego car" + image not in text and "Back Left view:" + image + "If I stand" in text
    batch = collator([dataset[0], dataset[1]])
    assert batch.inputs["image_grid_thw"].shape == (6 + 5, 3)
    assert batch.visual.grid[:, 0].bincount().tolist() == [6, 5]  # frames per sample, in order


def test_slots_hold_for_another_family(dataset, llava_onevision):
    """LLaVA-OneVision's template writes "<image>\n" per image part: each still follows its label."""
    collator = llava_onevision.collator({"text": TextCrossEntropy()})
    text = collator.prompt_text(dataset[0])
    assert re.findall(r"([A-Za-z ]+) view:<image>", text) == ["Front Left", "Front", "Front Right", "Back Right",
                                                              "Back", "Back Left"]
    batch = collator([dataset[0], dataset[1]])
    assert batch.visual.grid[:, 0].bincount().tolist() == [6, 5]


def test_prediction_records_score_as_official(dataset):
    rows = [dataset.prediction_record(0, "<think>it is behind</think>\n<answer>\nB\n</answer>"),
            dataset.prediction_record(1, "<think>far</think><answer>30</answer>")]
    assert rows[0]["Processed_Pred"] == "B" and rows[1]["Processed_Pred"] == "30"
    assert rows[0]["Question_Type"] == "multi_choice" and rows[1]["Question_Type"] == "exact_number"
    assert rows[1]["GT"] == "27.29" and rows[0]["category"] == "Localization"
    score = score_ego3d([(f"p:{i}", r) for i, r in enumerate(rows)])
    assert score.groups == {"Localization": 100.0}
    assert score.extra["Ego_Centric_Absolute_Distance_rmse_m"] == pytest.approx(30 - 27.29)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(question=r["question"].replace("<image>", "", 1)), r"has 5 <image> slot\(s\) for the 6 views"),
    (lambda r: r["images"].pop("Back"), r"has no image for view\(s\) Back; expected the 6 views"),
    (lambda r: r.update(category="Depth"), r"unknown category 'Depth'"),
    (lambda r: r.pop("source"), r"missing field 'source'"),
])
def test_bad_rows_name_file_line_and_what_was_expected(tmp_path, edit, message):
    path = fx.ego3d(tmp_path)
    rows = [__import__("json").loads(line) for line in path.read_text().splitlines()]
    edit(rows[0])
    fx.write_jsonl(path, rows)
    with pytest.raises((ValueError, KeyError), match=r"test.jsonl:1: .*" + message):
        len(Ego3DBench(str(path), image_root=str(tmp_path / "images")))


def test_answer_outside_options_warns(tmp_path):
    path = fx.ego3d(tmp_path)
    rows = [__import__("json").loads(line) for line in path.read_text().splitlines()]
    rows[0]["answer"] = "yes"
    fx.write_jsonl(path, rows)
    with pytest.warns(UserWarning, match=r"1 multiple-choice answer\(s\) are not one of their options' letters"):
        assert len(Ego3DBench(str(path), image_root=str(tmp_path / "images"))) == 2


@pytest.mark.slow
def test_thinkspace_test_writes_rows_score_and_upstream_read(tmp_path, capsys):
    """The real CLI in this process on the tiny model: interleaved views through generation to scores."""
    import json

    from cli_helpers import QUICKSTART, command

    from thinkspace.cli import main

    data = fx.ego3d(tmp_path)
    args = ["--config", str(QUICKSTART), "--run_dir", str(tmp_path / "run"),
            "--data.test", "thinkspace.data.datasets.ego3d.Ego3DBench",
            "--data.test.init_args.path", str(data), "--data.test.init_args.image_root", str(tmp_path / "images"),
            "--data.batch_size", "2", "--data.num_workers", "0", "--model.generation.max_new_tokens", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["test", *args]) == 0
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "predictions_test_ego3d.jsonl").read_text().splitlines()]
    assert [(r["idx"], r["category"], r["GT"]) for r in rows] == [
        (7, "Localization", "B"), (8, "Ego_Centric_Absolute_Distance", "27.29")]
    assert all(set(r) >= {"Question", "Question_Type", "Pred", "Processed_Pred", "GT"} for r in rows)
    logged = json.loads((run / "scores_test_ego3d.json").read_text())
    assert logged["n"] == 2 and set(logged["by_category"]) == {"Localization"}
    capsys.readouterr()
    assert command("score")(["ego3d", str(run / "predictions_test_ego3d.jsonl"), "--json",
                             "--split-into", str(tmp_path / "logs")]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in logged.items() if k != "notes"}
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "Ego_Centric_Absolute_Distance.jsonl", "Localization.jsonl"]



def write_arrow(path, rows, stream: bool):
    """``rows`` as an Arrow IPC stream (as ``datasets`` saves a split) or an IPC file."""
    pa = pytest.importorskip("pyarrow")  # the parquet extra (in dev)
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink:
        writer = pa.ipc.new_stream(sink, table.schema) if stream else pa.ipc.new_file(sink, table.schema)
        with writer:
            writer.write_table(table)
    return path


@pytest.mark.parametrize("stream", [True, False], ids=["ipc-stream", "ipc-file"])
def test_the_datasets_arrow_file_reads_as_its_jsonl_export(tmp_path, stream):
    path = fx.ego3d(tmp_path)
    rows = [__import__("json").loads(line) for line in path.read_text().splitlines()]
    arrow = write_arrow(tmp_path / "data-00000-of-00001.arrow", rows, stream)
    exported = Ego3DBench(str(path), image_root=str(tmp_path / "images"))
    native = Ego3DBench(str(arrow), image_root=str(tmp_path / "images"))
    assert len(native) == len(exported) == 2
    for a, b in zip(native, exported):
        assert (a.id, a.task, a.prompt, a.answer, a.meta["views"]) == (b.id, b.task, b.prompt, b.answer, b.meta["views"])
        assert colours(a) == colours(b)
    rows[1]["images"].pop("Front")  # errors name the arrow file and the row
    write_arrow(arrow, rows, stream)
    with pytest.raises(ValueError, match=r"data-00000-of-00001.arrow:#1: sample '8' \(waymo\) has no image for view"):
        len(Ego3DBench(str(arrow), image_root=str(tmp_path / "images")))


def test_an_arrow_file_that_is_not_arrow_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    bad = tmp_path / "test.arrow"
    bad.write_text('{"idx": 1}\n')
    with pytest.raises(ValueError, match=r"test.arrow: not an Arrow table .*expected an Arrow IPC stream or file"):
        len(Ego3DBench(str(bad)))


def test_the_arrow_file_needs_pyarrow_and_other_suffixes_stay_json_lines(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # absent even where the dev extra has it
    (tmp_path / "test.arrow").write_bytes(b"ARROW1")
    with pytest.raises(ImportError, match=r"test.arrow: reading an .arrow file needs pyarrow "
                       r"\(the parquet extra: pip install 'thinkspace\[parquet\]'\)"):
        len(Ego3DBench(str(tmp_path / "test.arrow")))
    rows = fx.ego3d(tmp_path).read_text()
    (tmp_path / "test.txt").write_text(rows)  # a suffix read_table does not know: JSON lines, as before
    assert [s.id for s in Ego3DBench(str(tmp_path / "test.txt"), image_root=str(tmp_path / "images"))] == ["7", "8"]
