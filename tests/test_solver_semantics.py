"""What the Solver promises, checked with models and update rules written here."""
import functools
import json

import numpy as np
import pytest

from nnlib import FullyConnectedNet, Solver, check_model_gradients
from nnlib.optim import adam, sgd


class Recorder:
    """A model that learns nothing and records every training batch; its validation
    accuracy at epoch e is ``val_accs[e - 1]`` (the first ``round(acc * n)`` rows right)."""

    num_classes = 2

    def __init__(self, val_accs=(0.5,)):
        self.params = {"w": np.zeros(3)}
        self.batches = []
        self.val_accs = list(val_accs)
        self.epoch = 0

    def loss(self, X, y=None):
        if y is None:
            scores = np.zeros((len(X), 2))
            right = X[:, 0] < self.val_accs[min(self.epoch, len(self.val_accs) - 1)] * 1000
            scores[np.arange(len(X)), np.where(right, X[:, 1], 1 - X[:, 1]).astype(int)] = 1
            return scores
        self.batches.append(X[:, 0].copy())
        return 0.0, {"w": np.zeros(3)}


def recorder_data(n=40, nv=100):
    X = np.zeros((n, 2), np.float32)
    X[:, 0] = np.arange(n)
    Xv = np.zeros((nv, 2), np.float32)
    Xv[:, 0] = np.arange(nv) * 1000 / nv + 1e-3  # row i is right while acc > i / nv
    yv = np.arange(nv) % 2
    Xv[:, 1] = yv
    return {"X_train": X, "y_train": np.arange(n) % 2, "X_val": Xv, "y_val": yv}


def read_state(folder):
    with np.load(folder / "checkpoint.npz", allow_pickle=False) as z:
        return json.loads(str(z["state"]))


def run(model, data, **kw):
    def advance(solver):
        model.epoch = solver.epoch
    opts = dict(optim_config={"learning_rate": 1.0}, batch_size=10, verbose=False, seed=0,
                epoch_callback=advance)
    return Solver(model, data, **{**opts, **kw}).train()


def test_each_epoch_visits_every_sample_once_in_a_new_order():
    model = Recorder()
    run(model, recorder_data(), num_epochs=3)
    epochs = [np.concatenate(model.batches[i:i + 4]) for i in range(0, 12, 4)]
    for order in epochs:
        assert sorted(order) == list(range(40))
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])


def test_evaluation_subsamples_never_change_the_training_batches():
    a, b = Recorder(), Recorder()
    run(a, recorder_data(), num_epochs=3, num_train_samples=5)
    run(b, recorder_data(), num_epochs=3, num_train_samples=30, num_val_samples=50)
    for x, y in zip(a.batches, b.batches):
        np.testing.assert_array_equal(x, y)


def test_min_delta_and_patience():
    accs = [0.50, 0.55, 0.56, 0.57, 0.58, 0.60, 0.61]
    s = run(Recorder(accs), recorder_data(), num_epochs=7, patience=2, min_delta=0.025)
    # 0.56 and 0.57 improve on 0.55 by less than 0.025: two bad epochs, stop at epoch 4
    assert s.val_acc_history == pytest.approx(accs[:4])
    assert s.epoch == 4 and s.best_epoch == 2 and s.best_val == pytest.approx(0.55)
    s = run(Recorder(accs), recorder_data(), num_epochs=7, patience=2)
    assert s.epoch == 7 and s.best_epoch == 7 and s.stop_reason is None


def test_monitoring_the_validation_loss():
    accs = [0.5, 0.9, 0.6]
    s = run(Recorder(accs), recorder_data(), num_epochs=3, monitor="val_loss")
    assert s.best_epoch == int(np.argmin(s.val_loss_history)) + 1


def recording_rule(log):
    def rule(w, dw, config):
        log.append((config.get("learning_rate"), config.get("momentum")))
        config.setdefault("learning_rate", 0.123)
        return sgd(w, dw, config)
    return rule


def test_schedules_reach_the_update_rule_every_epoch():
    log = []
    run(Recorder(), recorder_data(), num_epochs=4, update_rule=recording_rule(log),
        optim_config={"learning_rate": 0.8, "momentum": 0.5},
        lr_schedule={"name": "step", "step_size": 1, "gamma": 0.5},
        momentum_schedule={"name": "linear", "end": 0.9, "num_epochs": 2})
    per_epoch = log[::4]  # 4 batches an epoch, one parameter
    assert np.allclose(per_epoch, [(0.8, 0.5), (0.4, 0.7), (0.2, 0.9), (0.1, 0.9)])


