"""The target encodings, losses and training rules of the seed questions, checked by hand.

Each rule is compared with an independent statement of its formula: the delta ablations on
small arrays worked out by hand, the tutorial's update rules against the tutorial's own
per-sample code (column vectors, weights stored (out, in) as in python-course.eu and Rashid's
book), mixup against its definition, and the exact equivalences where a parameter reduces one
method to another (bit for bit on real MNIST).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import load_config
from mnistexp.learning import losses, targets
from mnistexp.learning.model import init_mlp
from mnistexp.learning.objective import make_objective
from mnistexp.learning.optim import make_optimizer
from mnistexp.learning.outputs import OUTPUTS
from mnistexp.orchestration.experiment import run_experiment
from mnistexp.pipeline.splits import Split
from mnistexp.pipeline.trainer import _epoch, _mix
from tests.conftest import TINY

# --------------------------------------------------------------------------- delta ablations


def _delta(rule: str, loss_sets: list[str], z, t) -> np.ndarray:
    cfg = load_config(None, [f"loss.delta={rule}", *loss_sets])
    objective = make_objective(cfg, z.shape[1])
    a = objective.loss.activate(z)
    return objective.delta(z, a, t, np.empty_like(z))


def test_clamped_delta_by_hand():
    z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])  # predictions 0 and 1
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the second sample is wrong
    got = _delta("clamped", [], z, t)
    np.testing.assert_array_equal(got, [[0.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    # a correct sample gives no error at all; the exact gradient never vanishes
    assert np.abs(_delta("exact", [], z, t)[0]).sum() > 0.1


def test_true_class_delta_by_hand():
    z = np.array([[np.log(2.0), 0.0, 0.0]])  # p = [1/2, 1/4, 1/4]
    t = np.array([[0.0, 1.0, 0.0]])  # true class 1
    got = _delta("true_class", [], z, t)
    np.testing.assert_allclose(got, [[0.0, 0.25 - 1.0, 0.0]], rtol=1e-15)
    exact = _delta("exact", [], z, t)
    np.testing.assert_allclose(exact, [[0.5, -0.75, 0.25]], rtol=1e-15)  # p - t: every class


def test_focal_delta_and_value_by_hand():
    # p = [1/2, 1/4, 1/4], one-hot on class 0, gamma 2: L = -(1/2)^2 log(1/2) = log(2) / 4
    z = np.array([[np.log(2.0), 0.0, 0.0]])
    t = np.array([[1.0, 0.0, 0.0]])
    cfg = load_config(None, ["loss.type=focal", "loss.gamma=2"])
    loss = make_objective(cfg, 3).loss
    p = loss.activate(z)
    assert loss.value(z, p, t) == pytest.approx(np.log(2.0) / 4, rel=1e-15)
    # u_0 = t_0 [g (1 - p) p log p / (1 - p)^(1 - g) ... ] = 2 * (1/2) (1/2) log(1/2) - 1/4
    u0 = 2 * 0.5 * 0.5 * np.log(0.5) - 0.25
    expected = np.array([u0, 0.0, 0.0]) - p[0] * u0
    np.testing.assert_allclose(loss.delta(z, p, t, np.empty_like(z))[0], expected, rtol=1e-14)


def test_focal_flsd53_switches_gamma_at_p_0_2():
    cfg = load_config(None, ["loss.type=focal", "loss.gamma_schedule=flsd53"])
    loss = make_objective(cfg, 2).loss
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    z = np.array([[np.log(0.1 / 0.9), 0.0], [np.log(0.3 / 0.7), 0.0]])  # p_y = 0.1, 0.3
    per_sample = [loss.value(z[i : i + 1], None, t[i : i + 1]) for i in range(2)]
    assert per_sample[0] == pytest.approx(-(0.9**5) * np.log(0.1), rel=1e-12)
    assert per_sample[1] == pytest.approx(-(0.7**3) * np.log(0.3), rel=1e-12)


def test_confidence_penalty_by_hand():
    z = np.zeros((1, 4))  # uniform: H = log 4, CE = log 4
    t = np.array([[0.0, 0.0, 1.0, 0.0]])
    cfg = load_config(None, ["loss.confidence_penalty=0.5"])
    loss = make_objective(cfg, 4).loss
    assert loss.value(z, loss.activate(z), t) == pytest.approx(np.log(4) - 0.5 * np.log(4))
    # at the uniform distribution the entropy is maximal: its gradient vanishes
    d = loss.delta(z, loss.activate(z), t, np.empty_like(z))
    np.testing.assert_allclose(d, [[0.25, 0.25, -0.75, 0.25]], atol=1e-15)


def test_bootstrap_targets_by_hand():
    t = np.array([[0.0, 1.0, 0.0]])
    z = np.array([[np.log(2.0), 0.0, 0.0]])  # p = [1/2, 1/4, 1/4], argmax 0
    for scheme, beta, q in (
        ("bootstrap_soft", 0.95, [0.5, 0.25, 0.25]),
        ("bootstrap_hard", 0.8, [1.0, 0.0, 0.0]),
    ):
        cfg = load_config(None, [f"targets.scheme={scheme}"])
        assert cfg.targets.beta == beta  # the paper's default for each
        got = targets.make_scheme(cfg.targets, 3).batch(t, np.array([1]), z, OUTPUTS["softmax"])
        np.testing.assert_allclose(got, beta * t + (1 - beta) * np.array([q]), rtol=1e-15)


def test_scaled_tanh_output_by_hand():
    tanh = OUTPUTS["tanh"]
    z = np.array([[1.0, -1.0, 0.0]])
    np.testing.assert_allclose(tanh.forward(z), [[1.0, -1.0, 0.0]], atol=2e-5)  # +-1 at +-1
    a = tanh.forward(z)
    slope = tanh.vjp(a, np.ones_like(a))
    np.testing.assert_allclose(slope, 1.7159 * (2 / 3) / np.cosh(2 * z / 3) ** 2, rtol=1e-12)


# --------------------------------------------------------------------------- mixup


def test_mixup_mixes_rows_with_a_permutation_by_one_lambda():
    x = np.arange(12.0).reshape(4, 3)
    t = np.eye(4)
    rng = np.random.default_rng(5)
    lam, partner = np.random.default_rng(5).beta(0.4, 0.4), None
    check = np.random.default_rng(5)
    lam = check.beta(0.4, 0.4)
    partner = check.permutation(4)
    mx, mt = x.copy(), t.copy()
    _mix(mx, mt, rng, 0.4)
    np.testing.assert_allclose(mx, lam * x + (1 - lam) * x[partner], rtol=1e-15)
    np.testing.assert_allclose(mt, lam * t + (1 - lam) * t[partner], rtol=1e-15)
    np.testing.assert_allclose(mt.sum(axis=1), 1.0)


# --------------------------------------------------------------------------- tutorial rules


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _tutorial_reference(w_ih, w_ho, xs, ts, lr, updated):
    """python-course.eu's train() (``updated``) or Rashid's, one sample at a time, in their own
    orientation: weights (out, in), samples as column vectors, error = target - output."""
    w_ih, w_ho = w_ih.copy(), w_ho.copy()
    for x, t in zip(xs, ts, strict=True):
        x, t = x[:, None], t[:, None]
        h = _sig(w_ih @ x)
        o = _sig(w_ho @ h)
        e_o = t - o
        old = w_ho.copy()
        w_ho += lr * (e_o * o * (1 - o)) @ h.T
        e_h = (w_ho if updated else old).T @ e_o
        w_ih += lr * (e_h * h * (1 - h)) @ x.T
    return w_ih, w_ho


def _one_epoch(rule: str, xs, ts, w_ih, w_ho, lr, batch):
    cfg = load_config(
        None,
        [
            "loss.type=mse",
            "loss.output=sigmoid",
            f"train.backprop={rule}",
            "model.bias=false",
            "train.shuffle=false",
            f"train.lr={lr}",
            "train.dtype=float64",
        ],
    )
    model = init_mlp([3, 2, 2], "sigmoid", "xavier", False, np.random.default_rng(0), np.float64)
    model.weights[0][:], model.weights[1][:] = w_ih.T, w_ho.T  # ours are stored (in, out)
    split = Split(xs, ts.argmax(axis=1), ts)
    optimizer = make_optimizer(model.parameters(), cfg.train)
    objective = make_objective(cfg, 2)
    rng = np.random.default_rng(0)
    _epoch(model, objective, optimizer, split, batch, lr, rng, None, shuffle=False)
    return model.weights[0].T, model.weights[1].T


def _tutorial_problem(seed: int):
    """A 3-2-2 network's weights (out, in) and three samples with 0.01/0.99 targets."""
    rng = np.random.default_rng(seed)
    w_ih, w_ho = rng.normal(0, 0.8, (2, 3)), rng.normal(0, 0.8, (2, 2))
    xs = rng.uniform(0.01, 1.0, (3, 3))
    ts = np.array([[0.99, 0.01], [0.01, 0.99], [0.99, 0.01]])
    return w_ih, w_ho, xs, ts


