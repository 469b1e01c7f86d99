"""Feeds the bandit variants of running experiments from the log: impressions, then clicks.

Every worker follows the same log, so every worker's bandit learns from all the
traffic, whichever worker served a slate or received its click. Each round reads
the new *answers* (events carrying a ``request_id``) first and the new exposures
second: an answer is committed after the exposure it answers (one writer, in
order), so every answer read has its exposure in the same round or an earlier one.
Exposures of bandit arms are remembered (a bounded map) until a click answers them.

The counts are updated from a thread while requests read them; a request may see a
count one update early or late, which changes nothing a propensity depends on:
the exposure logs the scores the policy actually ranked by.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from recops.serving.eventlog import EventLog
from recops.serving.experiments import Arm, ExperimentRuntime

#: Rows read from the log per query.
_PAGE = 10_000


class BanditFeedback:
    """Applies the log's impressions and clicks to the bandit arms of ``runtime``.

    Parameters
    ----------
    event_log:
        The shared log.
    runtime:
        Whose learning arms to feed.
    reward_event:
        The event type that counts as a click.
    remembered_slates:
        Exposures kept waiting for their clicks (oldest forgotten first).
    """

    def __init__(
        self,
        event_log: EventLog,
        runtime: ExperimentRuntime,
        *,
        reward_event: str = "click",
        remembered_slates: int = 200_000,
    ) -> None:
        self.event_log = event_log
        self.runtime = runtime
        self.reward_event = reward_event
        self.remembered_slates = remembered_slates
        self._exposures_after = 0
        self._answers_after = 0
        self._slates: OrderedDict[str, tuple[Arm, dict[str, int]]] = OrderedDict()

    def poll(self) -> int:
        """Apply what was logged since the last poll; returns the clicks applied."""
        arms = self.runtime.learning_arms()
        if not arms:
            return 0
        answers = self._read_answers()
        while page := self.event_log.read_exposures(self._exposures_after, _PAGE):
            self._exposures_after = page[-1][0]
            for _, x in page:
                arm = arms.get((x.experiment or "", x.variant or ""))
                if arm is None or arm.bundle.version != x.version:
                    continue
                index = arm.bundle.model.item_index
                shown = {item: index[item] for item in x.items if item in index}
                _update(arm, list(shown.values()), shown=1.0, clicked=0.0)
                self._slates[x.request_id] = (arm, shown)
                while len(self._slates) > self.remembered_slates:
                    self._slates.popitem(last=False)
        clicks = 0
        for request_id, item_id in answers:
            found = self._slates.get(request_id)
            if found is not None and item_id in found[1]:
                # Popped: a second click on the same shown item is not a second success.
                _update(found[0], [found[1].pop(item_id)], shown=0.0, clicked=1.0)
                clicks += 1
        return clicks

    def _read_answers(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while page := self.event_log.read_responses(self._answers_after, _PAGE):
            self._answers_after = page[-1][0]
            out.extend(
                (e.request_id or "", e.item_id) for _, e in page if e.event == self.reward_event
            )
        return out


def _update(arm: Arm, rows: list[int], *, shown: float, clicked: float) -> None:
    if rows and arm.policy is not None and hasattr(arm.policy, "update"):
        arm.policy.update(np.asarray(rows, dtype=np.int64), shown, clicked)
