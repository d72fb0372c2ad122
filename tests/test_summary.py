"""The layer table of a FullyConnectedNet."""
from nnlib import FullyConnectedNet
from nnlib.summary import fcnet_layers


def test_fcnet_layers_count_each_weight_and_bias():
    net = FullyConnectedNet([5, 3], input_dim=4, num_classes=2, dropout=0.25, seed=0)
    t = fcnet_layers(net)
    assert t["layer"].tolist() == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                   "Linear", "Softmax"]
    assert t["parameters"].tolist() == [4 * 5 + 5, 0, 0, 5 * 3 + 3, 0, 0, 3 * 2 + 2, 0]
    assert t["parameters"].sum() == net.num_params() == sum(p.size for p in net.params.values())
    assert t["output shape"].tolist() == [5, 5, 5, 3, 3, 3, 2, 2]
    assert "Dropout" not in fcnet_layers(FullyConnectedNet([5], input_dim=4,
                                                           num_classes=2))["layer"].tolist()