@pytest.mark.parametrize("rule", ["tutorial", "rashid"])
def test_tutorial_rules_equal_the_tutorials_own_code_online(rule):
    w_ih, w_ho, xs, ts = _tutorial_problem(3)
    want = _tutorial_reference(w_ih, w_ho, xs, ts, 0.3, updated=rule == "tutorial")
    got = _one_epoch(rule, xs, ts, w_ih, w_ho, 0.3, batch=1)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)
    if rule == "tutorial":  # and the rules are not the exact gradient
        exact = _one_epoch("exact", xs, ts, w_ih, w_ho, 0.3, batch=1)
        assert not np.allclose(exact[0], got[0], rtol=1e-6)


@pytest.mark.parametrize("rule", ["tutorial", "rashid"])
def test_tutorial_rules_at_a_batch_of_three_by_hand(rule):
    w_ih, w_ho, xs, ts = _tutorial_problem(4)
    lr, m = 0.3, 3
    # the batch-mean form of the same rule: every sample sees the output weights after the
    # batch's (mean) update, as a batch of one sees them after its own
    h = _sig(xs @ w_ih.T)  # (m, hidden)
    o = _sig(h @ w_ho.T)  # (m, out)
    e_o = ts - o
    new_ho = w_ho + lr / m * (e_o * o * (1 - o)).T @ h
    e_h = e_o @ (new_ho if rule == "tutorial" else w_ho)
    new_ih = w_ih + lr / m * (e_h * h * (1 - h)).T @ xs
    got = _one_epoch(rule, xs, ts, w_ih, w_ho, lr, batch=3)
    np.testing.assert_allclose(got[1], new_ho, rtol=1e-13)
    np.testing.assert_allclose(got[0], new_ih, rtol=1e-13)


