"""``thinkspace score BENCHMARK PREDICTIONS.jsonl [--response-field F] [--localization GOLD] [--question-types RULE]
[--gold QUESTIONS] [--split-into DIR] [--wordnet DIR] [--no-caption-metrics] [--prompt-type P] [--json]``.

Reads a predictions file in the benchmark's own format, scores it as the official
evaluator does, and prints a table, or with ``--json`` one JSON object
``{"benchmark", "n", "overall", "by_setting" | "by_type" | "by_category", ...}`` (percentages;
SQA3D's EM-R under ``columns.em_refined``; Ego3D-Bench's RMSEs, in metres, under ``extra``).
A question id that appears twice is refused (file and both lines named); the count scored is
printed against the count expected (the benchmark's known size, or ``--gold``'s questions), with
the missing ones named (:mod:`thinkspace.eval.coverage`).
Bad input (file and line named) is reported by :mod:`thinkspace.errors`: one line, exit code 2.
"""

from __future__ import annotations

import sys

from thinkspace.errors import ToolParser
from thinkspace.eval import READERS, SCORERS
from thinkspace.eval.coverage import coverage_note, gold_ids, question_ids
from thinkspace.eval.sqa3d import QUESTION_TYPE_RULES
from thinkspace.records import read_table


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="thinkspace score",
        description="Score a predictions file as the benchmark's official evaluator does.",
    )
    parser.add_argument("benchmark", choices=sorted(SCORERS), help="which benchmark's format and scoring")
    parser.add_argument("predictions", help="predictions file (.jsonl; .json list or .parquet also read); "
                        "ego3d: a <category>[-results].jsonl file or a folder of them; viewspatial: also the official "
                        "result_<model>.csv; spbench: the official <task>_results.jsonl")
    parser.add_argument(
        "--response-field",
        default=None,
        help="field holding the model's response (default: mindcube 'cogmap_gen_answer' else 'answer', "
        "vsibench 'prediction', sqa3d 'answer', ego3d 'Processed_Pred', scanqa 'answer_top10', viewspatial "
        "'prediction', spbench 'predicted_answer')",
    )
    parser.add_argument(
        "--localization",
        default=None,
        help="sqa3d only: the official v1_balanced_localization_{split}_scannetv2.json, gold of the "
        "per-situation localization score (default: the predictions' own position/rotation)",
    )
    parser.add_argument(
        "--question-types",
        default=None,
        choices=QUESTION_TYPE_RULES,
        help="sqa3d only: how a question's type is read: 'prefix' (default; MSR3D / LEO get_sqa_question_type, "
        "\"What's\" is what) or 'first_word' (SQA3D's ClipBERT conversion, \"What's\" is others)",
    )
    parser.add_argument(
        "--prompt-type",
        default=None,
        choices=("thinking", "default"),
        help="spbench only: the SpatialLadder prompt the responses answered; 'thinking' (default, upstream's) reads "
        "<answer> tags, 'default' reads the response as it is",
    )
    parser.add_argument(
        "--gold",
        default=None,
        metavar="QUESTIONS",
        help="the benchmark's question file (sqa3d: v1_balanced_questions_{split}_scannetv2.json; scanqa: "
        "ScanQA_v1.0_val.json, also the reference answers; viewspatial: eval/ViewSpatial-Bench.json, ids are "
        "positions; others: the test jsonl/json/parquet with the ids): "
        "the count expected, and the ids missing from the predictions",
    )
    parser.add_argument(
        "--split-into",
        default=None,
        metavar="DIR",
        help="ego3d only: also write one <category>.jsonl per category into DIR (upstream's result files, "
        "which its utils/eval.py reads)",
    )
    parser.add_argument(
        "--wordnet",
        default=None,
        metavar="DIR",
        help="scanqa only: WordNet for the F-value, a database directory (Debian wordnet-base: /usr/share/wordnet) "
        "or an nltk_data directory (default: nltk's data path, then /usr/share/wordnet; never downloaded)",
    )
    parser.add_argument(
        "--no-caption-metrics",
        dest="caption_metrics",
        action="store_const",
        const=False,
        default=None,
        help="scanqa only: EM@1/EM@10 and the F-value alone, without BLEU/METEOR/ROUGE-L/CIDEr (no Java needed)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


#: options that belong to one benchmark's scorer: the scorer's keyword -> (the option, that benchmark)
OPTION_OF = {"localization": ("--localization", "sqa3d"), "question_types": ("--question-types", "sqa3d"),
             "prompt_type": ("--prompt-type", "spbench"), "wordnet": ("--wordnet", "scanqa"),
             "caption_metrics": ("--no-caption-metrics", "scanqa")}


def main(argv: list[str] | None = None) -> int:
    """Run ``thinkspace score``; bad input raises (``thinkspace.cli`` reports it: one line, exit code 2)."""
    args = build_parser().parse_args(argv)
    records = READERS.get(args.benchmark, read_table)(args.predictions)
    if not records:
        raise ValueError(f"{args.predictions}: no records")
    ids = question_ids(args.benchmark, records)  # a duplicate would be scored twice: refused
    gold = gold_ids(args.benchmark, args.gold) if args.gold is not None else None
    options = {}
    for name, (flag, benchmark) in OPTION_OF.items():
        value = getattr(args, name)
        if value is None:
            continue
        if args.benchmark != benchmark:
            raise ValueError(f"{flag} is for {benchmark}, not {args.benchmark}")
        options[name] = value
    if args.benchmark == "scanqa" and args.gold is not None:
        options["gold"] = args.gold
    if args.split_into is not None:
        if args.benchmark != "ego3d":
            raise ValueError(f"--split-into is for ego3d, not {args.benchmark}")
        from thinkspace.eval.ego3d import write_category_files

        write_category_files(records, args.split_into)
    score = SCORERS[args.benchmark](records, args.response_field, **options)
    score.notes.insert(0, coverage_note(args.benchmark, ids, score.n, gold))
    if args.json:
        print(score.to_json())
        for note in score.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        score.print_table()
    return 0


if __name__ == "__main__":
    from thinkspace.cli import main as thinkspace

    sys.exit(thinkspace(["score", *sys.argv[1:]]))