def test_only_given_values_are_written_into_the_rule_config():
    log = []
    s = run(Recorder(), recorder_data(), num_epochs=2, update_rule=recording_rule(log),
            optim_config={})
    assert log[0] == (None, None)  # the rule's own defaults apply
    assert s.lr_history == [0.123, 0.123]
    assert s.learning_rate_at(5) == 0.123  # asked of the rule itself
    model = FullyConnectedNet([4], input_dim=2, num_classes=2, seed=0)
    d = dict(recorder_data(), y_train=np.arange(40) % 2)
    adam_solver = Solver(model, d, update_rule="adam", num_epochs=1, verbose=False)
    adam_solver.train()
    assert adam_solver.lr_history == [1e-3]  # Adam's default, not another rule's
    assert adam_solver.learning_rate_at(5) == 1e-3
    stepped = Solver(FullyConnectedNet([4], input_dim=2, num_classes=2, seed=0), d,
                     update_rule=adam, lr_schedule={"name": "step", "step_size": 1,
                                                    "gamma": 0.1}, num_epochs=2, verbose=False)
    stepped.train()
    assert stepped.lr_history == pytest.approx([1e-3, 1e-4])  # from Adam's 1e-3
    assert stepped.learning_rate_at(0) == pytest.approx(1e-3)


