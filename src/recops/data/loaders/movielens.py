"""MovieLens 100K and MovieLens Latest Small, in the recops schema.

Both give explicit ratings: every row becomes an event ``"rating"`` whose ``value``
is the rating (1-5 for 100K, 0.5-5 for Latest Small).

Reference: F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets:
History and Context. ACM TiiS 5(4): 19. GroupLens' terms forbid redistribution, so
recops downloads the archives at run time (:mod:`recops.data.download`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recops.data.loaders.delimited import read_delimited, require_columns
from recops.data.schema import (
    CATEGORIES,
    EVENT,
    ITEM_ID,
    PUBLISH_TIME,
    TIMESTAMP,
    TITLE,
    USER_ID,
    VALUE,
    Dataset,
)
from recops.data.validation import validate_interactions, validate_items, validate_users

# u.genre lists these 19 names in the order of u.item's genre flags; used when a copy
# of the dataset lacks u.genre.
ML100K_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_NO_GENRE = "(no genres listed)"


def _require(folder: Path, *files: str) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} does not look like the dataset folder: missing {', '.join(missing)}"
        )


def _ratings_frame(raw: pd.DataFrame, user: str, item: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            USER_ID: raw[user],
            ITEM_ID: raw[item],
            EVENT: "rating",
            VALUE: raw["rating"],
            TIMESTAMP: raw["timestamp"],
        }
    )


def _sorted(interactions: pd.DataFrame) -> pd.DataFrame:
    # Stable, so that events with equal times keep the order of the file.
    return interactions.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)


def _genres(folder: Path) -> tuple[str, ...]:
    path = folder / "u.genre"
    if not path.is_file():
        return ML100K_GENRES
    table = read_delimited(path, sep="|", names=["name", "id"], encoding="latin-1", quoted=False)
    return tuple(table.frame.sort_values("id", key=lambda s: s.astype(int))["name"])


def load_movielens_100k(folder: str | Path) -> Dataset:
    """Load MovieLens 100K from its unpacked folder (``u.data``, ``u.item``, ``u.user``).

    Parameters
    ----------
    folder:
        The ``ml-100k`` folder.

    Returns
    -------
    Dataset
        100,000 ``rating`` events; 1,682 items whose ``categories`` are the genres
        flagged in ``u.item`` and whose ``publish_time`` is the release date (missing
        for the one item without); 943 users with ``age`` (int64), ``gender``,
        ``occupation`` and ``zip_code``. Item ``imdb_url`` is kept as a feature.

    Raises
    ------
    FileNotFoundError
        When a file is missing.
    DataValidationError
        When a file does not parse or breaks the schema.
    """
    folder = Path(folder)
    _require(folder, "u.data", "u.item", "u.user")
    genres = _genres(folder)
    item_cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"]
    item_raw = read_delimited(
        folder / "u.item",
        sep="|",
        names=[*item_cols, *genres],
        encoding="latin-1",
        quoted=False,
    )
    flags = item_raw.frame[list(genres)].fillna("0").to_numpy() == "1"
    names = np.asarray(genres, dtype=object)
    released = pd.to_datetime(item_raw.frame["release_date"], format="%d-%b-%Y", errors="coerce")
    items, _ = validate_items(
        pd.DataFrame(
            {
                ITEM_ID: item_raw.frame["item_id"],
                TITLE: item_raw.frame["title"],
                CATEGORIES: [list(names[row]) for row in flags],
                PUBLISH_TIME: released.dt.tz_localize("UTC"),
                "imdb_url": item_raw.frame["imdb_url"].fillna(""),
            }
        ),
        source="u.item",
        lines=item_raw.lines,
    )
    user_raw = read_delimited(
        folder / "u.user",
        sep="|",
        names=["user_id", "age", "gender", "occupation", "zip_code"],
        encoding="latin-1",
        quoted=False,
    )
    users, _ = validate_users(
        user_raw.frame.assign(age=pd.to_numeric(user_raw.frame["age"]).astype(np.int64)),
        source="u.user",
        lines=user_raw.lines,
    )
    ratings = read_delimited(
        folder / "u.data",
        sep="\t",
        names=["user_id", "item_id", "rating", "timestamp"],
        quoted=False,
    )
    interactions, _ = validate_interactions(
        _ratings_frame(ratings.frame, "user_id", "item_id"),
        source="u.data",
        lines=ratings.lines,
        catalog=items,
    )
    return Dataset(_sorted(interactions), items, users, name="ml-100k")


def load_movielens_latest_small(folder: str | Path) -> Dataset:
    """Load MovieLens Latest Small from its folder (``ratings.csv``, ``movies.csv``).

    Parameters
    ----------
    folder:
        The ``ml-latest-small`` folder.

    Returns
    -------
    Dataset
        ``rating`` events (0.5-5 stars); the movies with ``categories`` from the
        ``|``-separated genres (``"(no genres listed)"`` becomes no category) and
        ``publish_time`` set to 1 January (UTC) of the year in the title, when the
        title has one: the file has no finer release date. The dataset has no user
        features, so ``users`` holds only the ids.

    Raises
    ------
    FileNotFoundError
        When a file is missing.
    DataValidationError
        When a file does not parse or breaks the schema.
    """
    folder = Path(folder)
    _require(folder, "ratings.csv", "movies.csv")
    movie_raw = read_delimited(folder / "movies.csv")
    require_columns(movie_raw, ["movieId", "title", "genres"])
    movies = movie_raw.frame
    year = movies["title"].str.strip().str.extract(r"\((\d{4})\)$", expand=False)
    genres = movies["genres"].fillna("").str.replace(_NO_GENRE, "", regex=False)
    items, _ = validate_items(
        pd.DataFrame(
            {
                ITEM_ID: movies["movieId"],
                TITLE: movies["title"],
                CATEGORIES: genres,
                PUBLISH_TIME: pd.to_datetime(year, format="%Y", errors="coerce").dt.tz_localize(
                    "UTC"
                ),
            }
        ),
        source="movies.csv",
        lines=movie_raw.lines,
    )
    ratings = read_delimited(folder / "ratings.csv")
    require_columns(ratings, ["userId", "movieId", "rating", "timestamp"])
    interactions, _ = validate_interactions(
        _ratings_frame(ratings.frame, "userId", "movieId"),
        source="ratings.csv",
        lines=ratings.lines,
        catalog=items,
    )
    users = pd.DataFrame({USER_ID: pd.unique(interactions[USER_ID])}).astype(str)
    return Dataset(_sorted(interactions), items, users, name="ml-latest-small")
