"""WordNet noun lemmas for ScanQA's F-value, read from a local WordNet 3.0 database; never downloaded.

ScanQA's ``scripts/score.py`` lemmatizes each whitespace token with nltk's ``WordNetLemmatizer``
(noun reading: the shortest lemma WordNet's morphy finds, else the token unchanged) and calls
``nltk.download('omw-1.4')`` at import, which needs the network. Here the database is found on
disk, in this order: the directory the caller names (a WordNet database directory such as Debian's
``/usr/share/wordnet``, or an ``nltk_data`` directory holding ``corpora/wordnet[.zip]``), then
nltk's own data path (``NLTK_DATA``, ``~/nltk_data``, ...), then Debian's ``wordnet-base``
(``/usr/share/wordnet``). When none is found the F-value is reported unavailable, with the reason.

Debian's ``wordnet-base`` lacks two files nltk's reader opens and lemmatizing never uses:
``lexnames`` (the 45 lexicographer file names of WordNet 3.0's ``lexnames(5WN)``, served from
:data:`LEXNAMES` when absent) and ``index.sense`` (read only to map Open Multilingual WordNet
synsets onto 3.0, switched off here). nltk 3.10 reads only from directories on ``nltk.data.path``,
so the database's directory is appended to it.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Debian's ``wordnet-base`` database (WordNet 3.0).
DEBIAN_WORDNET = Path("/usr/share/wordnet")
#: WordNet 3.0's lexicographer files in number order (``lexnames(5WN)``).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def _is_database(path: Path) -> bool:
    return (path / "index.noun").is_file() and (path / "data.noun").is_file()


def find_wordnet(path: str | Path | None = None) -> tuple[Any | None, str]:
    """The WordNet database to read, and where it was found (or why none was).

    Returns:
        ``(root, description)``: ``root`` a directory or an nltk path pointer into a zip, or
        ``(None, reason)`` when no database is on disk.

    Raises:
        FileNotFoundError: ``path`` was given and holds no WordNet database.
    """
    import nltk.data

    if path is not None:
        given = Path(path)
        if _is_database(given):
            return given, str(given)
        try:
            return nltk.data.find("corpora/wordnet", paths=[str(given)]), f"{given}/corpora/wordnet"
        except LookupError:
            raise FileNotFoundError(
                f"{given}: holds no WordNet database; expected a directory with index.noun and "
                "data.noun (Debian's wordnet-base: /usr/share/wordnet) or an nltk_data directory with "
                "corpora/wordnet or corpora/wordnet.zip") from None
    try:
        found = nltk.data.find("corpora/wordnet")
        return found, f"nltk data {found}"
    except LookupError:
        pass
    if _is_database(DEBIAN_WORDNET):
        return DEBIAN_WORDNET, f"{DEBIAN_WORDNET} (Debian wordnet-base)"
    return None, (f"no WordNet database: none on nltk's data path and no {DEBIAN_WORDNET}; install "
                  "Debian's wordnet-base or name an nltk_data directory (thinkspace score scanqa --wordnet DIR); "
                  "nothing is downloaded")


class NounLemmatizer:
    """Shortest WordNet noun lemma of a token, as nltk's ``WordNetLemmatizer().lemmatize(token)``.

    Args:
        root: a WordNet database (see :func:`find_wordnet`).
    """

    def __init__(self, root: Any) -> None:
        self.reader = _reader(str(root) if isinstance(root, Path) else root)

    def __call__(self, token: str) -> str:
        lemmas = self.reader._morphy(token, "n")
        return min(lemmas, key=len) if lemmas else token


@lru_cache(maxsize=4)
def _reader(root: Any) -> Any:
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class LocalWordNet(WordNetCorpusReader):
        """nltk's reader on a database without ``lexnames`` / ``index.sense`` (see the module docstring)."""

        def open(self, file: str) -> Any:
            if file == "lexnames" and not _has(self.root, file):
                lines = [f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)]
                return io.StringIO("".join(lines))
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            return None  # the OMW-to-3.0 sense map; lemmatizing never reads it

    if isinstance(root, str):
        directory = root
    elif isinstance(root, nltk.data.ZipFilePathPointer):
        directory = str(Path(root.zipfile.filename).parent)
    else:
        directory = root.path
    if directory not in nltk.data.path:
        nltk.data.path.append(directory)  # nltk 3.10 refuses to read outside its data path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The multilingual functions")  # OMW: not used
        return LocalWordNet(root, None)


def _has(root: Any, file: str) -> bool:
    try:
        root.join(file)
        return True
    except OSError:
        return False
