"""How a Python value becomes the files of an artifact, and back. Nothing is pickled.

A codec is chosen by the *annotated type* of a component's parameter or return
value (never by a class name read from storage), in this order:

* ``pandas.DataFrame`` → ``frame.parquet`` (list columns come back as lists);
* a fitted :class:`~recops.models.two_tower.TwoTower` → its own directory of
  safetensors and JSON files (``TwoTower.save``);
* a pydantic model (e.g. :class:`~recops.pipelines.artifacts.Report`) → ``value.json``;
* a dataclass (e.g. :class:`recops.data.schema.Dataset`) → ``fields.json`` for its
  plain fields and one sub-folder per field that has a codec of its own (a frame,
  a model, another dataclass);
* JSON values (``dict``, ``list``, ``str``, numbers, ``bool``) → ``value.json``.

JSON is written with sorted keys and no NaN, Parquet with pyarrow, so equal values
give equal bytes and hence equal digests. A codec may say which bytes are not
content: the two-tower's ``config.json`` records the wall-clock seconds training
took, which :meth:`Codec.canonical` leaves out of the digest (the file keeps them).
:func:`register_codec` adds codecs for other types (they are tried first).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, get_args, get_origin

import pandas as pd
from pydantic import BaseModel, TypeAdapter

_JSON_TYPES: tuple[type, ...] = (dict, list, tuple, str, int, float, bool, type(None))


def type_name(tp: Any) -> str:
    """``module:qualname`` of a type (its ``repr`` for generic aliases)."""
    if isinstance(tp, type):
        return f"{tp.__module__}:{tp.__qualname__}"
    return repr(tp)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``T | None`` (or ``Optional[T]``), else ``(tp, False)``."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"only `T | None` unions can be artifacts (got {tp!r})")
    return tp, False


def dumps(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, no NaN/inf (an error names the problem)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as err:
        raise ValueError(f"cannot store as JSON: {err} (replace NaN/inf by null)") from None
    return text.encode("utf-8")


class Codec(ABC):
    """Writes values of some types into a folder and reads them back."""

    #: Short name stored with the artifact and part of its digest.
    name: str

    @abstractmethod
    def matches(self, tp: Any) -> bool:
        """Whether this codec stores values annotated with ``tp``."""

    @abstractmethod
    def kind(self, tp: Any) -> str:
        """The artifact kind of ``tp`` (see :data:`recops.pipelines.artifacts.KINDS`)."""

    @abstractmethod
    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        """Write ``value`` into the (empty, existing) ``folder``; return a summary."""

    @abstractmethod
    def read(self, tp: Any, folder: Path) -> Any:
        """Read the value back from ``folder``."""

    def canonical(self, tp: Any, relpath: str, data: bytes) -> bytes:
        """The bytes of file ``relpath`` that count for the digest (default: all)."""
        return data


class DataFrameCodec(Codec):
    """``pandas.DataFrame`` as one Parquet file."""

    name = "dataframe"
    FILE = "frame.parquet"

    def matches(self, tp: Any) -> bool:
        return isinstance(tp, type) and issubclass(tp, pd.DataFrame)

    def kind(self, tp: Any) -> str:
        return "dataset"

    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        if not isinstance(value, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(value).__name__}")
        value.to_parquet(folder / self.FILE)
        return {"rows": len(value), "columns": [str(c) for c in value.columns][:20]}

    def read(self, tp: Any, folder: Path) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(folder / self.FILE)
        frame = table.to_pandas()
        # Parquet lists come back as NumPy arrays; recops frames hold Python lists.
        for column in table.schema:
            if pa.types.is_list(column.type) and column.name in frame.columns:
                frame[column.name] = [
                    None if v is None else list(v) for v in frame[column.name].tolist()
                ]
        # Text columns written from object dtype come back as object dtype, so that a
        # frame read and written again has the same bytes (and digest).
        meta = table.schema.pandas_metadata or {}
        for column in meta.get("columns", []):
            name = column.get("name")
            if (
                name in frame.columns
                and column.get("pandas_type") == "unicode"
                and column.get("numpy_type") == "object"
            ):
                frame[name] = frame[name].astype(object)
        return frame


def _is_two_tower(tp: Any) -> bool:
    # A TwoTower subclass exists only once its module is imported: no torch import here.
    module = sys.modules.get("recops.models.two_tower.model")
    return module is not None and isinstance(tp, type) and issubclass(tp, module.TwoTower)


class TwoTowerCodec(Codec):
    """A fitted two-tower model as its own artifact directory (safetensors + JSON)."""

    name = "two_tower"

    def matches(self, tp: Any) -> bool:
        return _is_two_tower(tp)

    def kind(self, tp: Any) -> str:
        return "model"

    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        if not _is_two_tower(type(value)):
            raise TypeError(f"expected a fitted TwoTower, got {type(value).__name__}")
        value.save(folder)
        return {
            "items": len(value.item_ids_),
            "users": len(value.user_ids_),
            "dim": value.dim,
            "epochs_run": value.summary_.epochs_run,
        }

    def read(self, tp: Any, folder: Path) -> Any:
        return tp.load(folder)

    def canonical(self, tp: Any, relpath: str, data: bytes) -> bytes:
        if relpath != "config.json":
            return data
        config = json.loads(data)
        # Wall-clock time of training is not content: two equal fits differ in it.
        config.get("training", {}).pop("seconds", None)
        return dumps(config)


class PydanticCodec(Codec):
    """A pydantic model as JSON; its kind is its ``artifact_kind`` (default ``report``)."""

    name = "pydantic"
    FILE = "value.json"

    def matches(self, tp: Any) -> bool:
        return isinstance(tp, type) and issubclass(tp, BaseModel)

    def kind(self, tp: Any) -> str:
        return str(getattr(tp, "artifact_kind", "report"))

    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        if not isinstance(value, tp):
            raise TypeError(f"expected a {tp.__name__}, got {type(value).__name__}")
        (folder / self.FILE).write_bytes(dumps(json.loads(value.model_dump_json())))
        return {"fields": sorted(type(value).model_fields)[:20]}

    def read(self, tp: Any, folder: Path) -> Any:
        return tp.model_validate_json((folder / self.FILE).read_bytes())


class JSONCodec(Codec):
    """Plain JSON values, checked and coerced by the annotation (``dict[str, float]``...)."""

    name = "json"
    FILE = "value.json"

    def matches(self, tp: Any) -> bool:
        origin = get_origin(tp) or tp
        return tp is Any or (isinstance(origin, type) and issubclass(origin, _JSON_TYPES))

    def kind(self, tp: Any) -> str:
        return "report"

    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        plain = TypeAdapter(tp).dump_python(value, mode="json")
        (folder / self.FILE).write_bytes(dumps(plain))
        return {"type": type(value).__name__}

    def read(self, tp: Any, folder: Path) -> Any:
        return TypeAdapter(tp).validate_json((folder / self.FILE).read_bytes())


class StructCodec(Codec):
    """A dataclass: plain fields in ``fields.json``, others in one sub-folder each."""

    name = "struct"
    FILE = "fields.json"

    def matches(self, tp: Any) -> bool:
        return isinstance(tp, type) and dataclasses.is_dataclass(tp)

    def _fields(self, tp: Any) -> list[tuple[str, Any, Codec | None]]:
        hints = typing.get_type_hints(tp)
        out: list[tuple[str, Any, Codec | None]] = []
        for f in dataclasses.fields(tp):
            inner, _ = unwrap_optional(hints[f.name])
            codec = codec_for(inner)
            out.append((f.name, inner, None if isinstance(codec, JSONCodec) else codec))
        return out

    def kind(self, tp: Any) -> str:
        kinds = {codec.kind(inner) for _, inner, codec in self._fields(tp) if codec is not None}
        return next((k for k in ("model", "dataset") if k in kinds), "report")

    def write(self, value: Any, tp: Any, folder: Path) -> dict[str, Any]:
        if not isinstance(value, tp):
            raise TypeError(f"expected a {tp.__name__}, got {type(value).__name__}")
        plain: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        for name, inner, codec in self._fields(tp):
            field_value = getattr(value, name)
            if field_value is None:  # an optional field of any type, unset
                plain[name] = None
                continue
            if codec is None:
                plain[name] = TypeAdapter(inner).dump_python(field_value, mode="json")
                continue
            sub = folder / name
            sub.mkdir()
            summary[name] = codec.write(field_value, inner, sub)
        (folder / self.FILE).write_bytes(dumps(plain))
        return summary

    def read(self, tp: Any, folder: Path) -> Any:
        plain = json.loads((folder / self.FILE).read_bytes())
        kwargs: dict[str, Any] = {}
        for name, inner, codec in self._fields(tp):
            if name in plain:
                value = plain[name]
                kwargs[name] = None if value is None else TypeAdapter(inner).validate_python(value)
            else:
                assert codec is not None
                kwargs[name] = codec.read(inner, folder / name)
        return tp(**kwargs)

    def canonical(self, tp: Any, relpath: str, data: bytes) -> bytes:
        head, _, rest = relpath.partition("/")
        for name, inner, codec in self._fields(tp):
            if name == head and codec is not None and rest:
                return codec.canonical(inner, rest, data)
        return data


_BUILTIN: tuple[Codec, ...] = (
    DataFrameCodec(),
    TwoTowerCodec(),
    PydanticCodec(),
    StructCodec(),
    JSONCodec(),
)
_registered: list[Codec] = []


def register_codec(codec: Codec) -> Codec:
    """Add a codec for more types; registered codecs are tried before the built-in ones."""
    if not isinstance(codec, Codec):
        raise TypeError(f"expected a Codec instance, got {type(codec).__name__}")
    _registered.insert(0, codec)
    return codec


def unregister_codec(codec: Codec) -> None:
    """Remove a codec added by :func:`register_codec`."""
    _registered.remove(codec)


def codec_for(tp: Any) -> Codec:
    """The codec that stores values annotated ``tp``; TypeError naming the choices."""
    for codec in (*_registered, *_BUILTIN):
        if codec.matches(tp):
            return codec
    raise TypeError(
        f"no codec stores {type_name(tp)}: annotate with a pandas DataFrame, a TwoTower, "
        "a pydantic model, a dataclass of those, or JSON types, or register_codec() one"
    )
