"""The artifact store: content addressing, codecs, fsspec URLs, local folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from recops.data.schema import Dataset
from recops.pipelines import ArtifactStore, Metrics
from recops.pipelines.codecs import codec_for
from recops.pipelines.store import ArtifactNotFoundError


class Score(Metrics):
    ndcg: float
    users: int


@dataclass(frozen=True)
class Bundle:
    frame: pd.DataFrame
    cutoff: int
    label: str | None
    extra: pd.DataFrame | None = None


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series(["u1", "u2"], dtype=object),
            "categories": [["a", "b"], []],
            "value": [1.0, 2.5],
        }
    )


def test_equal_content_has_one_digest_and_round_trips(store: ArtifactStore) -> None:
    first = store.put(_frame(), pd.DataFrame)
    again = store.put(_frame(), pd.DataFrame)
    other = store.put(_frame().assign(value=[1.0, 2.0]), pd.DataFrame)
    assert first.digest == again.digest != other.digest
    assert first.kind == "dataset" and first.codec == "dataframe"
    assert first.summary["rows"] == 2
    back = store.get(first.digest, pd.DataFrame)
    pdt.assert_frame_equal(back, _frame())  # object dtype and list cells come back
    assert store.put(back, pd.DataFrame).digest == first.digest


def test_typed_reports_structs_and_json(store: ArtifactStore) -> None:
    score = store.put(Score(ndcg=0.25, users=10), Score)
    assert score.kind == "metrics"
    assert store.get(score.digest, Score) == Score(ndcg=0.25, users=10)
    bundle = Bundle(_frame(), 1_700_000_000, None)
    record = store.put(bundle, Bundle)
    assert record.kind == "dataset"
    back = store.get(record.digest, Bundle)
    assert back.cutoff == bundle.cutoff and back.label is None
    pdt.assert_frame_equal(back.frame, bundle.frame)
    assert back.extra is None  # an unset optional frame
    full = store.get(store.put(Bundle(_frame(), 1, "x", _frame()), Bundle).digest, Bundle)
    assert full.extra is not None
    pdt.assert_frame_equal(full.extra, _frame())
    plain = store.put({"b": [1, 2], "a": 0.5}, dict[str, object])
    assert store.get(plain.digest, dict[str, object]) == {"a": 0.5, "b": [1, 2]}


def test_reading_as_another_type_or_a_missing_digest_fails(store: ArtifactStore) -> None:
    record = store.put(Score(ndcg=0.1, users=1), Score)
    with pytest.raises(TypeError, match="not a pandas"):
        store.get(record.digest, pd.DataFrame)
    with pytest.raises(ArtifactNotFoundError):
        store.get("0" * 64, Score)
    with pytest.raises(ValueError, match="NaN"):
        store.put({"x": float("nan")}, dict[str, float])
    with pytest.raises(TypeError, match="no codec"):
        codec_for(complex)


def test_a_local_folder_and_memory_give_the_same_digest(tmp_path: Path) -> None:
    data = Dataset(_frame().assign(item_id="i1", event="click", timestamp=1), name="tiny")
    local = ArtifactStore(tmp_path / "artifacts")
    memory = ArtifactStore("memory://recops-test-same-digest")
    try:
        a, b = local.put(data, Dataset), memory.put(data, Dataset)
        assert a.digest == b.digest
        assert (tmp_path / "artifacts" / a.digest / "_artifact.json").is_file()
        assert not [p for p in (tmp_path / "artifacts").iterdir() if p.name.startswith(".tmp")]
        back = local.get(a.digest, Dataset)
        assert back.name == "tiny"
        pdt.assert_frame_equal(back.interactions, data.interactions)
    finally:
        memory.fs.rm(memory.root, recursive=True)
        memory.close()


def test_a_registered_codec_stores_another_type(store: ArtifactStore) -> None:
    import json
    from typing import Any

    from recops.pipelines import Codec, register_codec
    from recops.pipelines.codecs import unregister_codec

    class ComplexCodec(Codec):
        name = "complex"

        def matches(self, tp: Any) -> bool:
            return tp is complex

        def kind(self, tp: Any) -> str:
            return "metrics"

        def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
            (folder / "z.json").write_text(json.dumps([value.real, value.imag]))
            return {}

        def read(self, tp: Any, folder: Path) -> Any:
            return complex(*json.loads((folder / "z.json").read_text()))

    codec = register_codec(ComplexCodec())
    try:
        record = store.put(1 + 2j, complex)
        assert record.codec == "complex" and store.get(record.digest, complex) == 1 + 2j
    finally:
        unregister_codec(codec)
    with pytest.raises(TypeError, match="no codec"):
        codec_for(complex)
