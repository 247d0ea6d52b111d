"""Load stepping with cut-back (fe2qc.stepping.LoadStepper).

Covers the trial values for scripted failures, both directions, the tolerance at the target,
exhaustion and misuse.
"""

import json

import pytest

from fe2qc.stepping import LoadStepper


def _run(stepper, fails=()):
    """Step to the end; the trials numbered in ``fails`` (0-based) fail.

    Returns the list of (trial, converged) pairs and the cut_back() results.
    """
    out, kept = [], []
    for n, trial in enumerate(stepper):
        if n in fails:
            out.append((trial, False))
            kept.append(stepper.cut_back(f"trial {n}"))
        else:
            out.append((trial, True))
            stepper.accept()
    return out, kept


def test_one_step_without_failures():
    s = LoadStepper(0.0, 1.0, min_increment=1e-4)
    assert _run(s) == ([(1.0, True)], [])
    assert s.finished and s.value == 1.0 and s.accepted == 1 and s.total_cutbacks == 0


def test_cut_back_halves_and_success_doubles_up_to_the_nominal_increment():
    s = LoadStepper(0.0, 1.0, min_increment=1e-4)
    trials, kept = _run(s, fails={0, 1})
    assert trials == [(1.0, False), (0.5, False), (0.25, True), (0.75, True), (1.0, True)]
    assert kept == [True, True]
    assert s.value == 1.0 and s.total_cutbacks == 2 and s.accepted == 3


def test_failures_and_cutbacks_count_since_the_last_accepted_trial():
    s = LoadStepper(0.0, 1.0, min_increment=1e-4)
    seen = []
    for n, trial in enumerate(s):
        if n in (0, 1, 3):
            s.cut_back(f"no {trial}")
            continue
        seen.append((trial, s.cutbacks, list(s.failures)))
        s.accept()
    assert seen == [(0.25, 2, ["no 1.0", "no 0.5"]), (0.5, 1, ["no 0.75"]), (1.0, 0, [])]


def test_growth_is_capped_by_max_increment_and_the_last_trial_is_the_target_exactly():
    s = LoadStepper(0.0, 1.0, 0.125, min_increment=1e-4, max_increment=0.25)
    trials, _ = _run(s)
    assert [t for t, _ in trials] == [0.125, 0.375, 0.625, 0.875, 1.0]
    s = LoadStepper(0.0, 0.7, 0.25, min_increment=1e-4)
    assert [t for t, _ in _run(s)[0]] == [0.25, 0.5, 0.7]


def test_a_failed_clipped_step_is_halved_from_the_clipped_increment():
    s = LoadStepper(0.0, 1.0, 0.375, min_increment=1e-4)
    trials, _ = _run(s, fails={2})
    # 0.75 + 0.375 passes the target: clipped to 1.0 (increment 0.25), which fails -> 0.125
    assert trials == [(0.375, True), (0.75, True), (1.0, False), (0.875, True), (1.0, True)]


def test_unloading_steps_down_with_negative_increments():
    s = LoadStepper(1.0, 0.0, 0.25, min_increment=1e-4)
    assert s.direction == -1.0 and s.increment == -0.25
    trials, _ = _run(s, fails={1})
    assert trials == [(0.75, True), (0.5, False), (0.625, True), (0.375, True), (0.125, True),
                      (0.0, True)]
    assert s.value == 0.0 and s.finished


def test_exhaustion_below_min_increment():
    s = LoadStepper(0.0, 1.0, min_increment=0.2)
    trials, kept = _run(s, fails={0, 1, 2, 3, 4})
    assert trials == [(1.0, False), (0.5, False), (0.25, False)]
    assert kept == [True, True, False]
    assert s.exhausted and not s.finished and s.value == 0.0 and s.increment == 0.125
    assert list(s) == []
    with pytest.raises(RuntimeError, match="exhausted"):
        s.trial()
    # downwards: the size counts, not the signed value
    s = LoadStepper(0.0, -1.0, min_increment=0.3)
    assert _run(s, fails={0, 1})[1] == [True, False]


def test_tolerance_at_the_target():
    target = 0.3 + 5e-13
    exact = LoadStepper(0.0, target, 0.1, min_increment=1e-4)
    trials = [t for t, _ in _run(exact)[0]]
    assert len(trials) == 4 and trials[-1] == target and trials[-2] < target
    loose = LoadStepper(0.0, target, 0.1, min_increment=1e-4, tol=1e-12)
    assert [t for t, _ in _run(loose)[0]] == [0.1, 0.2, target]
    # a start within tol of the target (either side) is already there
    assert list(LoadStepper(target - 5e-13, target, 0.1, min_increment=1e-4, tol=1e-12)) == []
    assert list(LoadStepper(1.0, 1.0, min_increment=1e-4)) == []


def test_misuse_is_refused():
    s = LoadStepper(0.0, 1.0, 0.5, min_increment=1e-4)
    with pytest.raises(RuntimeError, match="without a pending trial"):
        s.accept()
    with pytest.raises(RuntimeError, match="without a pending trial"):
        s.cut_back()
    assert s.trial() == 0.5 and s.pending == 0.5
    with pytest.raises(RuntimeError, match="neither accepted nor cut back"):
        s.trial()
    with pytest.raises(ValueError, match="grow"):
        LoadStepper(0.0, 1.0, min_increment=1e-4, grow=0.5)


def test_resume_from_a_saved_state_hands_out_the_same_trials():
    """What a restart relies on: the state after any accepted trial continues identically."""
    fails = {0, 1, 4}  # cut back twice, grow, cut back again
    whole = _run(LoadStepper(0.0, 1.0, min_increment=1e-4), fails)[0]
    resumed = 0
    for k in range(1, len(whole)):
        s = LoadStepper(0.0, 1.0, min_increment=1e-4)
        head = []
        for n, trial in enumerate(s):
            if n in fails:
                s.cut_back()
            else:
                s.accept()
            head.append(trial)
            if n + 1 == k:
                break
        if s.pending is None and whole[k - 1][1]:  # resume right after an accepted trial
            state = json.loads(json.dumps(s.state()))  # as a checkpoint stores it
            again = LoadStepper.resume(state, min_increment=1e-4)
            rest = _run(again, {f - k for f in fails if f >= k})[0]
            assert head + [t for t, _ in rest] == [t for t, _ in whole], k
            resumed += 1
    assert resumed >= 3 and len(whole) >= 6
