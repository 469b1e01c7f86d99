"""The catalog of the world: news items with categories, titles, publish times and latents.

Items are generated in publish order, so that item index ``k`` (id ``"i{k}"``) was
published no later than item ``k + 1`` and the items on the site at any time form a
contiguous index range (see :meth:`ItemTable.available_range`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recops.data.schema import CATEGORIES, ITEM_ID, PUBLISH_TIME, TITLE
from recops.data.world.config import SECONDS_PER_DAY, WorldConfig

NEWS_CATEGORIES: tuple[str, ...] = (
    "politics",
    "sports",
    "tech",
    "business",
    "science",
    "health",
    "entertainment",
    "world",
    "travel",
    "food",
    "autos",
    "finance",
    "weather",
    "lifestyle",
    "music",
    "movies",
    "tv",
    "education",
    "environment",
    "gaming",
)

# An item with a second category draws this share of its category affinity and of
# its title's category words from the second one.
SECONDARY_WEIGHT = 0.3

_CONSONANTS = "bdfghklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES: tuple[str, ...] = tuple(c + v for c in _CONSONANTS for v in _VOWELS)
_SYLLABLES_PER_WORD = 3


def category_names(n_categories: int) -> tuple[str, ...]:
    """Names of ``n_categories`` categories: news sections first, then ``topic<k>``."""
    named = NEWS_CATEGORIES[:n_categories]
    return named + tuple(f"topic{k}" for k in range(len(named), n_categories))


def make_vocabulary(n_words: int, rng: np.random.Generator) -> np.ndarray:
    """``n_words`` distinct pronounceable pseudo-words (three consonant-vowel syllables).

    Parameters
    ----------
    n_words:
        How many words; at most ``75 ** 3``.
    rng:
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Object array of distinct strings.
    """
    base = len(_SYLLABLES)
    capacity = base**_SYLLABLES_PER_WORD
    if not 1 <= n_words <= capacity:
        raise ValueError(f"`n_words` must be in 1..{capacity} (got {n_words})")
    codes = rng.choice(capacity, size=n_words, replace=False)
    digits = [(codes // base**k) % base for k in range(_SYLLABLES_PER_WORD)]
    syllables = np.asarray(_SYLLABLES, dtype=object)
    words = syllables[digits[0]]
    for d in digits[1:]:
        words = words + syllables[d]
    return words


@dataclass(frozen=True)
class ItemTable:
    """The true attributes of every item, in publish order (index = item index).

    Parameters
    ----------
    category_names:
        Name of each category.
    vocabulary:
        All title words: ``words_per_category`` per category, category by category,
        then the shared words.
    publish_time:
        ``(n_items,)`` int64 unix seconds, non-decreasing.
    primary:
        ``(n_items,)`` int64 main category.
    secondary:
        ``(n_items,)`` int64 second category, ``-1`` when the item has none.
    quality:
        ``(n_items,)`` latent quality, added to the attractiveness logit.
    latent:
        ``(n_items, latent_dim)`` float32 latent vector.
    title_words:
        ``(n_items, title_max_words)`` int32 indices into ``vocabulary``, ``-1`` after
        the end of the title.
    """

    category_names: tuple[str, ...]
    vocabulary: np.ndarray
    publish_time: np.ndarray
    primary: np.ndarray
    secondary: np.ndarray
    quality: np.ndarray
    latent: np.ndarray
    title_words: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.publish_time)

    def available_range(
        self, t: np.ndarray | int, max_age_seconds: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index ranges ``[lo, hi)`` of items published at or before ``t`` and not older.

        An item is available at ``t`` when ``0 <= t - publish_time <= max_age_seconds``.
        """
        t_arr = np.asarray(t, dtype=np.int64)
        hi = np.searchsorted(self.publish_time, t_arr, side="right")
        oldest = np.ceil(t_arr - max_age_seconds).astype(np.int64)
        lo = np.searchsorted(self.publish_time, oldest, side="left")
        return lo, hi

    def titles(self) -> np.ndarray:
        """The title of every item (object array), words separated by single spaces."""
        # Arrow joins the words in C: three times faster than str.join on 1M titles.
        used = self.title_words >= 0
        offsets = np.concatenate([[0], np.cumsum(used.sum(axis=1))]).astype(np.int64)
        words = pa.array(self.vocabulary, type=pa.string()).take(self.title_words[used])
        titles = pc.binary_join(pa.LargeListArray.from_arrays(offsets, words), " ")
        return titles.to_numpy(zero_copy_only=False).astype(object)

    def category_lists(self) -> list[list[str]]:
        """Per item, its category names: the main one first, then the second if any."""
        names = self.category_names
        return [
            [names[p]] if s < 0 else [names[p], names[s]]
            for p, s in zip(self.primary.tolist(), self.secondary.tolist(), strict=True)
        ]

    def to_frame(self) -> pd.DataFrame:
        """The catalog in the recops item schema (latent truth is not included)."""
        n = self.n_items
        return pd.DataFrame(
            {
                ITEM_ID: pd.Series(item_id_array(n), dtype=object),
                TITLE: pd.Series(self.titles(), dtype=object),
                CATEGORIES: pd.Series(self.category_lists(), dtype=object),
                PUBLISH_TIME: pd.Series(self.publish_time, dtype="Int64"),
            }
        )


