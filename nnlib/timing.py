"""How fast a model predicts, measured as ``timeit`` advises on a machine shared with
other work: the fastest of a few passes, after a warm-up."""
from __future__ import annotations

import time


def timed_predictions(predict, images, repeats=3, long_pass=20.0):
    """Class ids of ``images`` under ``predict`` (images -> ids) and its images/s: the
    fastest of ``repeats`` timed passes (one where a pass takes over ``long_pass``
    seconds), the one least slowed by other work. A warm-up on batches of the sizes timed
    (whole batches of 256 and the last, partial one) comes first: each new batch size is
    traced once by Keras, which is not prediction."""
    predict(images[:256 + len(images) % 256])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        pred = predict(images)
        rates.append(len(images) / (time.perf_counter() - start))
        if len(images) / rates[-1] > long_pass:
            break
    return pred, max(rates)
