"""The budgets of the notebooks that train CNNs (Q6, Q7), per profile ("full": the
results; "smoke": minutes), defined once for the notebooks and the scripts that train
their long runs elsewhere (``scripts/train_q6_member.py``, ``scripts/train_q7_student.py``):
a run trained by a script is read back by the notebook only if both use the same
settings. A notebook picks its profile's budget with ``nnlib.export.choose_budget``."""
from __future__ import annotations

from nnlib.cnn.recipes import ABLATIONS, COMPARED, CONTROLS, MEMBER_DEFAULTS

# Q6's ensemble members, one per seed (``seed``, else the place in the list): from scratch,
# or a warm restart from member ``init`` at a lower learning rate. ``arch``: the members of
# the full profile use the architecture that the comparison chose when they were trained
# (compact: the most accurate that trains the first member within ``hours`` on two CPU
# cores), fixed here so that a slower or busier machine reads them back instead of training
# others; the smoke profile takes the comparison's choice.
WARM = dict(lr=3e-4)
CPU = dict(arch="compact")
# larger networks of the same design, trained on a GPU machine for longer (patience 50)
# with scripts/train_q6_member.py; seed 7 was stopped by the machine's time limit. Seed 6
# is unused: a vgg_small run on this CPU, given up after 15 of its 32 epochs once the GPU
# machine trained that network (seed 8); the later members keep their seeds
GPU = dict(patience=50)
# Two studies of candidates (``compare_candidates``), each trained alike on ``fraction`` of
# the training faces: the comparison of architectures and settings, and the ablations:
# "compact" and its variants that change one design choice each, on a short budget (half
# the faces, 8 epochs, two seeds: what two CPU cores allow for twenty runs)
Q6_BUDGETS = {
    # each study also trains, alike, a fully connected network (Q6's like-for-like control)
    "full": dict(comparison=dict(fraction=1.0, epochs=30, seeds=[0, 1, 2],
                                 candidates=COMPARED + CONTROLS),
                 ablation=dict(fraction=0.5, epochs=8, seeds=[0, 1],
                               candidates=ABLATIONS + CONTROLS),
                 patience=20, hours=4,
                 members=[dict(epochs=80, **CPU), dict(epochs=35, **CPU),
                          dict(epochs=8, init=0, **CPU, **WARM),
                          dict(epochs=8, init=0, **CPU, **WARM), dict(epochs=65, **CPU),
                          dict(epochs=8, init=4, **CPU, **WARM),
                          dict(seed=7, arch="vgg", epochs=171, **GPU),
                          dict(seed=8, arch="vgg_small", epochs=290, **GPU),
                          dict(seed=9, arch="vgg_small", epochs=8, init=8, **WARM),
                          dict(seed=10, arch="vgg", epochs=6, init=7, **WARM)]),
    "smoke": dict(comparison=dict(fraction=0.5, epochs=1, seeds=[0], candidates=["tiny"]),
                  ablation=dict(fraction=0.5, epochs=1, seeds=[0],
                                candidates=["compact", "compact, SGD"]),
                  patience=2, hours=None,
                  members=[dict(epochs=2), dict(epochs=2), dict(epochs=1, init=0, **WARM)]),
}

Q7_BUDGETS = {
    # (temperature, alpha): alpha = 0 is training on the true classes alone
    # the MLP: (temperature, alpha, variant of Q5's recipe; None: Q5's recipe as it is)
    "full": dict(fcnet_grid=[(2.0, 0.5, None), (4.0, 0.5, None), (4.0, 0.9, None),
                             (2.0, 0.5, "shift2"), (2.0, 0.5, "2048-1024"),
                             (2.0, 0.5, "from_q5"), (2.0, 0.5, "warped"),
                             (2.0, 0.5, "warped2"),
                             # the same warped faces on the true classes alone: what the
                             # augmentation gives without the teacher's labels
                             (1.0, 0.0, "warped2")],
                 cnn_grid=[(1.0, 0.0), (2.0, 0.5), (4.0, 0.5), (4.0, 0.9)],
                 probe_epochs=3, cnn_epochs=30, fcnet_epochs=None,
                 # the chosen setting, and the control, for 150 epochs on a GPU machine
                 # (scripts/train_q7_student.py with Keras's JAX backend; read back by the
                 # notebook)
                 gpu_runs=[dict(epochs=150, patience=50),
                           dict(epochs=150, patience=50, control=True)]),
    "smoke": dict(fcnet_grid=[(4.0, 0.5, None), (4.0, 0.5, "warped")],
                  cnn_grid=[(1.0, 0.0), (4.0, 0.5)],
                  probe_epochs=1, cnn_epochs=1, fcnet_epochs=2, gpu_runs=[]),
}
# Q7's CNN student: Q6's compact member ``START_SEED`` slimmed to ``STUDENT_ARCH``
STUDENT_ARCH, START_ARCH, START_SEED = "small", "compact", 0


def q6_budget(profile, members=None, compare_epochs=None):
    """``Q6_BUDGETS[profile]`` with the notebook's parameters applied: only the first
    ``members`` members (None: all), and the comparison's runs ``compare_epochs`` long
    (None: the profile's)."""
    budget = dict(Q6_BUDGETS[profile], members=Q6_BUDGETS[profile]["members"][:members])
    if compare_epochs is not None:
        budget["comparison"] = dict(budget["comparison"], epochs=compare_epochs)
    return budget


def member_specs(budget, arch):
    """The specs ``train_member`` trains the members of a Q6 ``budget`` with, in its
    order: each member's seed (its place in the list unless it names one), ``arch`` unless
    it names one, the budget's patience, then ``MEMBER_DEFAULTS``; its own keys first."""
    return [{**MEMBER_DEFAULTS, "seed": place, "arch": arch, "patience": budget["patience"],
             **spec} for place, spec in enumerate(budget["members"])]
