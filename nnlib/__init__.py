"""nnlib: a small NumPy-only neural-network library (layers, softmax, a fully connected
net, update rules and a Solver), with data loaders and evaluation helpers."""
from nnlib.classifiers import (
    distillation_loss,
    soft_cross_entropy,
    soft_labels,
    soften,
    softmax,
)
from nnlib.fcnet import FullyConnectedNet
from nnlib.gradient_check import (
    check_model_gradients,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
    rel_error_norm,
)
from nnlib.io import load_model, save_model
from nnlib.layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
)
from nnlib.optim import UPDATE_RULES, adam, nesterov_momentum, rmsprop, sgd, sgd_momentum
from nnlib.preprocess import Preprocessor, random_flip_shift, random_hflip
from nnlib.solver import Solver

__version__ = "0.1.0"

__all__ = [
    "FullyConnectedNet", "Preprocessor", "Solver", "UPDATE_RULES", "adam",
    "check_model_gradients", "distillation_loss", "dropout_backward", "dropout_forward",
    "eval_numerical_gradient", "eval_numerical_gradient_array", "linear_backward",
    "linear_forward", "load_model", "nesterov_momentum", "random_flip_shift", "random_hflip",
    "rel_error", "rel_error_norm", "relu_backward", "relu_forward", "rmsprop", "save_model", "sgd",
    "sgd_momentum", "soft_cross_entropy", "soft_labels", "soften", "softmax",
]
