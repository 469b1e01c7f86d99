"""The one tokenizer of titles and queries: words of any script, no vocabulary."""

from __future__ import annotations

import re
import unicodedata

#: Letters and digits of any script (``\w`` without the underscore).
_WORD = re.compile(r"[^\W_]+")
#: Scripts written without spaces between words (Han, kana, Thai): cut into bigrams.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

#: The name the artifact records, so a saved model reads titles as it was trained to.
TOKENIZER = "nfkc casefold words; han/kana/thai character bigrams"


def _pieces(word: str) -> list[str]:
    out: list[str] = []
    at = 0
    for run in _UNSPACED.finditer(word):
        if run.start() > at:
            out.append(word[at : run.start()])
        chars = run.group()
        out += [chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)]
        at = run.end()
    if at < len(word):
        out.append(word[at:])
    return out


def tokenize(text: str) -> list[str]:
    """Words of ``text`` in any script (no vocabulary, no download).

    NFKC-normalised and case-folded (``"Ｔｏｋｙｏ"`` → ``tokyo``, ``"Straße"`` →
    ``strasse``), split into runs of letters and digits. Runs of Han, kana or Thai,
    scripts without spaces between words, become overlapping character bigrams
    (``"東京タワー"`` → ``東京, 京タ, タワ, ワー``), the usual dictionary-free
    segmentation for search (e.g. Lucene's CJK bigram analyser).
    """
    normal = unicodedata.normalize("NFKC", text).casefold()
    return [piece for word in _WORD.findall(normal) for piece in _pieces(word)]
