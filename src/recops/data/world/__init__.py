"""The built-in world: a simulated news site whose click behaviour is known exactly.

It is recops' embedded default dataset (no download) and the ground truth against
which off-policy estimates, simulated A/B tests and served models are checked.

Generative story
================
All randomness derives from ``WorldConfig.seed`` through independent streams for
the catalog, the users and the log, so that e.g. the catalog of a seed does not
depend on ``n_users``. Times are int64 unix seconds; the period is
``[start_time, start_time + days * 86400)``.

Catalog (:mod:`~recops.data.world.catalog`)
    Category sizes ``~ Dirichlet(category_concentration)``; each item draws a main
    category from them and, with ``secondary_category_probability``, a distinct
    second one. Each category owns ``words_per_category`` pseudo-words, and
    ``shared_words`` more are common to all; a title has
    ``title_min_words..title_max_words`` words, each from the item's categories with
    probability ``title_category_word_fraction`` (the second category supplying
    30 % of those), else shared, so text carries category signal. Publish times are
    uniform over ``[start - backlog_days, end)`` (news keeps arriving). Quality
    ``q_i ~ N(0, quality_std²)``; latent ``z_i = w c_{cat(i)} + sqrt(1 - w²) ε``
    with category centroids ``c ~ N(0, I)`` and ``w = latent_category_weight``.
    Items are indexed in publish order: ``"i{k}"``.

Users (:mod:`~recops.data.world.users`)
    ``initial_user_fraction`` of users signed up during the year before the start,
    the others uniformly during the period (cold users keep arriving). Each has a
    home region whose category profile ``ρ_r ~ Dirichlet(1)`` tilts the interest
    prior: ``θ_u ~ Dirichlet(interest_concentration · C · (1/(2C) + ρ_r / 2))``.
    Interest logits ``log θ_u`` follow a daily Gaussian random walk with std
    ``drift_rate``; with daily probability ``interest_shift_probability`` a random
    category jumps to the current top logit ``+ ln 2`` (a new main interest).
    Optionally, a shock on ``shock_day`` adds ``shock_strength`` to every user's
    ``shock_category`` logit (a population-wide drift for monitoring to detect).
    Interests between daily knots are the softmax of the linearly interpolated
    logits. Activity ``a_u ~ LogNormal(-σ²/2, σ)`` (mean 1; heavy and light users);
    latent ``z_u ~ N(0, I)``. Users are indexed in signup order: ``"u{k}"``.

Traffic (:meth:`World.sample_arrivals`)
    Requests arrive as a Poisson process with rate
    ``requests_per_user_per_day / 86400 · (1 + A cos(2π (hour - peak_hour)/24)) ·
    Σ_{u signed up} a_u``; the user of a request is drawn in proportion to ``a_u``
    among signed-up users.

Click model (:mod:`~recops.data.world.click_model`), the ground truth
    ``P(click | u, i, p, t) = (1/(p+1))^η · σ(b + w_int · I(u,i,t)
    + w_lat · <z_u, z_i>/sqrt(d) + q_i − ln 2 · age_i(t) / half_life)``
    where ``p`` is the 0-based slot, ``I(u,i,t) = 0.7 θ_u(t)[cat(i)] + 0.3
    θ_u(t)[cat2(i)]`` (or ``θ_u(t)[cat(i)]`` without a second category), and
    items not yet published have probability 0. Clicks in different slots are
    independent given the slate.

Logging (:mod:`~recops.data.world.logging_policy`, :mod:`~recops.data.world.simulate`)
    Items at most ``max_item_age_hours`` old are candidates. The logging policy
    shows, with probability ``1 − exploration``, the ``slate_size`` candidates
    with most clicks in the last ``popularity_window_hours`` (refreshed hourly),
    else a uniformly random ordered slate; each impression logs the exact
    probability of its item in its slot (``propensity``) and of the whole slate
    (``slate_propensity``). Each click is logged 1–120 s after its impression.
    :class:`OraclePolicy` (true attractiveness, best first) is the ceiling; any
    :class:`SlatePolicy` can be run on the same traffic with
    :meth:`World.simulate_log` to get its true value.

Use
===
>>> from recops.data.world import WorldConfig, generate_world
>>> world, data = generate_world(WorldConfig(n_users=100, n_items=300, days=2, seed=1))
>>> sorted(data.interactions["event"].unique())
['click', 'impression']
"""

from recops.data.world.config import WorldConfig, WorldConfigError
from recops.data.world.generate import generate_catalog, generate_world
from recops.data.world.logging_policy import (
    PopularityExplorationPolicy,
    RequestBatch,
    SlateDecision,
    SlatePolicy,
)
from recops.data.world.oracle import OraclePolicy
from recops.data.world.simulate import SimulationLog
from recops.data.world.truth import World

__all__ = [
    "OraclePolicy",
    "PopularityExplorationPolicy",
    "RequestBatch",
    "SimulationLog",
    "SlateDecision",
    "SlatePolicy",
    "World",
    "WorldConfig",
    "WorldConfigError",
    "generate_catalog",
    "generate_world",
]