def test_file_order_visits_the_images_in_order_without_drawing():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    cfg = load_config(None, ["train.shuffle=false"])
    x = np.random.default_rng(1).random((6, 4))
    y = np.array([0, 1, 0, 1, 0, 1])
    split = Split(x, y, np.eye(2)[y])
    model = init_mlp([4, 3, 2], "sigmoid", "xavier", True, np.random.default_rng(2), np.float64)
    _epoch(model, make_objective(cfg, 2), make_optimizer(model.parameters(), cfg.train), split,
           2, 0.1, rng, None, shuffle=False)  # fmt: skip
    assert rng.bit_generator.state == before


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["loss.delta=true_class", "targets.scheme=smooth"], "needs one-hot targets"),
        (["loss.delta=true_class", "loss.type=mse"], "needs loss.type = cross_entropy"),
        (["loss.delta=clamped", "loss.type=mse", "loss.output=sigmoid"], "needs loss.output ="),
        (["train.backprop=tutorial"], "needs loss.type = mse, loss.output = sigmoid"),
        (
            ["train.backprop=rashid", "loss.type=mse", "loss.output=sigmoid", "train.momentum=0.5"],
            "plain SGD",
        ),
        (["train.mixup_alpha=-1"], "train.mixup_alpha = -1.0 is invalid: must be >= 0"),
        (["train.mixup_alpha=0.2", "train.batch_size=1"], "needs train.batch_size >= 2"),
        (["targets.scheme=bootstrap_soft", "targets.beta=1.5"], "must be in [0, 1]"),
        (["loss.type=focal", "loss.gamma=-1"], "loss.gamma = -1.0 is invalid"),
        (["loss.type=focal", "loss.gamma_schedule=flsd"], "choose one of fixed, flsd53"),
        (["loss.confidence_penalty=-0.1"], "must be >= 0"),
        (["loss.type=mse", "loss.output=tanh", "targets.low=-2"], "range of loss.output = tanh"),
        (["loss.type=cross_entropy", "loss.output=tanh"], "use loss.output = softmax"),
    ],
)
def test_combinations_outside_a_rule_give_one_line(sets, message):
    from mnistexp.core.errors import ConfigError

    with pytest.raises(ConfigError, match=None) as info:
        load_config(None, sets)
    assert message in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- equivalences

