"""JSON-lines and JSON files saved with a UTF-8 byte-order mark (as Windows editors do) are read."""

from __future__ import annotations

import json

from thinkspace.cli import main
from thinkspace.records import read_json_list, read_jsonl, read_table

BOM = b"\xef\xbb\xbf"


def test_jsonl_with_a_bom_reads_every_record(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(BOM + b'{"id": "a", "answer": "B"}\n{"id": "b", "answer": "\xc3\xa9"}\n')
    assert read_jsonl(path) == [(f"{path}:1", {"id": "a", "answer": "B"}), (f"{path}:2", {"id": "b", "answer": "é"})]


def test_json_list_with_a_bom(tmp_path):
    path = tmp_path / "q.json"
    path.write_bytes(BOM + json.dumps({"items": [{"id": "a"}]}).encode())
    assert read_json_list(path, "items") == [(f"{path}:#0", {"id": "a"})]
    path.write_bytes(BOM + b'[{"id": "x"}]')
    assert read_table(path) == [(f"{path}:#0", {"id": "x"})]


def test_score_reads_a_predictions_file_with_a_bom(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    rows = [{"id": "among_1", "gt_answer": "A", "answer": "A"}, {"id": "among_2", "gt_answer": "B", "answer": "C"}]
    path.write_bytes(BOM + "".join(json.dumps(r) + "\n" for r in rows).encode())
    assert main(["score", "mindcube", str(path), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 2 and scores["overall"] == 50.0
