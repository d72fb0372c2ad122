import json

import numpy as np
import pytest

from nnlib import FullyConnectedNet, Solver
from nnlib.schedules import make_schedule


def blobs(n, d=20, c=4, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)) * 3
    y = rng.integers(0, c, n)
    X = (centers[y] + spread * rng.standard_normal((n, d))).astype(np.float32)
    return X, y


def data(n_train=400, n_val=100, **kw):
    X, y = blobs(n_train + n_val, **kw)
    return {"X_train": X[:n_train], "y_train": y[:n_train],
            "X_val": X[n_train:], "y_val": y[n_train:]}


def read_state(folder):
    with np.load(folder / "checkpoint.npz", allow_pickle=False) as z:
        return json.loads(str(z["state"]))


def test_overfits_50_samples():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3 * 8 * 8)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    d = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    model = FullyConnectedNet([100, 100], input_dim=192, weight_scale="he", seed=0)
    solver = Solver(model, d, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-2, "momentum": 0.9},
                    num_epochs=20, batch_size=25, verbose=False, seed=0)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert len(solver.loss_history) == 20 * 2
    assert solver.val_loss_history[-1] < solver.val_loss_history[0]


def make_solver(d, tmp=None, **kw):
    model = FullyConnectedNet([32, 16], input_dim=20, num_classes=4, dropout=0.2,
                              weight_scale="he", seed=1)
    opts = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 5e-3, "momentum": 0.5},
                momentum_schedule={"name": "linear", "end": 0.9, "num_epochs": 3},
                lr_schedule={"name": "plateau", "factor": 0.5, "patience": 0},
                num_epochs=6, batch_size=32, verbose=False, seed=3,
                checkpoint_dir=tmp, num_train_samples=100)
    opts.update(kw)
    return Solver(model, d, **opts)


def test_resume_gives_identical_parameters(tmp_path):
    d = data()
    full = make_solver(d).train()
    first = make_solver(d, tmp_path, num_epochs=3).train()
    assert first.epoch == 3
    resumed = make_solver(d, tmp_path, resume=True)
    assert resumed.epoch == 3 and len(resumed.val_acc_history) == 3
    resumed.train()
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    assert resumed.loss_history == full.loss_history
    assert resumed.lr_history == full.lr_history
    state = read_state(tmp_path)
    assert state["epoch"] == 6
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as z:
        assert "optim/W1/velocity" in z.files


def test_resume_sums_training_time_and_refuses_another_run(tmp_path):
    d = data()
    first = make_solver(d, tmp_path, num_epochs=2).train()
    assert first.train_seconds > 0
    saved = read_state(tmp_path)["train_seconds"]
    assert saved == pytest.approx(first.train_seconds, rel=0.5)
    longer = make_solver(d, tmp_path, num_epochs=3, resume=True)  # extending is allowed
    assert longer.train_seconds == saved
    longer.train()
    assert longer.epoch == 3 and longer.train_seconds > saved
    with pytest.raises(ValueError, match=r"another run.*optim_config.*delete it"):
        make_solver(d, tmp_path, resume=True,
                    optim_config={"learning_rate": 1e-2, "momentum": 0.5})
    with pytest.raises(ValueError, match=r"another run.*seed"):
        make_solver(d, tmp_path, resume=True, seed=4)


def test_same_seed_same_numbers():
    d = data()
    a, b = make_solver(d).train(), make_solver(d).train()
    assert a.loss_history == b.loss_history
    c = make_solver(d, seed=4).train()
    assert c.loss_history != a.loss_history


def test_best_parameters_and_early_stopping():
    d = data(spread=4.0)
    solver = make_solver(d, num_epochs=50, patience=3, lr_schedule=None,
                         optim_config={"learning_rate": 0.05, "momentum": 0.9})
    solver.train()
    assert solver.stop_reason and "early stopping" in solver.stop_reason
    assert solver.epoch < 50
    assert solver.epoch - solver.best_epoch == 3
    assert solver.best_val == max(solver.val_acc_history)
    acc = solver.check_accuracy(d["X_val"], d["y_val"])
    assert acc == solver.best_val  # the model holds the best parameters


