"""The ``recops`` command line. Each sub-command lives in a module of its own.

Heavy libraries (torch, faiss, pandas) are imported inside the commands so that
``recops --help`` stays instant.
"""

from recops.cli import (
    batch,  # noqa: F401  (registers `recops batch`: embedding and export, Ray Data)
    ct,  # noqa: F401  (registers `recops ct`: the continuous-training controller)
    data,  # noqa: F401  (registers `recops data`)
    demo,  # noqa: F401  (registers `recops demo`)
    evaluate,  # noqa: F401  (registers `recops evaluate`)
    experiment,  # noqa: F401  (registers `recops experiment`)
    experiment_analyze,  # noqa: F401  (registers `recops experiment analyze`)
    experiment_logs,  # noqa: F401  (registers `recops experiment export`)
    model,  # noqa: F401  (registers `recops model`: the MLflow registry)
    monitor,  # noqa: F401  (registers `recops monitor`)
    ope,  # noqa: F401  (registers `recops ope`)
    pipeline,  # noqa: F401  (registers `recops pipeline`)
    serve,  # noqa: F401  (registers `recops serve`, `recops loadtest`, `recops models`)
    train,  # noqa: F401  (registers `recops train` and `recops recommend`)
    world,  # noqa: F401  (registers `recops world`)
)
from recops.cli.app import app

__all__ = ["app"]
