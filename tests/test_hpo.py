"""Search helpers on an SQLite study (the PostgreSQL workers: test_hpo_workers.py)."""
import numpy as np
import pytest

from nnlib import FullyConnectedNet
from nnlib.hpo import (
    finished_trials,
    run_search,
    suggest,
    topology_weights,
    trial_score,
    trials_frame,
)

optuna = pytest.importorskip("optuna")


def blobs(n=200, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((c, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float32)
    return {"X_train": X[:150], "y_train": y[:150], "X_val": X[150:], "y_val": y[150:]}


SEARCH = {"space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
          "fixed": {"hidden_dims": [8], "reg": 0.0}, "num_epochs": 2}


def test_run_search_counts_finished_trials_and_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = run_search("s", url, SEARCH, blobs(), 6, 3, n_trials=3)
    assert len(finished_trials(study)) == 3
    assert study.user_attrs["search"] == SEARCH
    again = run_search("s", url, SEARCH, blobs(), 6, 3, n_trials=4)  # one more, not four
    assert len(finished_trials(again)) == 4
    frame = trials_frame(again, ["learning_rate"])
    assert list(frame.columns) == ["learning_rate", "val_acc", "state", "epochs"]
    assert frame["val_acc"].is_monotonic_decreasing
    assert frame["val_acc"].iloc[0] == max(trial_score(t) for t in again.trials)
    with pytest.raises(ValueError, match="created for another search"):
        run_search("s", url, dict(SEARCH, num_epochs=3), blobs(), 6, 3, n_trials=5)


def test_suggest_layers_and_weights():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    config = suggest(trial, {"hidden_dims": {"type": "layers", "max_layers": 3, "low": 4,
                                             "high": 9},
                             "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    assert len(config["hidden_dims"]) == trial.params["n_layers"]
    assert all(4 <= u <= 9 for u in config["hidden_dims"]) and 0 <= config["dropout"] <= 0.5
    model = FullyConnectedNet(config["hidden_dims"], input_dim=10, num_classes=3)
    assert topology_weights(trial.params, 10, 3) == model.num_params()
    with pytest.raises(ValueError, match="unknown parameter type 'choice' for x"):
        suggest(trial, {"x": {"type": "choice", "low": 0, "high": 1}})


def test_a_repeated_configuration_is_not_trained_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    one_point = {"space": {"learning_rate": {"type": "categorical", "choices": [0.01]}},
                 "fixed": {"hidden_dims": [8]}, "num_epochs": 1}
    study = run_search("d", url, one_point, blobs(), 6, 3, n_trials=2)
    first, second = study.trials
    assert "duplicate_of" not in first.user_attrs
    assert second.user_attrs["duplicate_of"] == 0 and second.value == first.value