def test_nan_loss_stops_and_keeps_best_parameters():
    d = data()
    solver = make_solver(d, num_epochs=3, lr_schedule=None)
    solver.train()
    best = {k: v.copy() for k, v in solver.model.params.items()}
    solver.num_epochs = 6
    solver.optim_configs = {k: dict(c, learning_rate=1e12) for k, c in
                            solver.optim_configs.items()}
    with pytest.warns(RuntimeWarning, match="lower the learning rate"):
        solver.train()
    assert "loss became" in solver.stop_reason
    assert len(solver.val_acc_history) == 3  # histories are kept
    for k in best:
        np.testing.assert_array_equal(solver.model.params[k], best[k])


def test_step_and_exponential_schedules_change_the_learning_rate():
    d = data()
    s = make_solver(d, lr_schedule={"name": "step", "step_size": 2, "gamma": 0.1},
                    momentum_schedule=None).train()
    assert np.allclose(s.lr_history, [5e-3, 5e-3, 5e-4, 5e-4, 5e-5, 5e-5])
    s = make_solver(d, lr_schedule=None, lr_decay=0.5, num_epochs=3).train()
    assert np.allclose(s.lr_history, [5e-3, 2.5e-3, 1.25e-3])
    ramp = make_schedule({"name": "linear", "end": 0.9, "num_epochs": 4}, 0.5)
    assert np.allclose([ramp(e) for e in range(6)], [0.5, 0.6, 0.7, 0.8, 0.9, 0.9])


def test_epoch_callback_can_stop_training(tmp_path):
    class Stop(Exception):
        pass

    def cb(solver):
        if solver.epoch == 2:
            raise Stop
    solver = make_solver(data(), tmp_path, epoch_callback=cb)
    with pytest.raises(Stop):
        solver.train()
    assert read_state(tmp_path)["epoch"] == 2


def test_bad_options_and_data_raise_clear_errors(tmp_path):
    d = data()
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        make_solver(d, learning_rate=1e-3)
    with pytest.raises(ValueError, match="unknown update rule"):
        make_solver(d, update_rule="sgd_with_magic")
    with pytest.raises(ValueError, match="missing"):
        make_solver({"X_train": d["X_train"], "y_train": d["y_train"]})
    with pytest.raises(ValueError, match="X_train has 400 samples but y_train has 399"):
        make_solver(dict(d, y_train=d["y_train"][:-1]))
    with pytest.raises(ValueError, match="labels must lie"):
        make_solver(dict(d, y_train=d["y_train"] + 10))
    with pytest.raises(ValueError, match="unknown schedule"):
        make_solver(d, lr_schedule={"name": "zigzag"})
    make_solver(d, tmp_path, num_epochs=1).train()
    with pytest.raises(ValueError, match="another run.*model"):
        Solver(FullyConnectedNet([5], input_dim=20, num_classes=4), d,
               checkpoint_dir=tmp_path, resume=True, verbose=False)


def test_non_finite_or_misshapen_data_fail_before_training():
    d = data()
    X_val = d["X_val"].copy()
    X_val[3, 5] = np.nan
    X_val[7, 0] = -np.inf
    with pytest.raises(ValueError, match=r"^Solver: X_val contains 2 NaN or inf values; "
                                         "clean or impute the data before training"):
        make_solver(dict(d, X_val=X_val))
    X_train = d["X_train"].copy()
    X_train[0, 0] = np.inf
    with pytest.raises(ValueError, match="^Solver: X_train contains 1 NaN"):
        make_solver(dict(d, X_train=X_train))
    with pytest.raises(ValueError, match=r"^Solver: the samples of X_val have shape \(4, 5\) "
                                         r"but those of X_train \(20,\); give both splits the "
                                         "same preprocessing$"):
        make_solver(dict(d, X_val=d["X_val"].reshape(-1, 4, 5)))
    ints = {k: (v.astype(np.int16) if k.startswith("X") else v) for k, v in d.items()}
    assert make_solver(ints, num_epochs=1).train().epoch == 1  # integers hold no NaN


def test_check_accuracy_passes_its_sample_and_batch_sizes():
    d = data()
    s = make_solver(d, num_epochs=1).train()
    sizes = []
    real = s.model.loss

    def loss(X, y=None):
        sizes.append(len(X))
        return real(X, y)
    s.model.loss = loss
    pred = real(d["X_val"]).argmax(axis=1)
    assert s.check_accuracy(d["X_val"], d["y_val"], batch_size=40) == np.mean(pred == d["y_val"])
    assert sizes == [40, 40, 20]
    sizes.clear()
    s.check_accuracy(d["X_val"], d["y_val"], num_samples=30, batch_size=7)
    assert sizes == [7, 7, 7, 7, 2]