def item_id_array(n: int) -> np.ndarray:
    """Object array of the ids ``"i0" .. "i{n-1}"``."""
    return np.asarray([f"i{k}" for k in range(n)], dtype=object)


def generate_items(config: WorldConfig, rng: np.random.Generator) -> ItemTable:
    """Draw the catalog of ``config`` (vectorised; a million items take seconds).

    Parameters
    ----------
    config:
        The world configuration.
    rng:
        Source of randomness, used for the catalog only.

    Returns
    -------
    ItemTable
        Items sorted by publish time.
    """
    n, c = config.n_items, config.n_categories
    vocabulary = make_vocabulary(c * config.words_per_category + config.shared_words, rng)
    sizes = rng.dirichlet(np.full(c, config.category_concentration))
    primary = rng.choice(c, size=n, p=sizes)
    # A second category distinct from the first: shift by 1..c-1 modulo c.
    has_secondary = rng.random(n) < config.secondary_category_probability
    secondary = np.where(has_secondary, (primary + rng.integers(1, c, size=n)) % c, -1)

    first = config.start_time - config.backlog_days * SECONDS_PER_DAY
    publish = np.sort(rng.uniform(first, config.end_time, size=n)).astype(np.int64)

    quality = rng.normal(0.0, config.quality_std, size=n)
    centroids = rng.standard_normal(size=(c, config.latent_dim), dtype=np.float32)
    w = np.float32(config.latent_category_weight)
    # Unit variance per component whatever the share of the category direction.
    noise = rng.standard_normal(size=(n, config.latent_dim), dtype=np.float32)
    latent = w * centroids[primary] + np.sqrt(np.float32(1.0) - w**2) * noise

    return ItemTable(
        category_names=category_names(c),
        vocabulary=vocabulary,
        publish_time=publish,
        primary=primary.astype(np.int64),
        secondary=secondary.astype(np.int64),
        quality=quality,
        latent=latent,
        title_words=_draw_titles(config, primary, secondary, rng),
    )


def _draw_titles(
    config: WorldConfig, primary: np.ndarray, secondary: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n, length = len(primary), config.title_max_words
    per_cat, n_cat = config.words_per_category, config.n_categories
    use_secondary = (secondary[:, None] >= 0) & (rng.random((n, length)) < SECONDARY_WEIGHT)
    category = np.where(use_secondary, secondary[:, None], primary[:, None])
    category_word = category * per_cat + rng.integers(0, per_cat, size=(n, length))
    shared_word = n_cat * per_cat + rng.integers(0, config.shared_words, size=(n, length))
    from_category = rng.random((n, length)) < config.title_category_word_fraction
    words = np.where(from_category, category_word, shared_word).astype(np.int32)
    lengths = rng.integers(config.title_min_words, config.title_max_words + 1, size=n)
    words[np.arange(length)[None, :] >= lengths[:, None]] = -1
    return words