BUDGET = ["data.train_subset=2000", "data.validation=1000", "train.epochs=1"]


def _metrics(mnist_dir: Path, root: Path, sets: list[str]) -> bytes:
    cfg = load_config(None, [*BUDGET, *sets])
    outcome = run_experiment(cfg, runs_dir=root, data_dir=mnist_dir)
    assert outcome.state == "completed", outcome.message
    return (outcome.run_dir / "metrics.json").read_bytes()


@pytest.mark.mnist
@pytest.mark.slow
@pytest.mark.parametrize(
    ("sets", "reduces_to"),
    [
        (["loss.type=focal", "loss.gamma=0"], []),
        (["loss.type=focal", "loss.gamma=0", "loss.confidence_penalty=0"], []),
        (["targets.scheme=bootstrap_soft", "targets.beta=1"], []),
        (["targets.scheme=bootstrap_hard", "targets.beta=1"], []),
    ],
    ids=["focal-gamma0", "focal-gamma0-penalty0", "bootstrap_soft-beta1", "bootstrap_hard-beta1"],
)
def test_a_parameter_that_reduces_one_method_to_another_gives_the_same_bytes(
    sets, reduces_to, mnist_dir, tmp_path
):
    a = _metrics(mnist_dir, tmp_path / "a", sets)
    b = _metrics(mnist_dir, tmp_path / "b", reduces_to)
    assert config_hash(load_config(None, sets)) != config_hash(load_config(None, reduces_to))
    assert a == b
    assert json.loads(a)["test"]["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("sets", "default"),
    [
        (["loss.confidence_penalty=0"], []),
        (["train.mixup_alpha=0"], []),
        (["train.shuffle=true"], []),
        (["loss.delta=exact", "train.backprop=exact"], []),
    ],
)
def test_settings_at_their_defaults_are_todays_runs(sets, default):
    """The same identity, so the same folder: these settings cannot change a number."""
    assert config_hash(load_config(None, sets)) == config_hash(load_config(None, default))


def test_every_new_choice_is_registered():
    assert {"focal"} <= set(losses.LOSSES)
    assert {"clamped", "true_class"} <= set(losses.DELTAS)
    assert {"bootstrap_soft", "bootstrap_hard"} <= set(targets.TARGETS)
    assert "tanh" in OUTPUTS


# --------------------------------------------------------------------------- distillation


@pytest.fixture
def teacher(tiny: Path, tmp_path: Path) -> Path:
    """A finished run on the tiny dataset, to distil from."""
    cfg = load_config(None, [*TINY, f"data.dir={tiny}", "name=teacher"])
    outcome = run_experiment(cfg, runs_dir=tmp_path / "teachers")
    assert outcome.state == "completed", outcome.message
    return outcome.run_dir


def _student(tiny: Path, teacher: Path, *sets: str):
    return load_config(
        None,
        [*TINY, f"data.dir={tiny}", "name=student", "targets.scheme=distill",
         f"targets.teacher={teacher}", *sets],
    )  # fmt: skip


def test_a_student_learns_from_its_teacher_end_to_end(teacher, tiny, tmp_path):
    for scheme in ("distill", "distill_hard"):
        cfg = _student(tiny, teacher, f"targets.scheme={scheme}", "targets.temperature=3")
        outcome = run_experiment(cfg, runs_dir=tmp_path / "students")
        assert outcome.state == "completed", outcome.message
        assert outcome.metrics["test"]["accuracy"] > 0.3  # chance is 0.1
        stored = (outcome.run_dir / "config.yaml").read_text()
        assert f"teacher_id: {teacher.name.split('-')[1]}" in stored  # hash prefix, then -s0


def test_the_identity_holds_the_teachers_identity_not_its_path(teacher, tiny, tmp_path):
    cfg = _student(tiny, teacher)
    status = json.loads((teacher / "status.json").read_text())
    assert cfg.targets.teacher_id == f"{status['config_hash']}-s0"
    copy = tmp_path / "elsewhere" / teacher.name
    copy.parent.mkdir()
    import shutil

    shutil.copytree(teacher, copy)
    assert config_hash(_student(tiny, copy)) == config_hash(cfg)  # same teacher, other path
    other = run_experiment(
        load_config(None, [*TINY, f"data.dir={tiny}", "name=teacher", "seed=1"]),
        runs_dir=tmp_path / "teachers",
    ).run_dir
    assert config_hash(_student(tiny, other)) != config_hash(cfg)  # another teacher
    from mnistexp.config.identity import IDENTITY_EXCLUDED, identity

    assert "targets.teacher" in IDENTITY_EXCLUDED
    assert "teacher" not in identity(cfg)["targets"]


