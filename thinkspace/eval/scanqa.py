"""ScanQA scoring as ATR-DBI/ScanQA ``scripts/score.py``: EM@1, EM@10, F-value, BLEU-1..4, METEOR,
ROUGE-L, CIDEr.

- **EM@1**: the first of ``answer_top10`` is one of the question's reference answers, compared as
  stored (no lower-casing, no punctuation or article removal: the official answers come from a
  fixed answer vocabulary). **EM@10**: any entry of ``answer_top10`` is (all entries are read).
- **F-value** (``Top1 (F-value)``): 100 when EM@1 hits, else the best over the references of the
  unigram F1 between whitespace tokens, each token replaced by its WordNet noun lemma
  (:mod:`.wordnet_lemmas`); precision counts the reference's tokens found among the answer's, with
  repeats, over the reference's length, recall the other way round. The official code divides by
  zero on an empty (or whitespace-only) top answer that is no reference; it scores 0 here. Without a
  WordNet database on disk the column is left out, with the reason in the notes.
- **BLEU-1..4, METEOR, ROUGE-L, CIDEr** of the top answer against all references, after the PTB
  tokenizer (:mod:`.caption_metrics`; Java). CIDEr's document frequencies come from the references
  scored, so a subset's CIDEr is not the full split's.

Per question class (``score.py``'s ``qclass1``: Place, Number, Color, Object nature, Object,
Other), EM@1 is given in ``extra`` as ``EM@1/<class>``.

Predictions: records with ``question_id`` and ``answer_top10`` (a list of strings, best first):
ScanQA's ``pred.json`` (``scripts/predict.py``: ``scene_id``, ``question_id``, ``answer_top10``,
``bbox``) or what ``thinkspace test`` writes (the question's own record plus ``answer_top10``).
References: ``answers`` of the gold file (``ScanQA_v1.0_val.json``) when one is given, else of the
records themselves. Every prediction must be a gold question; gold questions without a prediction
are left out (``thinkspace score`` names them), where the official script would stop.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.records import Located, field, read_json_list

#: question classes of ``score.py``'s ``qclass1``, in its order.
QUESTION_CLASSES = ("Place", "Number", "Color", "Object nature", "Object", "Other")
_CLASS_RULES = (("Where", "Place"), ("How many", "Number"), ("What color", "Color"),
                ("What is the color", "Color"), ("What shape", "Object nature"), ("What type", "Object nature"),
                ("What kind", "Object nature"), ("What is", "Object"))


def question_class(question: str) -> str:
    """ScanQA's question class: the first rule whose words occur anywhere in the question (case kept)."""
    return next((name for words, name in _CLASS_RULES if words in question), "Other")


def unigram_f_value(answer: list[str], reference: list[str]) -> float:
    """Unigram F1 (0..1) of two lemma lists, as ``score.py``'s ``tokens_unigram_f_value``; 0 when
    either is empty (the official code divides by zero there)."""
    if not answer or not reference:
        return 0.0
    precision = sum(token in answer for token in reference) / len(reference)
    recall = sum(token in reference for token in answer) / len(answer)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_scanqa(records: list[Located], response_field: str | None = None, gold: str | Path | None = None,
                 wordnet: str | Path | None = None, caption_metrics: bool = True) -> BenchmarkScore:
    """EM@1 (``overall``) and every ScanQA metric in ``groups`` (percent).

    Args:
        records: located prediction records.
        response_field: the field with the ranked answers (default ``answer_top10``).
        gold: ScanQA's question file with ``answers`` (``ScanQA_v1.0_val.json``); default: the
            records' own ``answers``.
        wordnet: a WordNet database or nltk_data directory for the F-value (default: found on disk).
        caption_metrics: compute BLEU/METEOR/ROUGE-L/CIDEr (Java); off, only EM and F-value.

    Raises:
        ImportError: the ``scanqa`` extra is missing; FileNotFoundError: no ``java`` (with
            ``caption_metrics``), or ``wordnet`` holds no WordNet database.
        KeyError: a record lacks its id, its answers or references (file and line named).
        ValueError: ``answer_top10`` is not a non-empty list of strings, or a prediction's
            question is not in the gold file.
    """
    from thinkspace.eval.caption_metrics import caption_scores, require_scanqa_extra
    from thinkspace.eval.wordnet_lemmas import NounLemmatizer, find_wordnet

    require_scanqa_extra(java=caption_metrics)  # fail before reading anything, naming what to install
    response_field = response_field or "answer_top10"
    references = _gold_answers(gold) if gold is not None else None
    ranked: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    questions: dict[str, str] = {}
    for where, record in records:
        qid = str(field(record, "question_id", where, "ScanQA question id"))
        top = field(record, response_field, where, "the ranked answers, best first; choose with --response-field")
        if not isinstance(top, list) or not top or not all(isinstance(a, str) for a in top):
            raise ValueError(f"{where}: {response_field} of question {qid} must be a non-empty list of answer "
                             f"strings, best first; got {top!r}")
        ranked[qid] = top
        if references is None:
            answers[qid] = _answers(field(record, "answers", where, "ScanQA reference answers; or pass --gold "
                                          "ScanQA_v1.0_val.json"), where, qid)
            questions[qid] = str(record.get("question", ""))
        elif qid not in references:
            raise ValueError(f"{where}: question {qid} is not in the gold file {gold}")
        else:
            answers[qid], questions[qid] = references[qid]
    order = [q for q in references if q in ranked] if references is not None else list(ranked)

    em1 = {q: ranked[q][0] in answers[q] for q in order}
    em10 = {q: any(a in answers[q] for a in ranked[q]) for q in order}
    n = len(order)
    groups = {"EM@1": _percent(em1.values()), "EM@10": _percent(em10.values())}
    notes = []
    root, found = find_wordnet(wordnet)
    if root is None:
        notes.append(f"F-value unavailable: {found}")
    else:
        lemma = NounLemmatizer(root)
        f_values = [1.0 if em1[q] else max(unigram_f_value([lemma(t) for t in ranked[q][0].split()],
                                                           [lemma(t) for t in ref.split()]) for ref in answers[q])
                    for q in order]
        groups["F-value"] = 100.0 * sum(f_values) / n
        notes.append(f"F-value lemmas from WordNet at {found}")
    if caption_metrics:
        groups.update(caption_scores({q: answers[q] for q in order}, {q: ranked[q][0] for q in ranked}))
    else:
        notes.append("BLEU/METEOR/ROUGE-L/CIDEr not computed (caption_metrics=False)")
    by_class: dict[str, list[bool]] = defaultdict(list)
    for q in order:
        by_class[question_class(questions[q])].append(em1[q])
    return BenchmarkScore(
        benchmark="scanqa", n=n, overall=groups["EM@1"], groups=groups, group_key="by_metric",
        extra={f"EM@1/{c}": _percent(by_class[c]) for c in QUESTION_CLASSES if by_class[c]}, notes=notes,
    )


def _percent(hits) -> float:
    hits = list(hits)
    return 100.0 * sum(hits) / len(hits) if hits else 0.0


def _answers(value, where: str, qid: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{where}: answers of question {qid} must be a non-empty list of strings, got {value!r}")
    return value


def _gold_answers(path: str | Path) -> dict[str, tuple[list[str], str]]:
    """question id -> (answers, question) of a ScanQA question file (a JSON list), in file order."""
    out = {}
    for where, record in read_json_list(path, None):
        qid = str(field(record, "question_id", where, "ScanQA question id"))
        value = field(record, "answers", where, "reference answers (the test files have none: score val)")
        out[qid] = (_answers(value, where, qid), str(record.get("question", "")))
    return out
