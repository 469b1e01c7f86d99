"""Freeze Open Bandit Pipeline (obp 0.5.7) estimates as test vectors for recops.ope.

Run by hand in a throw-away virtual environment that has obp (see README.md here);
obp is not a recops dependency, so pytest and mypy skip this file.

    /tmp/obp-venv/bin/python tests/ope/reference/make_obp_vectors.py \
        --data-dir ../shared/data/obd --out tests/ope/reference/obp_vectors.json

The target policies and reward-model predictions are closed-form functions of
(row, action, position) (see ``formula_action_dist`` / ``formula_q_hat``), so the
tests rebuild them bit-for-bit without storing 2.4M numbers; the Bernoulli TS
marginal, which obp computes by simulation, is stored as an (80, 3) matrix.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import obp
from obp.dataset import OpenBanditDataset
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SlateStandardIPS,
    SwitchDoublyRobust,
)
from obp.policy import BernoulliTS


def formula_action_dist(n_rows: int, n_actions: int, len_list: int) -> np.ndarray:
    """A context-dependent target: softmax over actions of a smooth deterministic score."""
    i = np.arange(n_rows, dtype=np.float64)[:, None, None]
    a = np.arange(n_actions, dtype=np.float64)[None, :, None]
    k = np.arange(len_list, dtype=np.float64)[None, None, :]
    logits = 3.0 * np.sin(0.013 * i + 0.37 * a + 1.3 * k)
    logits -= logits.max(axis=1, keepdims=True)
    expo = np.exp(logits)
    return expo / expo.sum(axis=1, keepdims=True)


def formula_q_hat(n_rows: int, n_actions: int, len_list: int) -> np.ndarray:
    """Deterministic reward-model predictions in (0.002, 0.012)."""
    i = np.arange(n_rows, dtype=np.float64)[:, None, None]
    a = np.arange(n_actions, dtype=np.float64)[None, :, None]
    k = np.arange(len_list, dtype=np.float64)[None, None, :]
    return 0.002 + 0.01 * (0.5 + 0.5 * np.cos(0.05 * i + 0.11 * a - 0.7 * k))


def standard_estimates(feedback: dict, action_dist: np.ndarray, q_hat: np.ndarray) -> dict:
    common = dict(
        reward=feedback["reward"],
        action=feedback["action"],
        position=feedback["position"],
        pscore=feedback["pscore"],
        action_dist=action_dist,
    )
    with_model = dict(common, estimated_rewards_by_reg_model=q_hat)
    model_free = {"dm": DirectMethod()}
    return {
        "ips": InverseProbabilityWeighting().estimate_policy_value(**common),
        "ips_clip3": InverseProbabilityWeighting(lambda_=3.0).estimate_policy_value(**common),
        "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**common),
        "dm": model_free["dm"].estimate_policy_value(
            position=feedback["position"],
            action_dist=action_dist,
            estimated_rewards_by_reg_model=q_hat,
        ),
        "dr": DoublyRobust().estimate_policy_value(**with_model),
        "dr_clip3": DoublyRobust(lambda_=3.0).estimate_policy_value(**with_model),
        "sndr": SelfNormalizedDoublyRobust().estimate_policy_value(**with_model),
        "switch_dr_tau2": SwitchDoublyRobust(lambda_=2.0).estimate_policy_value(**with_model),
        "dros_lambda10": DoublyRobustWithShrinkage(lambda_=10.0).estimate_policy_value(
            **with_model
        ),
    }


def slate_vectors() -> dict:
    """Synthetic slates (closed-form) and obp's three slate IPS estimates on them."""
    n_slates, len_list = 500, 3
    s = np.arange(n_slates)
    slate_id = np.repeat(s, len_list)
    k = np.tile(np.arange(len_list), n_slates)
    reward = ((slate_id * 7 + k * 3) % 5 == 0).astype(float)
    pscore_ip = 0.05 + 0.2 * (0.5 + 0.5 * np.sin(0.3 * slate_id + k))
    target_ip = 0.02 + 0.3 * (0.5 + 0.5 * np.cos(0.2 * slate_id - k))
    pscore_cascade = np.cumprod(pscore_ip.reshape(n_slates, len_list), axis=1).ravel()
    target_cascade = np.cumprod(target_ip.reshape(n_slates, len_list), axis=1).ravel()
    pscore_slate = np.repeat(pscore_cascade.reshape(n_slates, len_list)[:, -1], len_list)
    target_slate = np.repeat(target_cascade.reshape(n_slates, len_list)[:, -1], len_list)
    common = dict(slate_id=slate_id, reward=reward, position=k)
    return {
        "n_slates": n_slates,
        "len_list": len_list,
        "sips": SlateStandardIPS(len_list=len_list).estimate_policy_value(
            pscore=pscore_slate, evaluation_policy_pscore=target_slate, **common
        ),
        "iips": SlateIndependentIPS(len_list=len_list).estimate_policy_value(
            pscore_item_position=pscore_ip,
            evaluation_policy_pscore_item_position=target_ip,
            **common,
        ),
        "rips": SlateRewardInteractionIPS(len_list=len_list).estimate_policy_value(
            pscore_cascade=pscore_cascade,
            evaluation_policy_pscore_cascade=target_cascade,
            **common,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="the obd/ folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    random_all = OpenBanditDataset(
        behavior_policy="random", campaign="all", data_path=args.data_dir
    )
    bts_all = OpenBanditDataset(behavior_policy="bts", campaign="all", data_path=args.data_dir)
    feedback = random_all.obtain_batch_bandit_feedback()
    n, n_actions, len_list = feedback["n_rounds"], feedback["n_actions"], random_all.len_list

    bts_policy = BernoulliTS(
        n_actions=n_actions,
        len_list=len_list,
        is_zozotown_prior=True,
        campaign="all",
        random_state=12345,
    )
    bts_dist = bts_policy.compute_batch_action_dist(n_rounds=1, n_sim=100_000)[0]
    q_hat = formula_q_hat(n, n_actions, len_list)
    targets = {
        "bts": np.broadcast_to(bts_dist, (n, n_actions, len_list)).copy(),
        "formula": formula_action_dist(n, n_actions, len_list),
    }
    out = {
        "obp_version": obp.__version__,
        "numpy_version": np.__version__,
        "dataset": {"behavior_policy": "random", "campaign": "all"},
        "n_rounds": int(n),
        "n_actions": int(n_actions),
        "len_list": int(len_list),
        "checks": {
            "action_sum": int(feedback["action"].sum()),
            # Row order matters for the context-dependent target below.
            "action_head": feedback["action"][:50].tolist(),
            "position_head": feedback["position"][:50].tolist(),
            "position_counts": np.bincount(feedback["position"]).tolist(),
            "reward_sum": float(feedback["reward"].sum()),
            "pscore_sum": float(feedback["pscore"].sum()),
        },
        "bts_on_policy_value": float(
            OpenBanditDataset.calc_on_policy_policy_value_estimate(
                behavior_policy="bts", campaign="all", data_path=args.data_dir
            )
        ),
        "bts_n_rounds": int(bts_all.n_rounds),
        "bts_action_dist": bts_dist.tolist(),
        "estimates": {
            name: {k: float(v) for k, v in standard_estimates(feedback, dist, q_hat).items()}
            for name, dist in targets.items()
        },
        "slate": slate_vectors(),
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["estimates"], indent=1), out["bts_on_policy_value"], out["slate"])


if __name__ == "__main__":
    main()
