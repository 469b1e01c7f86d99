"""The multi-task two-tower recommender: user, item, query, category and similar-item towers.

One network, one artifact, four uses (user→item, item→item, query→item,
category→item), all scored in one space. The pieces, in the order data flows:

* ``preparation``: data frames checked against the schema → vocabularies and the
  indexed training data;
* ``features``: ids → indices (0 = padding/unknown), hashed title tokens, category
  bags, each event's history strictly before it, and the causal cumulative
  popularity counts (O(1) per (item, time)) behind the time-aware prior;
* ``network``: the towers (torch) and the prior network;
* ``loss``: sampled softmax over in-batch + uniform candidates with the logQ
  correction and accidental-hit masking;
* ``data``: the indexed training data and the user tower on a batch of histories;
* ``validation``: the validation window shaped like the temporal evaluation, its
  metrics and the search for the blend of towers and prior;
* ``training``: the multi-task loop, early stopping on the validation window, and
  the choice of the prior and the blend;
* ``prior``: fitting ``item_prior`` to a consumption horizon;
* ``inference``: NumPy copies of the user tower and prior for the real-time path;
* ``model``: the public :class:`TwoTower`; ``artifact``: save / load.
"""

from recops.models.two_tower.artifact import ArtifactError
from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.model import TwoTower

__all__ = ["ArtifactError", "TwoTower", "TwoTowerConfig"]
