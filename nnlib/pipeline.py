"""Re-execute the numbered notebooks with papermill, in order, in place.

    python -m nnlib.pipeline --profile full            # every notebook (about an hour)
    python -m nnlib.pipeline --profile smoke --only Q1 Q4
    python -m nnlib.pipeline --only Q5 -p storage postgresql://user@host:port/db

Stops at the first failing cell with the notebook, the cell and the error; the log of
each run goes to runs/pipeline/<notebook>.log. Progress bars and library start-up logs
belong on the terminal: they are removed from the executed notebooks (``clean_outputs``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from nnlib.export import PROFILES
from nnlib.paths import NOTEBOOKS_DIR, RUNS_DIR


def notebooks(only=None):
    found = sorted(NOTEBOOKS_DIR.glob("Q[0-9]_*.ipynb"))
    if only:
        wanted = {o.upper() for o in only}
        found = [nb for nb in found if nb.name.split("_")[0].upper() in wanted]
    return found


# stderr lines that are noise, not results: tqdm bars (redrawn with carriage returns),
# tqdm's warning about missing widgets, TensorFlow/absl/CUDA start-up logs
_NOISE = re.compile(
    r"^\s*$|^\s*\d+%\|.*\|.*\]\s*$|TqdmWarning: IProgress not found|"
    r"from \.autonotebook import tqdm|^WARNING: All log messages before absl|"
    r"^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]")
# the plain-text fallback of a result shown as HTML (a styled table): an object's address
_OBJECT_REPR = re.compile(r"^<[\w.]+(?: object)? at 0x[0-9a-f]+>$")


# What JupyterLab writes for ipykernel's kernel: a notebook stored with anything else is
# marked modified as soon as it is opened
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean_outputs(nb):
    """Drop the noise above from the stderr outputs of notebook ``nb`` (nbformat node,
    changed in place), the object reprs beside HTML results (styled tables), and the
    machine's folders from papermill's record of the run;
    stdout, results and real warnings stay; the kernelspec becomes ``KERNELSPEC``.
    Returns ``nb``."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    record = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if record.get(key):
            record[key] = Path(record[key]).name
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                kept = [line for line in re.split(r"[\r\n]", out["text"])
                        if not _NOISE.search(line)]
                if not kept:
                    continue
                out["text"] = "\n".join(kept) + "\n"
            data = out.get("data", {})
            if "text/html" in data and _OBJECT_REPR.match(str(data.get("text/plain", ""))):
                del data["text/plain"]  # Jupyter shows the HTML; the address is noise
            previous = outputs[-1] if outputs else None
            if (previous is not None and out.get("output_type") == "stream"
                    and previous.get("output_type") == "stream"
                    and previous.get("name") == out.get("name")):
                previous["text"] += out["text"]  # one block, as Jupyter shows it
                continue
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def _clean_file(path):
    import nbformat

    from nnlib.atomic import write_text
    nb = nbformat.read(path, as_version=4)
    write_text(path, nbformat.writes(clean_outputs(nb)) + "\n")


def _without_injected_parameters(path):
    """A copy of the notebook at ``path`` (under runs/pipeline/input/) without the cell of
    parameters that an earlier papermill run injected: papermill keeps that cell when it
    is given no parameters, and its values would override the profile."""
    import nbformat

    from nnlib.atomic import write_text
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells
                if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.metadata.get("papermill", {}).pop("parameters", None)
    return write_text(RUNS_DIR / "pipeline" / "input" / path.name, nbformat.writes(nb) + "\n")


def run(profile, only=None, timeout=None, params=None):
    import papermill as pm
    from tqdm import tqdm

    todo = notebooks(only)
    if not todo:
        sys.exit(f"no notebooks matching {only} in {NOTEBOOKS_DIR}")
    # the profile reaches the notebooks through the environment, so that only parameters
    # given with -p are injected (an injected value beats the environment's)
    os.environ["NNLIB_PROFILE"] = profile
    for var in ("NNLIB_DATA", "NNLIB_CACHE"):  # the kernels run in notebooks/
        if os.environ.get(var):
            os.environ[var] = str(Path(os.environ[var]).resolve())
    log_dir = RUNS_DIR / "pipeline"
    log_dir.mkdir(parents=True, exist_ok=True)
    # the smoke profile must not replace the committed full-profile outputs
    out_dir = NOTEBOOKS_DIR if profile == "full" else RUNS_DIR / profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    for nb in tqdm(todo, desc=f"notebooks ({profile})", unit="nb"):
        start = time.time()
        log_path = log_dir / f"{nb.stem}.log"
        with open(log_path, "w") as log:
            try:
                pm.execute_notebook(str(_without_injected_parameters(nb)),
                                    str(out_dir / nb.name), parameters=params or None,
                                    cwd=str(NOTEBOOKS_DIR),
                                    log_output=True, stdout_file=log, stderr_file=log,
                                    progress_bar=True, execution_timeout=timeout)
            except pm.PapermillExecutionError as e:
                sys.exit(f"\n{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                         f"see {out_dir / nb.name} and {log_path}")
        _clean_file(out_dir / nb.name)
        tqdm.write(f"{nb.name}: {time.time() - start:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.pipeline", description=__doc__.splitlines()[0],
        epilog="The smoke profile runs every notebook on small subsets in a few minutes and "
               "writes into runs/smoke/; the full profile reproduces the committed results "
               "(about an hour on two cores, longer where runs must be retrained) and "
               "rewrites the notebooks, figures/ and report/generated/.")
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="smoke (minutes, a test) or full (the results; about an hour)")
    parser.add_argument("--only", nargs="*", help="question ids, e.g. Q1 Q4")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="a papermill parameter of the notebooks, e.g. -p storage URL "
                             "(VALUE is read as JSON when it parses, else as a string)")
    args = parser.parse_args(argv)
    run(args.profile, args.only, args.timeout, dict(_parse_value(p) for p in args.param))


def _parse_value(pair):
    name, value = pair
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


if __name__ == "__main__":
    main()