def test_a_teacher_replaced_after_the_config_was_read_is_refused(teacher, tiny, tmp_path):
    from mnistexp.core.errors import ConfigError

    cfg = _student(tiny, teacher)
    status = json.loads((teacher / "status.json").read_text())
    status["config_hash"] = "0" * 64
    (teacher / "status.json").write_text(json.dumps(status))
    with pytest.raises(ConfigError, match="it was replaced"):
        run_experiment(cfg, runs_dir=tmp_path / "students")
    assert not (tmp_path / "students").exists() or not any((tmp_path / "students").iterdir())


@pytest.mark.parametrize("state", ["running", "interrupted", "failed"])
def test_an_unfinished_teacher_is_refused(teacher, tiny, state):
    from mnistexp.core.errors import ConfigError

    status = json.loads((teacher / "status.json").read_text())
    (teacher / "status.json").write_text(json.dumps(status | {"state": state}))
    with pytest.raises(ConfigError, match=f"the teacher run is {state}, not completed"):
        _student(tiny, teacher)


def test_a_teacher_that_trained_on_the_students_validation_images_is_refused(
    teacher, tiny, tmp_path
):
    from mnistexp.core.errors import ConfigError

    with pytest.raises(ConfigError, match="it trained on images this run validates on"):
        _student(tiny, teacher, "data.validation=200")  # the teacher held out only 100
    # with a training subset the overlap is known only against the data: before the claim
    greedy = run_experiment(
        load_config(None, [*TINY, f"data.dir={tiny}", "name=greedy", "data.validation=50",
                           "data.train_subset=540"]),
        runs_dir=tmp_path / "teachers",
    ).run_dir  # fmt: skip
    with pytest.raises(ConfigError, match="include this run's validation images"):
        run_experiment(_student(tiny, greedy), runs_dir=tmp_path / "students")
    assert not (tmp_path / "students").exists() or not any((tmp_path / "students").iterdir())


@pytest.mark.mnist
@pytest.mark.slow
def test_distillation_with_alpha_0_is_one_hot_bit_for_bit(mnist_dir, tmp_path):
    t = run_experiment(
        load_config(None, [*BUDGET, "name=t"]), runs_dir=tmp_path / "t", data_dir=mnist_dir
    )
    a = _metrics(
        mnist_dir,
        tmp_path / "a",
        ["targets.scheme=distill", f"targets.teacher={t.run_dir}", "targets.alpha=0"],
    )
    b = _metrics(mnist_dir, tmp_path / "b", [])
    assert a == b


def test_a_resumed_student_is_bit_identical(teacher, tiny, tmp_path, monkeypatch):
    """The teacher's outputs are computed again on resume, the same bytes."""
    from tests.test_interrupts import assert_same_results, interrupt_run

    sets = ("train.epochs=4", "targets.temperature=2", "train.mixup_alpha=0.3")
    plain = run_experiment(_student(tiny, teacher, *sets), runs_dir=tmp_path / "a")
    cfg = _student(tiny, teacher, *sets, "train.checkpoint_every=1")
    folder = interrupt_run(monkeypatch, cfg, tmp_path / "b", 2)
    resumed = run_experiment(cfg, runs_dir=tmp_path / "b", resume=True)
    # the interrupt lands as epoch 2's row is written, before its checkpoint: epoch 1's is used
    assert (resumed.state, resumed.message) == ("completed", "resumed from epoch 1")
    assert_same_results(plain.run_dir, folder)


def test_bootstrap_gradient_enters_the_identity_only_when_through():
    base = load_config(None, ["targets.scheme=bootstrap_soft"])
    explicit = load_config(None, ["targets.scheme=bootstrap_soft", "targets.gradient=constant"])
    through = load_config(None, ["targets.scheme=bootstrap_soft", "targets.gradient=through"])
    assert config_hash(explicit) == config_hash(base) != config_hash(through)
    assert base.targets.gradient == "constant"  # the default, as every earlier run trained
