"""The layer table of a Keras network (Q6's summary, the report's architecture table)."""
import pytest

keras = pytest.importorskip("keras")

from nnlib.cnn.summary import layer_table  # noqa: E402


def test_layer_table_of_a_small_network():
    model = keras.Sequential([
        keras.Input((12, 10, 1)),
        keras.layers.Conv2D(4, (3, 5), strides=(1, 2), padding="valid"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax")])
    t = layer_table(model)
    assert t["layer"].tolist() == ["convolution", "max pooling", "dropout", "flatten", "dense"]
    assert t["settings"].tolist() == ["4 filters 3x5, stride 1x2, no padding",
                                      "2x2, stride 2, no padding",
                                      "rate 0.25", "", "3 units, softmax"]
    # 12x10 -> (12-3+1) x ((10-5)//2+1) = 10x3 -> pooled 5x1; 4*(3*5*1)+4 = 64 weights
    assert t["output shape"].tolist() == ["10 x 3 x 4", "5 x 1 x 4", "5 x 1 x 4", "20", "3"]
    assert t["parameters"].tolist() == [64, 0, 0, 0, 20 * 3 + 3]
    assert t["parameters"].sum() == model.count_params()


def test_architecture_table_counts_the_parameters():
    from nnlib.cnn.summary import architecture_table
    t = architecture_table(["tiny", "compact"]).set_index("network")
    assert t.loc["tiny", "filters per block"] == "8-16" and t.loc["tiny", "convs per block"] == 1
    assert t.loc["tiny", "dense units"] == 32 and t.loc["tiny", "dropout"] == 0.2
    # by hand: 3x3 convs without biases, batch norms of 4 per channel, dense and classifier
    tiny = (9 * 1 * 8 + 4 * 8) + (9 * 8 * 16 + 4 * 16) + (16 * 32 + 32 + 4 * 32) + (32 * 7 + 7)
    assert t.loc["tiny", "parameters"] == tiny == 2223
    assert t.loc["compact", "parameters"] == 457_895  # the compact member of the report


def test_kernel_and_blocks_change_the_compact_network_as_counted_by_hand():
    """The ablations "compact, 5x5 kernels" and "compact, three blocks": parameters counted
    by hand (convolutions without biases, 4 batch-norm values per channel)."""
    from nnlib.cnn.models import build_cnn

    def count(filters, k):
        chans = (1, *filters)
        convs = sum(k * k * a * b + 4 * b for a, b in zip(chans[:-1], chans[1:]))
        return convs + (filters[-1] * 256 + 256 + 4 * 256) + (256 * 7 + 7)
    assert count((32, 64, 128, 256), 3) == 457_895
    assert build_cnn("compact", kernel=5).count_params() == count((32, 64, 128, 256), 5)
    three = build_cnn("compact", filters=(32, 64, 128))
    assert three.count_params() == count((32, 64, 128), 3)
    assert three.get_layer("pool3").output.shape[1:3] == (6, 6)  # 48 halved three times
