"""BLEU-1..4, METEOR, ROUGE-L and CIDEr of one candidate text per question, through pycocoevalcap.

As ScanQA's ``scripts/score.py`` (``eval_pycoco``): references and candidates are first tokenized
by pycocoevalcap's Stanford PTB tokenizer (lower-cased, punctuation tokens dropped), then scored
by ``Bleu(4)``, ``Meteor()``, ``Rouge()`` and ``Cider()``; the corpus-level numbers are reported in
percent. The tokenizer and METEOR run Java (Debian: ``default-jre-headless``); pycocoevalcap
writes its tokenizer's temporary file next to its jar, so its install directory must be writable.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from typing import Any

#: metric name -> pycocoevalcap's key, in the order ScanQA's score.py prints them.
METRICS = {"BLEU-1": "Bleu_1", "BLEU-2": "Bleu_2", "BLEU-3": "Bleu_3", "BLEU-4": "Bleu_4",
           "METEOR": "METEOR", "ROUGE-L": "ROUGE_L", "CIDEr": "CIDEr"}
MISSING = ("pycocoevalcap and nltk: the 'scanqa' extra (pip install -e \".[scanqa]\" -c constraints.txt), "
           "plus a Java runtime (Debian: apt-get install default-jre-headless) and, for the F-value, "
           "WordNet (Debian: wordnet-base)")


def require_scanqa_extra(java: bool = True) -> dict[str, Any]:
    """pycocoevalcap's tokenizer and scorers, imported on first use; with ``java``, a Java runtime too.

    Raises:
        ImportError: pycocoevalcap or nltk is not installed (names the extra and the Debian packages).
        FileNotFoundError: no ``java`` on the PATH (names the Debian package).
    """
    try:
        import nltk  # noqa: F401  (the F-value's lemmatizer; checked here so both fail alike)
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError as error:
        raise ImportError(f"ScanQA scoring needs {MISSING}; missing: {error.name}") from error
    if java and shutil.which("java") is None:
        raise FileNotFoundError("ScanQA's BLEU/METEOR/ROUGE-L/CIDEr run pycocoevalcap's Java tokenizer and METEOR: "
                           "no 'java' on the PATH; install a Java runtime (Debian: apt-get install "
                           "default-jre-headless)")
    return {"tokenizer": PTBTokenizer, "Bleu": Bleu, "Meteor": Meteor, "Rouge": Rouge, "Cider": Cider}


def caption_scores(references: dict[str, list[str]], candidates: dict[str, str]) -> dict[str, float]:
    """Corpus BLEU-1..4, METEOR, ROUGE-L, CIDEr (percent) of ``candidates`` against ``references``.

    Args:
        references: question id -> its reference answers (at least one each).
        candidates: question id -> the one answer scored; the same ids as ``references``.
    """
    if references.keys() != candidates.keys():
        raise ValueError("caption_scores: references and candidates must hold the same question ids")
    parts = require_scanqa_extra()
    tokenizer = parts["tokenizer"]()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints its progress on stdout
        gts = tokenizer.tokenize({q: [{"caption": a} for a in answers] for q, answers in references.items()})
        res = tokenizer.tokenize({q: [{"caption": c}] for q, c in candidates.items()})
        bleu, _ = parts["Bleu"](4).compute_score(gts, res)
        meteor = parts["Meteor"]()
        try:
            meteor_score, _ = meteor.compute_score(gts, res)
        finally:
            del meteor  # its __del__ stops the Java process
        rouge, _ = parts["Rouge"]().compute_score(gts, res)
        cider, _ = parts["Cider"]().compute_score(gts, res)
    values = [*bleu, meteor_score, rouge, cider]
    return {name: 100.0 * float(v) for name, v in zip(METRICS, values)}
