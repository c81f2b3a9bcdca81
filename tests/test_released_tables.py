"""The benchmarks' released tables, written as the Hugging Face ``datasets`` library writes them, read
through the adapters and ``thinkspace score``: each must read as its jsonl export does.

Layouts (never fetched; built here with pyarrow, tiny):

* Ego3D-Bench (``vbdai/Ego3D-Bench``): ``test/data-00000-of-00001.arrow`` as ``save_to_disk`` writes a
  split (an Arrow IPC *stream* with the features in the schema's ``huggingface`` metadata) and the Hub's
  parquet conversion of it. ``images`` is one struct column whose fields are the view names of all
  three sources, so a row holds ``None`` for the views its source lacks (upstream reads
  ``sample["images"][view]`` and joins it to the image root: EGO3D-BENCH ``models/qwen2.5_vl.py``
  at 1c6342d, lines 40, 65, 84-92). Also a copy whose views are the ``Image`` feature,
  ``struct<bytes: binary, path: string>``, with the images embedded.
* SPBench (``hongxingli/SPBench``): ``SPBench-SI.parquet`` with the columns upstream's evaluator reads
  through pandas (SpatialLadder ``eval_spld/data_utils/spbench.py`` at 87320be, lines 27, 77-83):
  ``images`` a list of frame file names, ``options`` a list or null.
* VSI-Bench (``nyu-visionx/VSI-Bench``): its parquet, ``options`` null for numeric questions.
"""

import io
import json

import benchmark_fixtures as fx
import numpy as np
import pytest
from cli_helpers import REPO, command
from PIL import Image

from thinkspace.data.datasets.ego3d import VIEW_ORDER, Ego3DBench
from thinkspace.data.datasets.spbench import SPBench
from thinkspace.data.datasets.vsibench import VSIBench

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

#: the Hugging Face ``Image`` feature's storage type
HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
#: every view name of every source: the fields of the ``images`` struct
ALL_VIEWS = sorted({view for views in VIEW_ORDER.values() for view in views})


def hf_schema(fields: list, features: dict) -> "pa.Schema":
    """A schema carrying the ``datasets`` features in its metadata, as ``datasets`` writes every table."""
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": features}})})


def ego3d_schema(image_type) -> "pa.Schema":
    view = {"_type": "Image"} if image_type == HF_IMAGE else {"dtype": "string", "_type": "Value"}
    text = {"dtype": "string", "_type": "Value"}
    return hf_schema(
        [("idx", pa.int64()), ("question", pa.string()), ("options", pa.list_(pa.string())),
         ("answer", pa.string()), ("category", pa.string()), ("source", pa.string()),
         ("images", pa.struct([(v, image_type) for v in ALL_VIEWS]))],
        {"idx": {"dtype": "int64", "_type": "Value"}, "question": text,
         "options": {"feature": text, "_type": "Sequence"}, "answer": text, "category": text, "source": text,
         "images": {v: view for v in ALL_VIEWS}})


