import math

import torch

from collapse_lab.trainer.metrics import mean_se, mode_metrics, mode_states

K = 8


def run(nearest, hq, prev=None):
    m = mode_metrics(torch.tensor(nearest), torch.tensor(hq), K, prev)
    return {k: (v.tolist() if v.dim() else float(v)) for k, v in m.items()}


def test_all_on_one_mode():
    m = run([3] * 2500, [True] * 2500)
    assert m["modes_covered"] == 1 and m["modes_captured"] == 1
    assert math.isclose(m["reverse_kl"], math.log(8), rel_tol=1e-2)
    assert math.isclose(m["effective_modes"], 1.0, rel_tol=1e-6)
    assert m["hq_fraction"] == 1.0


def test_uniform_over_modes():
    nearest = [i % K for i in range(2400)]
    m = run(nearest, [True] * 2400)
    assert m["modes_covered"] == 8 and m["modes_captured"] == 8
    assert abs(m["reverse_kl"]) < 1e-6
    assert math.isclose(m["effective_modes"], 8.0, rel_tol=1e-5)


def test_stragglers_are_captured_but_not_covered():
    nearest = [0] * 2493 + list(range(1, 8))  # one sample on each other mode
    m = run(nearest, [True] * 2500)
    assert m["modes_captured"] == 8
    assert m["modes_covered"] == 1
    states = mode_states(m["occupancy"])
    assert states[0] == "covered" and set(states[1:]) == {"starving"}


def test_low_quality_samples_do_not_count():
    m = run([0] * 1000 + [1] * 1000, [True] * 1000 + [False] * 1000)
    assert m["modes_captured"] == 1
    assert math.isclose(m["hq_fraction"], 0.5)
    assert math.isclose(m["effective_modes"], 2.0, rel_tol=1e-5)  # no cut-off in this one
    assert mode_states(m["occupancy"])[1] == "dropped"


def test_blob_between_modes_still_reads_collapsed():
    m = run([2] * 1250 + [3] * 1250, [False] * 2500)
    assert m["hq_fraction"] == 0.0 and m["modes_captured"] == 0
    assert m["reverse_kl"] > 1.0  # falls back to the nearest-mode histogram of all samples


def test_hopping_is_total_variation():
    a = run([0] * 1000, [True] * 1000)
    b = run([1] * 1000, [True] * 1000, prev=torch.tensor(a["occupancy"]))
    assert math.isclose(b["hopping"], 1.0)
    c = run([1] * 1000, [True] * 1000, prev=torch.tensor(b["occupancy"]))
    assert c["hopping"] == 0.0


def test_mean_se():
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5
    assert math.isclose(se, math.sqrt(((1.5**2 + 0.5**2) * 2 / 3) / 4))
    assert mean_se([5.0]) == (5.0, 0.0)
