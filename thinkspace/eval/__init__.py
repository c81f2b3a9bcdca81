"""Official-equivalent scoring of MindCube, VSI-Bench and SQA3D predictions.

One file per benchmark (:mod:`.mindcube`, :mod:`.vsibench`, :mod:`.sqa3d`), what a scorer
returns in :mod:`.benchmark_score`, the ``thinkspace score`` command in :mod:`.command`, and
the callback that writes and scores predictions during ``thinkspace test``/``predict`` in
:mod:`.predictions`. Answer extraction is :mod:`thinkspace.answers`, file reading
:mod:`thinkspace.records` (both shared with the dataset adapters).
"""

from thinkspace.eval.mindcube import score_mindcube
from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.eval.sqa3d import score_sqa3d
from thinkspace.eval.vsibench import score_vsibench

#: benchmark name -> scorer ``(records, response_field) -> BenchmarkScore``.
SCORERS = {"mindcube": score_mindcube, "vsibench": score_vsibench, "sqa3d": score_sqa3d}

__all__ = ["SCORERS", "BenchmarkScore", "score_mindcube", "score_sqa3d", "score_vsibench"]
