"""Freeze Evidently's drift statistics on the samples of ``vector_data.py`` as test vectors.

Run by hand in a throw-away virtual environment that has Evidently (see README.md here);
Evidently is not a recops dependency, so pytest and mypy skip this file.

    /tmp/evidently-venv/bin/python tests/monitoring/reference/make_evidently_vectors.py \
        --out tests/monitoring/reference/evidently_vectors.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import evidently
import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import chi_stat_test, ks_stat_test, psi_stat_test
from evidently.legacy.core import ColumnType

sys.path.insert(0, str(Path(__file__).parent))
from vector_data import (
    CATEGORICAL_CASES,
    NUMERIC_CASES,
    categorical_samples,
    numeric_samples,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out
    vectors: dict = {
        "evidently": evidently.__version__,
        "numpy": np.__version__,
        "numeric": {},
        "categorical": {},
    }
    num = ColumnType.Numerical
    for name in NUMERIC_CASES:
        ref, cur = (pd.Series(v) for v in numeric_samples(name))
        vectors["numeric"][name] = {
            "checksum": [float(ref.sum()), float(cur.sum())],
            # Evidently bins numeric PSI on equal-width Sturges bins of both samples.
            "psi_edges": np.histogram_bin_edges(
                pd.concat([ref, cur]).to_numpy(), bins="sturges"
            ).tolist(),
            "psi": float(psi_stat_test(ref, cur, num, None).drift_score),
            "ks_p_value": float(ks_stat_test(ref, cur, num, None).drift_score),
        }
    cat = ColumnType.Categorical
    for name in CATEGORICAL_CASES:
        ref, cur = (pd.Series(v) for v in categorical_samples(name))
        vectors["categorical"][name] = {
            "counts": [
                ref.value_counts().sort_index().to_dict(),
                cur.value_counts().sort_index().to_dict(),
            ],
            "psi": float(psi_stat_test(ref, cur, cat, None).drift_score),
            # Evidently's "chisquare" is a goodness-of-fit test against the reference shares.
            "chisquare_gof_p_value": float(chi_stat_test(ref, cur, cat, None).drift_score),
        }
    out.write_text(json.dumps(vectors, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