def write_split(path, rows, schema, parquet: bool):
    """``rows`` as ``datasets`` writes a split: an Arrow IPC stream (``save_to_disk``) or parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    if parquet:
        pq.write_table(table, path)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return path


def ego3d_rows(tmp_path):
    export = fx.ego3d(tmp_path)
    return export, [json.loads(line) for line in export.read_text().splitlines()]


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def colours(sample):
    return [tuple(int(c) for c in np.asarray(f)[0, 0]) for f in sample.frames]


def same_samples(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.id, x.task, x.prompt, x.answer, x.answer_type) == (y.id, y.task, y.prompt, y.answer, y.answer_type)
        assert colours(x) == colours(y)


@pytest.mark.parametrize("parquet", [False, True], ids=["save_to_disk-arrow", "hub-parquet"])
def test_ego3d_released_split_reads_as_its_jsonl_export(tmp_path, parquet):
    export, rows = ego3d_rows(tmp_path)
    name = "test-00000-of-00001.parquet" if parquet else "data-00000-of-00001.arrow"
    split = write_split(tmp_path / "test" / name, rows, ego3d_schema(pa.string()), parquet)
    stored = (pq.read_table(split) if parquet else pa.ipc.open_stream(pa.OSFile(str(split))).read_all())
    assert stored.column("images").type.num_fields == 8 and stored.column("images")[1]["Back"].as_py() is None
    images = str(tmp_path / "images")
    native, exported = Ego3DBench(str(split), image_root=images), Ego3DBench(str(export), image_root=images)
    same_samples(native, exported)
    assert [len(s.frames) for s in native] == [6, 5]  # the Waymo row's eight-view struct: its own five
    assert native.index[1]["where"] == f"{split}:#1"
    rows[1]["images"]["Side_Left"] = None  # a view of the row's own source missing: named
    write_split(split, rows, ego3d_schema(pa.string()), parquet)
    with pytest.raises(ValueError, match=rf"{name}:#1: sample '8' \(waymo\) has no image for view\(s\) Side_Left"):
        len(Ego3DBench(str(split), image_root=images))


def test_ego3d_images_embedded_as_the_image_feature(tmp_path):
    export, rows = ego3d_rows(tmp_path)
    images = tmp_path / "images"
    for row in rows:  # bytes of the same colours under the same paths; the files gone, but one
        row["images"] = {v: {"bytes": png(Image.open(images / p).getpixel((0, 0))), "path": p}
                         for v, p in row["images"].items()}
    kept = rows[1]["images"]["Front"]
    kept["bytes"] = None  # a path-only Image value: read under image_root
    split = write_split(tmp_path / "test" / "data-00000-of-00001.parquet", rows, ego3d_schema(HF_IMAGE), True)
    assert pq.read_table(split).schema.field("images").type.field("Front").type == HF_IMAGE
    expected = list(Ego3DBench(str(export), image_root=str(images)))  # read before its files go
    for path in images.rglob("*.png"):
        if path.relative_to(images).as_posix() != kept["path"]:
            path.unlink()
    native = Ego3DBench(str(split), image_root=str(images))
    assert native._media(native.index[0]) == [] and native._media(native.index[1]) == [images / kept["path"]]
    same_samples(native, expected)
    rows[0]["images"]["Back"]["bytes"] = b"not an image"
    write_split(split, rows, ego3d_schema(HF_IMAGE), True)
    with pytest.raises(ValueError, match=r"data-00000-of-00001.parquet:#0: image of view Back of sample '7': "
                                         r"12 embedded bytes cannot be decoded as an image"):
        Ego3DBench(str(split), image_root=str(images))[0]


def test_ego3d_a_view_that_is_neither_path_nor_image_is_named(tmp_path):
    _, rows = ego3d_rows(tmp_path)
    rows[0]["images"]["Front"] = ["a.jpg"]
    path = fx.write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TypeError, match=r"bad.jsonl:1: image of view 'Front' of sample '7' is list \['a.jpg'\]; "
                                        r"expected a path string or a Hugging Face Image value"):
        len(Ego3DBench(str(path), image_root=str(tmp_path / "images")))


SPBENCH_SCHEMA = pa.schema([("id", pa.int64()), ("dataset", pa.string()), ("scene_name", pa.string()),
                            ("question_type", pa.string()), ("question", pa.string()),
                            ("ground_truth", pa.string()), ("options", pa.list_(pa.string())),
                            ("images", pa.list_(pa.string()))])


def test_spbench_released_parquet_reads_as_its_jsonl_export(tmp_path):
    rows = [json.loads(line) for line in
            (REPO / "tests" / "fixtures" / "spbench" / "SPBench-MV.sample.jsonl").read_text().splitlines()][:6]
    root = tmp_path / "SPBench-MV"
    for k, row in enumerate(rows):
        for v, frame in enumerate(row["images"]):
            fx.image(root / "images" / row["scene_name"] / frame, (9 * k, 30 * v, 3))
    export = fx.write_jsonl(root / "SPBench-MV.jsonl", rows)
    released = write_split(root / "SPBench-MV.parquet", rows, SPBENCH_SCHEMA, True)
    assert pq.read_table(released).column("options").null_count == sum(r["options"] is None for r in rows) > 0
    native, exported = SPBench(str(released)), SPBench(str(export))
    same_samples(native, exported)
    assert [len(s.frames) for s in native] == [len(r["images"]) for r in rows]
    assert native[0].meta["images"] == exported[0].meta["images"]
    assert native.prediction_record(0, "x") == exported.prediction_record(0, "x")


def test_vsibench_parquet_reads_as_its_jsonl_export(tmp_path):
    export = fx.vsibench(tmp_path)
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    schema = pa.schema([("id", pa.int64()), ("dataset", pa.string()), ("scene_name", pa.string()),
                        ("question_type", pa.string()), ("question", pa.string()),
                        ("options", pa.list_(pa.string())), ("ground_truth", pa.string())])
    released = write_split(tmp_path / "test-00000-of-00001.parquet", rows, schema, True)
    native, exported = (VSIBench(str(p), video_root=str(tmp_path), num_frames=2) for p in (released, export))
    assert len(native) == len(exported) == 2
    for a, b in zip(native, exported):
        assert (a.id, a.prompt, a.answer) == (b.id, b.prompt, b.answer)


def test_score_reads_parquet_predictions_as_jsonl(tmp_path, capsys):
    results = REPO / "tests" / "fixtures" / "spbench" / "SPBench-SI_results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    parquet = tmp_path / "SPBench-SI_results.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    scores = []
    for path in (results, parquet):
        assert command("score")(["spbench", str(path), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0] == scores[1] and scores[0]["n"] == len(rows)


def test_a_parquet_file_that_is_not_parquet_is_named(tmp_path):
    bad = tmp_path / "SPBench-SI.parquet"
    bad.write_text('{"id": 1}\n')
    with pytest.raises(ValueError, match=r"SPBench-SI.parquet: not a parquet table .*expected a parquet file"):
        len(SPBench(str(bad)))
