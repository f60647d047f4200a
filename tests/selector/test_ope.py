"""Off-policy estimators against values worked out by hand and in closed form."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from selector import ope, ope_targets
from selector.ope import LogError, LoggedBandit, evaluate, replay, uniform_target
from selector.ope_targets import ThompsonPosteriors, thompson_target

# Six rows over three actions; target (0.2, 0.5, 0.3); reward model (0.5, 0.5, 2).
ACTIONS = [0, 1, 2, 0, 1, 0]
PROPENSITIES = [0.5, 0.25, 0.25, 0.5, 0.25, 0.5]
REWARDS = [1.0, 0.0, 2.0, 0.0, 1.0, 1.0]
TARGET = np.array([0.2, 0.5, 0.3])
MODEL = np.array([0.5, 0.5, 2.0])


def hand_log() -> LoggedBandit:
    return LoggedBandit.of(ACTIONS, PROPENSITIES, REWARDS, 3)


def test_the_module_examples_run() -> None:
    for module in (ope, ope_targets):
        assert doctest.testmod(module).failed == 0


def test_estimates_equal_the_hand_computed_values() -> None:
    # w = (0.4, 2, 1.2, 0.4, 2, 0.4): sum 6.4, sum of squares 9.92; w r sums to 5.2
    est = evaluate(hand_log(), TARGET, np.random.default_rng(0), reward_model=MODEL)
    assert est["ips"].value == pytest.approx(5.2 / 6)
    assert est["snips"].value == pytest.approx(5.2 / 6.4)
    # direct part sum(target * model) = 0.95; w (r - q(a)) sums to 0.2
    assert est["dr"].value == pytest.approx(0.95 + 0.2 / 6)
    for e in est.values():
        assert e.effective_sample_size == pytest.approx(6.4**2 / 9.92)
        assert e.rows == 6
        assert e.low <= e.value <= e.high


def test_default_reward_model_is_the_mean_reward_per_action() -> None:
    assert ope.action_means(hand_log()).tolist() == pytest.approx([2 / 3, 0.5, 2.0])
    sparse = LoggedBandit.of([0, 0], [0.5, 0.5], [1.0, 3.0], 3)
    assert ope.action_means(sparse).tolist() == [2.0, 2.0, 2.0]


def test_ips_is_unbiased_exactly_over_the_logging_distribution() -> None:
    # one logged row: averaging IPS over every action the logger could have taken, with
    # the logger's probabilities, gives the target's true value
    logging, rewards = np.array([0.1, 0.6, 0.3]), np.array([2.0, 0.5, 1.0])
    expected = 0.0
    for a in range(3):
        log = LoggedBandit.of([a], [logging[a]], [rewards[a]], 3)
        est = evaluate(log, TARGET, np.random.default_rng(a), resamples=10)
        expected += logging[a] * est["ips"].value
    assert expected == pytest.approx(float(TARGET @ rewards))


def test_dr_with_an_exact_reward_model_is_exact_on_any_log() -> None:
    rewards = np.array([3.0, 1.0, 0.5])
    rng = np.random.default_rng(1)
    actions = rng.choice(3, size=50, p=[0.7, 0.2, 0.1])
    log = LoggedBandit.of(actions, np.array([0.7, 0.2, 0.1])[actions], rewards[actions], 3)
    est = evaluate(log, TARGET, rng, reward_model=rewards)
    assert est["dr"].value == pytest.approx(float(TARGET @ rewards))
    assert est["dr"].high - est["dr"].low == pytest.approx(0.0, abs=1e-12)
    assert est["ips"].value != pytest.approx(float(TARGET @ rewards))


def test_on_policy_weights_reduce_to_the_mean_and_n() -> None:
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 4, 1000)
    rewards = rng.random(1000)
    log = LoggedBandit.of(actions, np.full(1000, 0.25), rewards, 4)
    est = evaluate(log, uniform_target(4), rng, resamples=200)
    assert est["ips"].value == pytest.approx(rewards.mean())
    assert est["snips"].value == pytest.approx(rewards.mean())
    assert est["ips"].effective_sample_size == pytest.approx(1000.0)


def synthetic_log(seed: int, n: int) -> tuple[LoggedBandit, np.ndarray, np.ndarray]:
    """Logging (0.4, 0.3, 0.2, 0.1), Bernoulli rewards with means (0.1, 0.2, 0.3, 0.4)."""
    rng = np.random.default_rng(seed)
    logging, means = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
    actions = rng.choice(4, size=n, p=logging)
    rewards = (rng.random(n) < means[actions]).astype(float)
    return LoggedBandit.of(actions, logging[actions], rewards, 4), logging, means


SHIFTED = np.array([0.1, 0.1, 0.2, 0.6])  # true value 0.33 against the logger's 0.2


def test_intervals_contain_the_closed_form_value_on_a_large_log() -> None:
    log, _, means = synthetic_log(3, 20_000)
    truth = float(SHIFTED @ means)
    est = evaluate(log, SHIFTED, np.random.default_rng(4), resamples=500)
    for e in est.values():
        assert e.covers(truth), e
        assert e.high - e.low < 0.04
    assert 0.2 * 20_000 < est["ips"].effective_sample_size < 0.5 * 20_000


def test_bootstrap_intervals_cover_at_about_their_level() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in range(40):
        log, _, means = synthetic_log(100 + seed, 2000)
        est = evaluate(log, SHIFTED, np.random.default_rng(seed), resamples=300)
        for name in covered:
            covered[name] += est[name].covers(float(SHIFTED @ means))  # type: ignore[index]
    # 95% intervals over 40 logs: 38 expected; fewer than 33 has probability < 0.2%
    assert all(c >= 33 for c in covered.values()), covered


def test_same_seed_same_estimates_and_inputs_untouched() -> None:
    log, _, _ = synthetic_log(5, 500)
    target = SHIFTED.copy()
    a = evaluate(log, target, np.random.default_rng(9), resamples=100)
    b = evaluate(log, target, np.random.default_rng(9), resamples=100)
    assert a == b
    assert target.tolist() == SHIFTED.tolist()
    with pytest.raises(ValueError):
        log.reward[0] = 5.0


def test_per_row_targets_equal_a_shared_vector() -> None:
    log, _, _ = synthetic_log(6, 300)
    rows = ope.per_row(SHIFTED[None, :], np.zeros(300, dtype=int))
    shared = evaluate(log, SHIFTED, np.random.default_rng(1), resamples=50)
    each = evaluate(log, rows, np.random.default_rng(1), resamples=50)
    assert {k: v.value for k, v in shared.items()} == pytest.approx(
        {k: v.value for k, v in each.items()}
    )


def test_replay_of_a_deterministic_target_is_the_mean_of_matching_uniform_rows() -> None:
    rng = np.random.default_rng(7)
    actions = rng.integers(0, 3, 900)
    rewards = rng.random(900)
    uniform = np.arange(900) % 2 == 0
    propensity = np.where(uniform, 1 / 3, 0.9)
    log = LoggedBandit.of(actions, propensity, rewards, 3)
    est = replay(log, np.array([0.0, 1.0, 0.0]), uniform, rng, resamples=200)
    matched = uniform & (actions == 1)
    assert est.value == pytest.approx(rewards[matched].mean())
    assert est.effective_sample_size == pytest.approx(matched.sum())
    assert est.rows == uniform.sum() and est.low < est.value < est.high


def test_replay_contains_the_closed_form_value() -> None:
    rng = np.random.default_rng(8)
    means = np.array([0.1, 0.2, 0.3, 0.4])
    actions = rng.integers(0, 4, 8000)
    log = LoggedBandit.of(actions, np.full(8000, 0.25), rng.random(8000) < means[actions], 4)
    # one log, so a 99% interval: missing the value would be a 1-in-100 event
    est = replay(log, SHIFTED, np.ones(8000, dtype=bool), rng, resamples=500, confidence=0.99)
    assert est.covers(float(SHIFTED @ means)) and est.high - est.low < 0.05


def test_replay_without_uniform_rows_is_nan_not_an_error() -> None:
    est = replay(hand_log(), TARGET, np.zeros(6, dtype=bool), np.random.default_rng(0))
    assert np.isnan(est.value) and est.rows == 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (([], [], [], 3), "empty"),
        (([0, 1], [0.5], [1.0, 0.0], 3), "shape_mismatch"),
        (([0, 3], [0.5, 0.5], [1.0, 0.0], 3), "action_out_of_range"),
        (([0, -1], [0.5, 0.5], [1.0, 0.0], 3), "action_out_of_range"),
        (([0, 1], [0.5, 0.0], [1.0, 0.0], 3), "propensity_out_of_range"),
        (([0, 1], [0.5, 1.5], [1.0, 0.0], 3), "propensity_out_of_range"),
        (([0, 1], [0.5, float("nan")], [1.0, 0.0], 3), "propensity_out_of_range"),
        (([0, 1], [0.5, 0.5], [1.0, float("inf")], 3), "reward_not_finite"),
    ],
)
def test_bad_logs_are_named(args: tuple, reason: str) -> None:
    with pytest.raises(LogError) as info:
        LoggedBandit.of(*args)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (np.array([0.5, 0.5]), "shape_mismatch"),
        (np.full((2, 3), 1 / 3), "shape_mismatch"),
        (np.array([0.5, 0.6, 0.1]), "target_not_a_distribution"),
        (np.array([1.2, -0.2, 0.0]), "target_not_a_distribution"),
    ],
)
def test_bad_targets_are_named(target: np.ndarray, reason: str) -> None:
    with pytest.raises(LogError) as info:
        evaluate(hand_log(), target, np.random.default_rng(0))
    assert info.value.reason == reason


def test_bad_reward_models_and_uniform_masks_are_named() -> None:
    with pytest.raises(LogError, match="shape_mismatch"):
        evaluate(hand_log(), TARGET, np.random.default_rng(0), reward_model=np.ones(2))
    with pytest.raises(LogError, match="shape_mismatch"):
        replay(hand_log(), TARGET, np.ones(5, dtype=bool), np.random.default_rng(0))
    with pytest.raises(LogError, match="target_not_a_distribution"):
        uniform_target(3, [False, False, False])
    assert uniform_target(4, [True, False, True, False]).tolist() == [0.5, 0, 0.5, 0]


# --- thompson_single_step as a target ----------------------------------------------------


def test_thompson_target_rows_are_distributions_and_follow_the_posteriors() -> None:
    post = ThompsonPosteriors.of(
        ctr_alpha=[[100.0, 100.0, 1.0], [300.0, 100.0, 1.0]],
        ctr_beta=[[900.0, 900.0, 1.0], [700.0, 900.0, 1.0]],
        allowed=[[True, True, False], [True, True, False]],
        goal="clicks",
    )
    probs = thompson_target(post, np.random.default_rng(0), draws=20_000)
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert probs[0, :2] == pytest.approx([0.5, 0.5], abs=0.02)
    assert probs[1, 0] > 0.999 and probs[:, 2].tolist() == [0.0, 0.0]


def test_thompson_target_gives_the_learning_pool_its_share_exactly() -> None:
    post = ThompsonPosteriors.of(
        ctr_alpha=[[500.0, 50.0, 1.0, 1.0]],
        ctr_beta=[[500.0, 950.0, 1.0, 1.0]],
        learning=[[False, False, True, True]],
        learning_share=0.1,
        exploration_floor=0.2,
        goal="clicks",
    )
    probs = thompson_target(post, np.random.default_rng(1), draws=5000)[0]
    assert probs[2:].tolist() == pytest.approx([0.05, 0.05])
    # scored share 0.9: creative 0 wins the Thompson part, the floor spreads 0.2 over two
    assert probs[:2].tolist() == pytest.approx([0.9 * (0.1 + 0.8), 0.9 * 0.1])
    only_learning = ThompsonPosteriors.of([[1.0, 1.0]], [[1.0, 1.0]], learning=[[True, True]])
    assert thompson_target(only_learning, np.random.default_rng(0))[0].tolist() == [0.5, 0.5]


def test_thompson_target_on_revenue_weighs_payouts_and_per_click_offers() -> None:
    # equal CTRs: a $30 conversion at 10% ($3/click) loses to a $5 per-click offer
    post = ThompsonPosteriors.of(
        ctr_alpha=[[1000.0, 1000.0]],
        ctr_beta=[[9000.0, 9000.0]],
        cvr_alpha=[[1000.0, 1.0]],
        cvr_beta=[[9000.0, 1.0]],
        value=[30.0, 5.0],
        per_click=[False, True],
    )
    probs = thompson_target(post, np.random.default_rng(2), draws=4000)[0]
    assert probs[1] > 0.999


def test_thompson_target_then_ope_estimates_its_value() -> None:
    log, _, means = synthetic_log(11, 20_000)
    post = ThompsonPosteriors.of(
        ctr_alpha=[[10.0, 20.0, 30.0, 400.0]], ctr_beta=[[90.0, 80.0, 70.0, 600.0]], goal="clicks"
    )
    target = thompson_target(post, np.random.default_rng(3), draws=20_000)
    assert 0.95 < target[0, 3] < 1.0
    est = evaluate(log, target[0], np.random.default_rng(4), resamples=300)
    assert est["snips"].covers(float(target[0] @ means))


def test_bad_posteriors_are_named() -> None:
    with pytest.raises(LogError, match="shape_mismatch"):
        ThompsonPosteriors.of([[1.0, 1.0]], [[1.0, 1.0, 1.0]])
    with pytest.raises(LogError, match="shape_mismatch"):
        ThompsonPosteriors.of([[1.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises(LogError, match="target_not_a_distribution"):
        ThompsonPosteriors.of([[1.0, 1.0]], [[1.0, 1.0]], allowed=[[False, False]])


def test_a_per_row_model_target_is_evaluated_against_its_closed_form_value() -> None:
    # two kinds of contacts; the model sends kind 0 mostly to action 0 and kind 1 to
    # action 2; the logger is uniform; rewards depend on kind and action
    rng = np.random.default_rng(12)
    n = 30_000
    kind = (rng.random(n) < 0.3).astype(int)
    means = np.array([[0.30, 0.10, 0.05], [0.05, 0.10, 0.40]])
    model = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    actions = rng.integers(0, 3, n)
    rewards = (rng.random(n) < means[kind, actions]).astype(float)
    log = LoggedBandit.of(actions, np.full(n, 1 / 3), rewards, 3)
    truth = 0.7 * model[0] @ means[0] + 0.3 * model[1] @ means[1]
    per_row = model[kind]
    est = evaluate(log, per_row, rng, reward_model=means[kind], resamples=300)
    for e in est.values():
        assert e.covers(truth), e
    assert est["ips"].effective_sample_size < n
    shared = evaluate(log, model[0], rng, resamples=50)["ips"].value
    assert abs(shared - truth) > 0.05  # ignoring the rows' kinds gets another policy's value
