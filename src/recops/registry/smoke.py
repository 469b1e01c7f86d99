"""The server's smoke test: a version loads the way the server loads it and answers once.

:func:`smoke_test` loads ``<repository>/<name>/<version>/`` with the server's
:class:`~recops.serving.repository.ModelManager` (artifact verified, FAISS index
built, catalog read), then asks :class:`~recops.serving.service.RecommendService`
for one user's top ``k`` (a user the model was trained on, so the personalised
path runs; the cold-start path when it knows none). It passes when the reply holds
between 1 and ``k`` distinct items with finite scores, named by the version.
"""

from __future__ import annotations

import math
import time

from recops.pipelines.artifacts import Report


class SmokeTest(Report):
    """The outcome of :func:`smoke_test`."""

    passed: bool
    version: str
    items: int
    strategy: str | None
    seconds: float
    message: str


def smoke_test(repository: str, name: str, version: str, k: int = 10) -> SmokeTest:
    """Load the version with ``ModelManager`` and recommend once (see the module docstring)."""
    from recops.serving.repository import ModelManager, ModelRepository
    from recops.serving.schemas import RecommendRequest
    from recops.serving.service import RecommendService
    from recops.serving.state import UserStateStore

    start = time.perf_counter()

    def outcome(
        passed: bool, message: str, items: int = 0, strategy: str | None = None
    ) -> SmokeTest:
        seconds = round(time.perf_counter() - start, 4)
        return SmokeTest(
            passed=passed,
            version=version,
            items=items,
            strategy=strategy,
            seconds=seconds,
            message=message,
        )

    try:
        manager = ModelManager(ModelRepository(repository))
        bundle = manager.load(name, version)
        user = min(bundle.known_users) if bundle.known_users else None
        service = RecommendService(UserStateStore(known_item=manager.known_item))
        reply = service.recommend(RecommendRequest(user_id=user, k=k), bundle)
    except Exception as err:  # any failure to load or answer is the verdict, not a crash
        return outcome(False, f"{type(err).__name__}: {err}")
    n = len(reply.items)
    problems = []
    if not 1 <= n <= k:
        problems.append(f"{n} items for k={k}")
    if len(set(reply.items)) != n:
        problems.append("repeated items")
    if not all(math.isfinite(s) for s in reply.scores):
        problems.append("scores that are not finite")
    if (reply.model, reply.version) != (name, version):
        problems.append(f"the reply names {reply.model}/{reply.version}")
    asked = f"user {user!r}" if user is not None else "an anonymous user"
    if problems:
        return outcome(False, f"{asked} got {', '.join(problems)}", n, reply.strategy)
    return outcome(True, f"loaded and answered {asked} with {n} items", n, reply.strategy)
