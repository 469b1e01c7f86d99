"""``recops train`` / ``recops recommend`` round trip on a tiny CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from typer.testing import CliRunner

from recops.cli import app
from tests.models.two_tower.conftest import SMALL, two_clusters

runner = CliRunner()


def _write_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    interactions, items = two_clusters(n_users=30)
    events = tmp_path / "train.csv"
    interactions.assign(rating=4.0).to_csv(events, index=False)
    catalog = tmp_path / "items.csv"
    items.assign(categories=items.categories.map("|".join)).drop(columns="publish_time").to_csv(
        catalog, index=False
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(SMALL))
    return events, catalog, config


def test_train_then_recommend_excludes_seen_items(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    events, catalog, config = _write_inputs(tmp_path)
    model_dir = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--interactions",
            str(events),
            "--out",
            str(model_dir),
            "--catalog",
            str(catalog),
            "--config",
            str(config),
            "--epochs",
            "2",
            "--seed",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["model"]["epochs"] == 2 and saved["model"]["seed"] == 5
    # What the window chose is said, not only stored.
    assert "chosen on the validation window: epoch " in result.output
    assert f"epoch {saved['training']['best_epoch']};" in result.output

    users = tmp_path / "users.txt"
    users.write_text("u0\nu1\nnobody\n")
    out = tmp_path / "recs.csv"
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(model_dir),
            "--users",
            str(users),
            "-k",
            "5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    assert set(recs.user_id) == {"u0", "u1", "nobody"}
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    train = pd.read_csv(events, dtype={"user_id": str, "item_id": str})
    for user in ("u0", "u1"):
        seen = set(train.loc[train.user_id == user, "item_id"])
        assert not seen & set(recs.loc[recs.user_id == user, "item_id"])

    with_seen = tmp_path / "with_seen.csv"
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(model_dir),
            "--users",
            str(users),
            "-k",
            "22",
            "--out",
            str(with_seen),
            "--include-seen",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(with_seen).groupby("user_id").size() == 22).all()


def test_bad_inputs_give_a_message_and_exit_code_2(tmp_path: Path) -> None:
    events, _, config = _write_inputs(tmp_path)
    broken = tmp_path / "broken.csv"
    broken.write_text("user_id,item_id,timestamp\nu1,i1,1600000000\nu2,i2,not-a-time\n")
    result = runner.invoke(app, ["train", "--interactions", str(broken), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "broken.csv" in result.output and "line 3" in result.output
    assert "timestamp" in result.output

    config.write_text(json.dumps({"dim": 0}))
    result = runner.invoke(
        app,
        [
            "train",
            "--interactions",
            str(events),
            "--out",
            str(tmp_path / "m"),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 2 and "dim" in result.output
    # The message names the file and the field, what was expected and what came.
    assert f"{config.name}: field `dim`" in result.output and "(got 0)" in result.output

    result = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(tmp_path / "missing"),
            "--users",
            str(events),
            "--out",
            str(tmp_path / "r.csv"),
            "-k",
            "0",
        ],
    )
    assert result.exit_code == 2 and "`k`" in result.output


def test_exported_recommendations_score_as_the_benchmark_does(tmp_path: Path) -> None:
    """`recops train` then `recops recommend` on a split's training period gives, for
    warm users on the shared candidates, exactly what `evaluate` (the benchmark) gives."""
    from recops.evaluation import evaluate, temporal_split
    from recops.evaluation.protocol import score_recommendations
    from recops.models.two_tower import TwoTower

    torch.set_num_threads(1)
    interactions, items = two_clusters(n_users=40)
    split = temporal_split(interactions, 0.7, items=items)
    train_csv = tmp_path / "train.csv"
    split.train.to_csv(train_csv, index=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "epochs": 2}))
    model_dir = tmp_path / "model"
    args = ["train", "--interactions", str(train_csv), "--out", str(model_dir)]
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    warm = [u for u, cold in zip(split.queries.user_ids, split.is_cold, strict=True) if not cold]
    users = tmp_path / "users.txt"
    users.write_text("\n".join(warm) + "\n")
    out = tmp_path / "recs.csv"
    cutoff = str(split.params["cutoff"])
    args = ["recommend", "--model", str(model_dir), "--users", str(users), "--out", str(out)]
    result = runner.invoke(app, [*args, "-k", "100", "--now", cutoff])
    assert result.exit_code == 0, result.output
    lists = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    exported = score_recommendations(lists, split)
    direct = evaluate(TwoTower.load(model_dir), split)
    assert direct.n_users("warm") == len(warm) > 0
    for metric in ("ndcg@20", "recall@20"):
        assert exported.mean(metric, "warm") == direct.mean(metric, "warm")
    assert exported.coverage(20, "warm") == direct.coverage(20, "warm")


def test_impression_rows_feed_the_exposure_correction_not_the_positives(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    interactions, _ = two_clusters(n_users=30)
    clicks = interactions.assign(event="click")
    shown = interactions.assign(event="impression", timestamp=interactions.timestamp - 1)
    both = tmp_path / "log.csv"
    extra = shown.assign(item_id="a0", timestamp=interactions.timestamp - 2)
    pd.concat([clicks, shown, extra]).to_csv(both, index=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(SMALL))
    model_dir = tmp_path / "model"
    args = ["train", "--interactions", str(both), "--out", str(model_dir), "--config",
            str(config), "--epochs", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"training on {len(clicks):,} events and {2 * len(shown):,} impressions" in (
        " ".join(result.output.split())
    )
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["training"]["n_events"] <= len(clicks)
