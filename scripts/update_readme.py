"""Fill the README's generated blocks from report/generated/*.json and the benchmark.

    python scripts/update_readme.py

Blocks sit between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers, so no
number in the README is typed by hand.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from nnlib.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "report" / "generated"


def load(name):
    path = GEN / f"{name}.json" if not name.endswith(".json") else ROOT / name
    return json.loads(path.read_text()) if path.exists() else {}


def pct(v):
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "not run yet"


def minutes(v):
    return f"{v:.0f} min" if isinstance(v, (int, float)) else "-"


def results_block():
    q4, q5, q6, q7 = load("q4"), load("q5"), load("q6"), load("q7")
    f1 = "macro F1 {:.3f}".format
    rows = [
        ("Q4", "CIFAR-10, fully connected (nnlib)", "test", pct(q4.get("test_accuracy")),
         f"validation {pct(q4.get('val_accuracy'))}", minutes(q4.get("train_minutes"))),
        ("Q5", "FER2013, fully connected (nnlib), Optuna-tuned", "PublicTest",
         pct(q5.get("test_accuracy")), f1(q5.get("macro_f1", float("nan"))),
         minutes(q5.get("search_minutes", 0) + q5.get("final_minutes", 0) if q5 else None)),
        ("Q6", "FER2013, CNN ensemble (Keras)", "PublicTest", pct(q6.get("test_accuracy")),
         f1(q6.get("macro_f1", float("nan"))), minutes(q6.get("train_minutes"))
         + (f" ({q6['members_on_gpu']} of {q6['members']} members on a GPU)"
            if q6.get("members_on_gpu") else "")),
    ]
    if q7:
        rows += [
            ("Q7", f"FER2013, fully connected student (nnlib), {q7['fcnet_parameters']:,} "
             "parameters", "PublicTest", pct(q7["fcnet_test_accuracy"]),
             f"{f1(q7['fcnet_macro_f1'])}; {q7['fcnet_images_per_s']:,} images/s",
             minutes(q7["fcnet_minutes"])),
            ("Q7", f"FER2013, small CNN student (Keras), {q7['cnn_parameters']:,} parameters",
             "PublicTest", pct(q7["cnn_test_accuracy"]),
             f"{f1(q7['cnn_macro_f1'])}; {q7['cnn_images_per_s']:,} images/s",
             minutes(q7["cnn_total_minutes"])
             + ("" if q7["cnn_device"].startswith("CPU") else " (its final run on a GPU)"))]
    lines = ["| | model | test split | accuracy | also | training (2 CPU cores unless noted) |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if q6:
        epochs = " + ".join(map(str, q6["epochs_per_member"]))
        lines += ["", f"The CNN is an ensemble of {q6['members']} networks "
                  f"({q6['member_networks']}; {q6['parameters']:,} parameters in all; "
                  f"{epochs} epochs; the members' seeds, starting points and devices in "
                  "the report's Q6 section); test-time views: "
                  f"{q6.get('tta', 'none')}. On two CPU cores the "
                  f"{q6['architecture']} network trains at {q6['speed_nojit']} images/s "
                  f"without XLA and {q6['speed_jit']} with it (jit_compile="
                  f"{q6['jit_compile']}), with fixed batch shapes, steps_per_execution=16, "
                  "one intra-op thread pool over both cores and the augmentation composed "
                  "into one affine warp per image."]
    if q7:
        warped = q7.get("fcnet_variant", "none").startswith("warped")
        variant = (" (trained on the training faces and warped copies of them, all labelled "
                   "by the teacher);" if warped else ",")
        copies = " and their warped copies" if warped else ""
        lines += ["", "The Q7 students learn from the Q6 ensemble's probabilities "
                  "(distillation; temperature and weight chosen on validation: "
                  f"T = {q7['fcnet_temperature']:g}, alpha = {q7['fcnet_alpha']:g} for the "
                  f"MLP{variant} T = {q7['cnn_temperature']:g}, alpha = {q7['cnn_alpha']:g} "
                  "for the CNN, which starts from the ensemble's compact member slimmed to three "
                  "quarters of its filters). Images/s: predicting PublicTest on two CPU "
                  f"cores (fastest of three passes), one view for the CNN (the teacher: "
                  f"{q7['teacher_images_per_s']:,}); the Keras models predict with each batch "
                  "normalisation folded into the layer before it."
                  " Training times include the settings compared and the teacher's labels "
                  f"for the training images{copies} ({q7['teacher_label_minutes']:.0f} min, "
                  "computed once)."]
    return "\n".join(lines)


def bench_block():
    b = load("benchmarks/results.json")
    if not b or "idle" not in b or "nnlib" not in b["idle"]:
        return "Run `make bench` to measure."

    def rate(r):
        return f"{r['median']:,} ({r['low']:,} to {r['high']:,})"

    rows = ["| machine | nnlib `Solver.train` | Keras `fit`, no metric (the same work) | ratio "
            "| Keras `fit`, accuracy metric | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    for case, label in (("idle", "idle"), ("loaded", "one core busy with another process")):
        r = b.get(case)
        if r and "keras_plain" in r:
            rows.append(f"| {label} | {rate(r['nnlib'])} | {rate(r['keras_plain'])} | "
                        f"**{r['ratio_keras_plain']:.2f}x** | {rate(r['keras'])} | "
                        f"{r['ratio_keras']:.2f}x |")
    peak = (f"Idle, nnlib runs at {100 * b['idle']['nnlib_fraction_of_peak']:.0f}% of the "
            f"float32 GEMM peak measured in the same run ({b['sgemm_gflops']} GFLOP/s, "
            f"{b.get('cores', 2)} cores of {b.get('processor', 'an unrecorded processor')})")
    free = b["idle"].get("nnlib_no_update")
    if free:  # the bound a free update sets, as a fraction of the peak, and its rounds
        frac = b["idle"]["no_update_fraction_of_peak"]
        low, high = (frac * free[k] / free["median"] for k in ("low", "high"))
        peak += (f"; with an update rule that does nothing it would run at {100 * frac:.0f}% "
                 f"(rounds {100 * low:.0f}% to {100 * high:.0f}%), the bound that the rest of "
                 "the step (products, the batch's gather, elementwise work, the accuracy "
                 "checks) sets")
    text = [*rows, "", f"Samples/s, the median of {b['rounds']} rounds (lowest to highest), "
            f"the variants interleaved. {peak}."]
    if "products_ceiling" in b["idle"]:
        i = b["idle"]
        text[-1] += (f" The step's matrix products alone, timed apart, run "
                     f"{i['products_ceiling']:,} samples/s: nnlib reaches "
                     f"{100 * i['nnlib_fraction_of_ceiling']:.0f}% of that ceiling, which is "
                     f"{i['products_ceiling'] / i['keras_plain']['median']:.2f}x Keras without "
                     "a metric.")
    fused = [(case, b[case]) for case in ("idle", "loaded")
             if "ratio_nnlib_numpy" in b.get(case, {})]
    if fused:
        text[-1] += (" nnlib's momentum update, compiled into one pass by Numba, against "
                     "NumPy's update (the same bits) in the same run: " + ", ".join(
                         f"{r['ratio_nnlib_numpy']:.2f}x {case} (rounds "
                         f"{r['ratio_nnlib_numpy_rounds'][0]:.2f} to "
                         f"{r['ratio_nnlib_numpy_rounds'][1]:.2f})" for case, r in fused) + ".")
    if "loaded" in b:
        text[-1] += (f" Under load, nnlib with BLAS's own thread count (before its thread "
                     f"policy) ran {b['loaded']['nnlib_blas_default_samples_per_s']:,} "
                     "samples/s.")
    return "\n".join(text)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, block in (("results", results_block()), ("bench", bench_block())):
        text = re.sub(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)",
                      lambda m, b=block: m.group(1) + b + "\n" + m.group(2), text, flags=re.S)
    write_text(readme, text)  # a killed run leaves the old README or the new one


if __name__ == "__main__":
    main()