def blobs(n=200, d=8, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((c, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float64)
    return X, y


def test_training_and_validation_losses_are_both_data_losses():
    X, y = blobs()
    model = FullyConnectedNet([16], input_dim=8, num_classes=3, reg=1.0, weight_scale="he",
                              seed=0, dtype=np.float64)
    W = [model.params[k].copy() for k in ("W1", "W2")]
    s = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
               update_rule="sgd", optim_config={"learning_rate": 1e-300}, batch_size=200,
               num_epochs=1, verbose=False, seed=0)
    s.train()
    reg = 0.5 * sum(float((w ** 2).sum()) for w in W)
    assert s.reg_loss_history[0] == pytest.approx(reg)
    assert s.train_loss_history[0] == pytest.approx(s.val_loss_history[0], rel=1e-9)
    assert s.loss_history[0] == pytest.approx(s.val_loss_history[0] + reg, rel=1e-9)
    scores = X @ W[0]
    scores = np.maximum(scores, 0) @ W[1]
    logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    assert s.val_loss_history[0] == pytest.approx(-logp[np.arange(200), y].mean())


def test_print_every_and_checkpoint_name(tmp_path, capsys):
    X, y = blobs()
    model = FullyConnectedNet([8], input_dim=8, num_classes=3, seed=0)
    Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
           optim_config={"learning_rate": 1e-2}, batch_size=20, num_epochs=2,
           print_every=4, checkpoint_name=str(tmp_path / "run"), verbose=True).train()
    out = capsys.readouterr().out
    assert [line.split(")")[0] for line in out.splitlines() if "Iteration" in line] == [
        f"(Iteration {i}" for i in (4, 8, 12, 16, 20)]
    assert "(Epoch 2 / 2)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_epoch_1.npz", "run_epoch_2.npz"]
    again = Solver(FullyConnectedNet([8], input_dim=8, num_classes=3, seed=0),
                   {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                   optim_config={"learning_rate": 1e-2}, batch_size=20, verbose=False)
    again.load_checkpoint(tmp_path / "run_epoch_1.npz")
    assert again.epoch == 1


def test_best_val_acc_and_check_accuracy_return_accuracies():
    X, y = blobs()
    s = Solver(FullyConnectedNet([8], input_dim=8, num_classes=3, seed=0),
               {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
               optim_config={"learning_rate": 1e-2}, num_epochs=2, verbose=False).train()
    assert s.best_val_acc == max(s.val_acc_history)
    acc = s.check_accuracy(X, y)
    assert isinstance(acc, float) and acc == np.mean(s.model.predict(X) == y)


def test_gradient_check_of_a_dropout_network():
    X, y = blobs(n=5)
    model = FullyConnectedNet([7, 6], input_dim=8, num_classes=3, dropout=0.3, reg=0.1,
                              weight_scale="he", dtype=np.float64, seed=0)
    errors = check_model_gradients(model, X, y)
    assert max(errors.values()) < 1e-6
    assert model.dropout_seed is None  # the masks are fixed only while checking
    first, second = model.loss(X, y)[0], model.loss(X, y)[0]
    assert first != second  # outside the check each call draws new masks
    with model.fixed_dropout(seed=3):
        assert model.loss(X, y)[0] == model.loss(X, y)[0]


def test_coursework_seeded_dropout_masks():
    """dropout_seed=s: every layer's mask is that of RandomState(s).rand(...) > p."""
    X, y = blobs(n=4)
    model = FullyConnectedNet([5], input_dim=8, num_classes=3, dropout=0.5, reg=0.0,
                              weight_scale="he", dtype=np.float64, seed=0, dropout_seed=7)
    W1, b1, W2, b2 = (model.params[k] for k in ("W1", "b1", "W2", "b2"))
    h = np.maximum(X @ W1 + b1, 0)
    h = h * (np.random.RandomState(7).rand(*h.shape) > 0.5) / 0.5
    scores = h @ W2 + b2
    logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    assert model.loss(X, y)[0] == pytest.approx(-logp[np.arange(4), y].mean())


def test_documented_defaults_and_boundaries(capsys):
    d = recorder_data()
    s = Solver(Recorder(), d)
    assert (s.num_epochs, s.batch_size, s.num_train_samples, s.num_val_samples,
            s.eval_batch_size, s.lr_decay, s.monitor, s.patience, s.min_delta) == (
        10, 100, 1000, None, 1000, 1.0, "val_acc", None, 0.0)
    assert (s.resume, s.verbose, s.augment, s.print_every, s.seed) == (False, True, None,
                                                                      None, None)
    assert s.update_rule is sgd and s.optim_config == {}
    # the smallest allowed values are allowed
    Solver(Recorder(), d, num_epochs=0, batch_size=1, eval_batch_size=1, num_train_samples=1,
           num_val_samples=1, patience=0, print_every=1, lr_decay=1.0, verbose=False).train()
    for bad in ({"num_val_samples": 0}, {"eval_batch_size": 0}, {"print_every": 0},
                {"lr_decay": 1.5}, {"batch_size": True}, {"monitor": "accuracy"}):
        with pytest.raises(ValueError, match="Solver: (.* must|monitor must be one of "
                                             r"\['val_acc', 'val_loss'\], got 'accuracy')"):
            Solver(Recorder(), d, **bad)
    with pytest.raises(ValueError, match="num_val_samples must be an integer >= 1 or None, "
                                         "got 0"):
        Solver(Recorder(), d, num_val_samples=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        Solver(Recorder(), d, batch_size=0)
    with pytest.raises(ValueError, match=r"the momentum schedule's value must lie in \[0, 1\)"):
        Solver(Recorder(), d, update_rule="sgd_momentum",
               momentum_schedule={"name": "linear", "base": 1.0, "end": 0.5})
    with pytest.raises(ValueError, match=r"the momentum schedule's value must lie in \[0, 1\)"):
        Solver(Recorder(), d, update_rule="sgd_momentum",
               momentum_schedule={"name": "linear", "base": 0.5, "end": 1.0,
                                  "num_epochs": 10 ** 5})
    capsys.readouterr()
    run(Recorder(), d, num_epochs=2, verbose=True)
    err = capsys.readouterr().err
    assert "8/8" in err and "batch" in err  # 2 epochs of 4 batches on the terminal
    run(Recorder(), d, num_epochs=2, verbose=False)
    assert capsys.readouterr().err == ""
    done = Solver(Recorder(), d, num_epochs=2, verbose=True)
    done.train()
    capsys.readouterr()
    done.train()  # every epoch run already (as a finished checkpoint resumes): no empty bar
    assert "batch" not in capsys.readouterr().err


def test_generators_are_seeded_and_separate():
    d = recorder_data()
    a, b, c = (Solver(Recorder(), d, seed=s, verbose=False) for s in (3, 3, 4))
    assert a.eval_rng.random() == b.eval_rng.random() != c.eval_rng.random()
    assert a.rng.random() != a.eval_rng.random()
    assert np.random.default_rng(3).random() == Solver(Recorder(), d, seed=3).rng.random()


def test_lr_decay_and_the_plateau_mode_follow_the_options():
    log = []
    run(Recorder(), recorder_data(), num_epochs=3, update_rule=recording_rule(log),
        optim_config={"learning_rate": 0.8}, lr_decay=0.5)
    assert [lr for lr, _ in log[::4]] == pytest.approx([0.8, 0.4, 0.2])
    log.clear()
    run(Recorder(), recorder_data(), num_epochs=3, update_rule=recording_rule(log),
        optim_config={"learning_rate": 0.8})
    assert [lr for lr, _ in log[::4]] == [0.8, 0.8, 0.8]
    s = Solver(Recorder(), recorder_data(), monitor="val_loss", lr_schedule={"name": "plateau"})
    assert s._lr_schedule.options["mode"] == "min"
    s = Solver(Recorder(), recorder_data(), lr_schedule={"name": "plateau", "mode": "max"},
               monitor="val_loss")
    assert s._lr_schedule.options["mode"] == "max"  # a given mode wins


def test_a_solver_shows_its_progress_not_its_address():
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((30, 4)), "y_train": rng.integers(0, 3, 30),
            "X_val": rng.standard_normal((10, 4)), "y_val": rng.integers(0, 3, 10)}
    solver = Solver(FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0), data,
                    update_rule="sgd_momentum", num_epochs=2, batch_size=10, verbose=False)
    assert repr(solver) == "Solver(sgd_momentum, epoch 0/2, not trained yet)"
    solver.train()
    assert repr(solver) == (f"Solver(sgd_momentum, epoch 2/2, best validation accuracy "
                            f"{max(solver.val_acc_history):.4f} at epoch {solver.best_epoch})")


EXTENDED = [0.50, 0.60, 0.55, 0.55, 0.58, 0.59, 0.70, 0.65, 0.65, 0.65, 0.66]


def test_an_early_stopped_run_goes_on_when_asked_for_more():
    model = Recorder(EXTENDED)
    s = run(model, recorder_data(), num_epochs=6, patience=2)
    assert (s.epoch, s.best_epoch, s.bad_epochs) == (4, 2, 2)
    assert s.stop_reason == ("early stopping: val_acc has not improved for 2 epochs "
                             "(best 0.6000 at epoch 2)")
    s.train()  # the same options: it stays stopped
    assert s.epoch == 4 and len(model.batches) == 16
    s.num_epochs = 10  # more epochs: the patience counter restarts at zero
    s.train()
    assert s.epoch == 6 and len(model.batches) == 24 and s.bad_epochs == 2
    assert s.val_acc_history == pytest.approx(EXTENDED[:6])
    assert (s.best_epoch, s.best_val) == (2, pytest.approx(0.6))
    assert s.stop_reason.endswith("(best 0.6000 at epoch 2)")
    s.patience = 3  # more patience, as many epochs: on again
    s.train()
    assert (s.epoch, s.best_epoch, s.bad_epochs) == (10, 7, 3)
    assert s.stop_reason.startswith("early stopping: val_acc has not improved for 3 epochs")
    s.patience = 4  # no epochs left: nothing changes
    s.train()
    assert s.epoch == 10 and s.stop_reason.endswith("(best 0.7000 at epoch 7)")
    s.num_epochs, s.patience = 11, None  # no early stopping at all
    s.train()
    assert s.epoch == 11 and s.stop_reason is None and s.bad_epochs == 1


def test_resuming_an_early_stopped_run_with_more_epochs_goes_on(tmp_path):
    d = recorder_data()
    memory = run(Recorder(EXTENDED), d, num_epochs=6, patience=2)
    memory.num_epochs = 10
    memory.train()
    run(Recorder(EXTENDED), d, num_epochs=6, patience=2, checkpoint_dir=tmp_path)
    state = read_state(tmp_path)
    assert state["stopped_under"] == [6, 2] and state["bad_epochs"] == 2
    model = Recorder(EXTENDED)
    model.epoch = 4
    same = run(model, d, num_epochs=6, patience=2, checkpoint_dir=tmp_path, resume=True)
    assert same.epoch == 4 and model.batches == []  # stays stopped
    more = run(model, d, num_epochs=10, patience=2, checkpoint_dir=tmp_path, resume=True)
    assert more.epoch == 6 and len(model.batches) == 8
    for h in ("val_acc_history", "loss_history", "lr_history"):
        assert getattr(more, h) == getattr(memory, h)
    assert (more.stop_reason, more.best_epoch) == (memory.stop_reason, 2)
    assert read_state(tmp_path)["stopped_under"] == [10, 2]


def test_a_diverged_run_stays_stopped():
    class Diverging(Recorder):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            return out if y is None or self.epoch < 1 else (float("nan"), out[1])
    model = Diverging()
    with pytest.warns(RuntimeWarning, match=r"^loss became nan at epoch 2, iteration 1: "
                                            r"training stopped and the best parameters \(epoch "
                                            r"1\) were kept; lower the learning rate"):
        s = run(model, recorder_data(), num_epochs=3, patience=1)
    assert s.epoch == 1 and s.stop_reason.startswith("loss became nan")
    s.num_epochs, s.patience = 6, None
    s.train()
    assert s.epoch == 1 and len(model.batches) == 5  # 4 of epoch 1 and the diverging one


def test_momentum_at_and_a_rule_without_a_name():
    d = recorder_data()
    s = Solver(Recorder(), d, update_rule="sgd_momentum", optim_config={"momentum": 0.0},
               momentum_schedule={"name": "linear", "base": 0.5, "end": 0.9, "num_epochs": 4})
    assert [s.momentum_at(e) for e in (0, 2, 4, 9)] == pytest.approx([0.5, 0.7, 0.9, 0.9])
    assert Solver(Recorder(), d, update_rule="sgd_momentum").momentum_at(3) == 0.9  # the rule's
    assert Solver(Recorder(), d, update_rule="sgd_momentum",
                  optim_config={"momentum": 0.25}).momentum_at(3) == 0.25
    rule = functools.partial(sgd)  # a callable without __name__
    s = Solver(Recorder(), d, update_rule=rule, verbose=False)
    assert repr(s) == f"Solver({rule}, epoch 0/10, not trained yet)"
