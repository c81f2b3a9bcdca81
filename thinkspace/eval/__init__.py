"""Official-equivalent scoring of MindCube, VSI-Bench, SQA3D, Ego3D-Bench, ScanQA, ViewSpatial-Bench and SPBench predictions.

One file per benchmark (:mod:`.mindcube`, :mod:`.vsibench`, :mod:`.sqa3d`, :mod:`.ego3d`, :mod:`.scanqa`,
:mod:`.viewspatial`, :mod:`.spbench`), what a scorer
returns in :mod:`.benchmark_score`, the ``thinkspace score`` command in :mod:`.command`, and
the callback that writes and scores predictions during ``thinkspace test``/``predict`` in
:mod:`.predictions`. Answer extraction is :mod:`thinkspace.answers`, file reading
:mod:`thinkspace.records` (both shared with the dataset adapters).
"""

from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.eval.ego3d import read_ego3d_results, score_ego3d
from thinkspace.eval.mindcube import score_mindcube
from thinkspace.eval.scanqa import score_scanqa
from thinkspace.eval.spbench import score_spbench
from thinkspace.eval.sqa3d import score_sqa3d
from thinkspace.eval.viewspatial import read_viewspatial_predictions, score_viewspatial
from thinkspace.eval.vsibench import score_vsibench

#: benchmark name -> scorer ``(records, response_field) -> BenchmarkScore``.
SCORERS = {"mindcube": score_mindcube, "vsibench": score_vsibench, "sqa3d": score_sqa3d, "ego3d": score_ego3d,
           "scanqa": score_scanqa, "viewspatial": score_viewspatial, "spbench": score_spbench}
#: benchmarks whose predictions are not one table file: ``path -> records`` (default ``read_table``).
READERS = {"ego3d": read_ego3d_results, "viewspatial": read_viewspatial_predictions}

__all__ = ["READERS", "SCORERS", "BenchmarkScore", "score_ego3d", "score_mindcube", "score_scanqa", "score_spbench", "score_sqa3d",
           "score_viewspatial", "score_vsibench"]
