"""Re-execute the numbered notebooks with papermill, in order.

    python -m nnlib.pipeline --profile full            # every notebook (2 to 3.5 hours)
    python -m nnlib.pipeline --profile smoke --only Q1 Q4
    python -m nnlib.pipeline --only Q5 -p storage postgresql://user@host:port/db

Each notebook runs into a copy, runs/pipeline/<notebook>.ipynb, beside its log
runs/pipeline/<notebook>.log; only a notebook that ran to its end replaces the tracked
one. Under the full profile, figures/, report/generated/ and models/ are copied first and
put back byte for byte when the notebook fails or is interrupted (Ctrl-C): the files the
failed run wrote go to runs/pipeline/failed/<notebook>/. A password in a URL given with -p
goes to PGPASSWORD (which libpq reads, as it reads ~/.pgpass), never into a notebook or
a log. Progress bars and library start-up logs belong on the terminal: they are removed
from the executed notebooks (``clean_outputs``). The full profile runs NumPy's BLAS with
its Haswell kernels and two threads unless OPENBLAS_CORETYPE or NNLIB_THREADS say
otherwise (``REPRODUCIBLE``): the arithmetic that trained the committed networks, so
that a re-run reproduces them bit for bit on any x86-64 machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import sys
import time
from pathlib import Path

from nnlib.atomic import temporary_path, write_text
from nnlib.credentials import password_of, without_password
from nnlib.export import PROFILES
from nnlib.locks import LockHeld, acquire, release
from nnlib.paths import FIGURES_DIR, GENERATED_DIR, MODELS_DIR, NOTEBOOKS_DIR, PROJ_ROOT, RUNS_DIR


class UsageError(ValueError):
    """A mistake in the command line (exit status 2)."""


class NotebookFailed(RuntimeError):
    """A notebook raised; the files it had changed are as before (exit status 1)."""


class SnapshotMissing(RuntimeError):
    """The copy of the tracked folders taken before a run is gone: nothing is restored."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a notebook; the files it had changed are as before (exit status 130)."""


def notebooks(only=None):
    """The notebooks to run: all, or those whose ids (``Q4``) are in ``only``."""
    found = sorted(NOTEBOOKS_DIR.glob("Q[0-9]_*.ipynb"))
    if not found:
        raise UsageError(f"no notebooks Q<n>_*.ipynb in {NOTEBOOKS_DIR}")
    if only is None:
        return found
    ids = [nb.name.split("_")[0].upper() for nb in found]
    if not only:
        raise UsageError(f"--only needs question ids, e.g. --only Q1 Q4; leave it out to run "
                         f"every notebook ({' '.join(ids)})")
    unknown = [o for o in only if o.upper() not in ids]
    if unknown:
        raise UsageError(f"--only {' '.join(unknown)}: no such notebook in {NOTEBOOKS_DIR}; "
                         f"the ids are {' '.join(ids)}")
    wanted = {o.upper() for o in only}
    return [nb for nb, i in zip(found, ids) if i in wanted]


def notebook_parameters(todo, params):
    """The parameters each notebook of ``todo`` gets: those of ``params`` that its cell
    tagged ``parameters`` declares. A name no notebook declares is refused, as is
    ``profile``: the profile also decides where the exports go, so it comes from --profile."""
    import papermill as pm

    if "profile" in params:
        raise UsageError("-p profile: choose the profile with --profile smoke or --profile "
                         "full (it also decides where the exports go)")
    declared = {nb: list(pm.inspect_notebook(str(nb))) for nb in todo}
    for name in params:
        if not any(name in names for names in declared.values()):
            where = " nor of ".join(f"{nb.name} (its parameters: {', '.join(names) or 'none'})"
                                    for nb, names in declared.items())
            raise UsageError(f"-p {name}: not a parameter of {where}")
    return {nb: {k: v for k, v in params.items() if k in names}
            for nb, names in declared.items()}


def hide_passwords(params):
    """``params`` with each URL's password moved to $PGPASSWORD, for the kernels to inherit:
    the injected parameters and papermill's record are committed, the logs are shared."""
    passwords = {password_of(v) for v in params.values() if isinstance(v, str)} - {None}
    if len(passwords) > 1:
        raise UsageError("-p: URLs with different passwords, but PGPASSWORD holds one; keep "
                         "them in ~/.pgpass and leave them out of the URLs")
    return {k: without_password(v) if isinstance(v, str) else v for k, v in params.items()}


# stderr lines that are noise, not results: tqdm bars (redrawn with carriage returns),
# tqdm's warning about missing widgets, TensorFlow/absl/CUDA start-up logs
_NOISE = re.compile(
    r"^\s*$|^\s*\d+%\|.*\|.*\]\s*$|^\s*\d+\w+ \[[\d:]+, .*/s\]\s*$|"
    r"TqdmWarning: IProgress not found|"
    r"from \.autonotebook import tqdm|^WARNING: All log messages before absl|"
    r"^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]")
# the plain-text fallback of a result shown as HTML (a styled table): an object's address
_OBJECT_REPR = re.compile(r"^<[\w.]+(?: object)? at 0x[0-9a-f]+>$")
# a styled table's id, random on every run (pandas draws it), in its ids and CSS rules
_STYLER_ID = re.compile(r'<table id="(T_[0-9a-f]{5})"')


# NumPy's BLAS as it trained the committed networks: its float32 sums depend on the
# kernel (Haswell's: AVX2, the x86-64 kernel every machine since 2013 runs) and on the
# number of threads, so another choice trains slightly different networks
REPRODUCIBLE = {"NNLIB_THREADS": "2",
                **({"OPENBLAS_CORETYPE": "Haswell"}
                   if platform.machine().lower() in ("x86_64", "amd64") else {})}
COMPLETE = "COMPLETE"  # in a snapshot's folder once every file is copied
LOCK = "pipeline.lock"  # in runs/pipeline/: one run of the pipeline at a time per checkout

# papermill's timestamps and durations, of the run and of each cell
VOLATILE = ("start_time", "end_time", "duration")

# What JupyterLab writes for ipykernel's kernel: a notebook stored with anything else is
# marked modified as soon as it is opened
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean_outputs(nb):
    """Drop the noise above from the stderr outputs of notebook ``nb`` (nbformat node,
    changed in place), the object reprs beside HTML results (styled tables) and their
    random ids, the machine's folders and the run's times from papermill's record of the
    run and its cells; stdout, results and real warnings stay; the kernelspec becomes
    ``KERNELSPEC``. Returns ``nb``."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    record = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if record.get(key):
            record[key] = Path(record[key]).name
    for key in VOLATILE:  # when it ran, not what it showed: a re-run would change them
        record.pop(key, None)
    for n, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        for key in VOLATILE:
            cell.metadata.get("papermill", {}).pop(key, None)
        if cell.cell_type != "code":
            cell.pop("outputs", None)  # not valid nbformat on a markdown cell
            cell.pop("execution_count", None)
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
            if "text/html" in data and _OBJECT_REPR.match(str(data.get("text/plain"))):
                del data["text/plain"]  # Jupyter shows the HTML; the address is noise
            if "text/html" in data:  # the cell's place instead: unique, the same every run
                html = "".join(data["text/html"])
                for k, table in enumerate(dict.fromkeys(_STYLER_ID.findall(html))):
                    html = html.replace(table, f"T_cell{n}_{len(outputs)}_{k}")
                data["text/html"] = html
            previous = outputs[-1] if outputs else None
            if (previous is not None and out.get("output_type") == "stream"
                    and previous.get("output_type") == "stream"
                    and previous.get("name") == out.get("name")):
                previous["text"] += out["text"]  # one block, as Jupyter shows it
                continue
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def _without_injected_parameters(path):
    """A copy of the notebook at ``path`` (under runs/pipeline/input/) without the cell of
    parameters that an earlier papermill run injected: papermill keeps that cell when it
    is given no parameters, and its values would override the profile."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells
                if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.get("papermill", {}).pop("parameters", None)
    return write_text(RUNS_DIR / "pipeline" / "input" / path.name, nbformat.writes(nb) + "\n")


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def snapshot(roots, store):
    """Copy each folder of ``roots`` into ``store``/<its position>; the file COMPLETE
    marks a snapshot that holds every file."""
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    for k, root in enumerate(roots):
        for path in _files(root):
            copy = store / str(k) / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
    (store / COMPLETE).write_text("\n".join(str(r) for r in roots) + "\n")


def restore(roots, store, aside):
    """Put the folders ``roots`` back as ``snapshot`` copied them into ``store``: a file
    added since is moved to ``aside``/<folder name>/, a changed or removed one replaced by
    its copy, atomically (a changed one is first copied to ``aside``), an unchanged one
    left alone. Returns the paths put back or moved away. Ctrl-C waits until it is done."""

    if not (store / COMPLETE).is_file():  # never move a file without its copy at hand
        raise SnapshotMissing(f"the copy of {', '.join(f'{_shown(r)}/' for r in roots)} "
                              f"taken before the run ({_shown(store)}) is missing, so "
                              "nothing was put back or moved: `git status` shows what the "
                              "failed run changed")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        shutil.rmtree(aside, ignore_errors=True)
        changed = []
        for k, root in enumerate(roots):
            saved = store / str(k)
            for path in _files(root):
                if not (saved / path.relative_to(root)).is_file():
                    moved = aside / root.name / path.relative_to(root)
                    moved.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, moved)
                    changed.append(path)
            for copy in _files(saved):
                path = root / copy.relative_to(saved)
                if path.is_file() and path.read_bytes() == copy.read_bytes():
                    continue
                if path.is_file():
                    kept = aside / root.name / copy.relative_to(saved)
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, kept)
                with temporary_path(path) as tmp:
                    shutil.copy2(copy, tmp)
                changed.append(path)
        shutil.rmtree(store)
        return changed
    finally:
        signal.signal(signal.SIGINT, previous)


def run_notebook(nb, target, roots=(), parameters=None, timeout=None):
    """Execute notebook ``nb`` into runs/pipeline/ and, once every cell ran, write it
    cleaned to ``target``. If it fails, the folders ``roots`` are put back as they were
    (``restore``) and NotebookFailed or Interrupted says where to look."""
    import nbformat
    import papermill as pm

    work = RUNS_DIR / "pipeline"
    executed, log_path, store = work / nb.name, work / f"{nb.stem}.log", work / "snapshot"
    work.mkdir(parents=True, exist_ok=True)
    if roots:
        snapshot(roots, store)
    try:
        # the kernel is killed at once when the run ends or is interrupted: one shut down
        # gracefully goes on with an interrupted cell a while, printing a traceback
        with open(log_path, "w") as log:
            pm.execute_notebook(str(_without_injected_parameters(nb)), str(executed),
                                parameters=parameters or None, cwd=str(NOTEBOOKS_DIR),
                                log_output=True, stdout_file=log, stderr_file=log,
                                progress_bar=True, execution_timeout=timeout,
                                shutdown_kernel="immediate")
        done = clean_outputs(nbformat.read(executed, as_version=4))
        write_text(target, nbformat.writes(done) + "\n")
    except BaseException as e:
        aside = work / "failed" / nb.stem
        see = f"see {_shown(executed)} and {_shown(log_path)}"
        try:
            changed = restore(roots, store, aside) if roots else []
            if roots:
                see += f"; {', '.join(f'{_shown(r)}/' for r in roots)} are as they were"
        except SnapshotMissing as missing:
            changed, see = [], f"{see}; {missing}"
        if changed:
            see += f" (the files of the failed run: {_shown(aside)}/)"
        ename = getattr(e, "ename", type(e).__name__)
        if isinstance(e, KeyboardInterrupt) or ename == "KeyboardInterrupt":
            raise Interrupted(f"{nb.name} stopped; {see}") from None
        cell = f" in cell {e.exec_count}" if isinstance(e, pm.PapermillExecutionError) else ""
        error = " ".join(f"{ename}: {getattr(e, 'evalue', e)}".split())
        raise NotebookFailed(f"{nb.name} failed{cell}: {error}; {see}") from None
    executed.unlink()
    if roots:
        shutil.rmtree(store)


def _shown(path):
    """``path`` relative to the project when it lies inside: as one types it there."""
    return path.relative_to(PROJ_ROOT) if path.is_relative_to(PROJ_ROOT) else path


def run(profile, only=None, timeout=None, params=None):
    """Run the notebooks ``only`` (ids, default all) under ``profile`` with the papermill
    parameters ``params``; see the module's description."""
    from tqdm import tqdm

    todo = notebooks(only)
    given = notebook_parameters(todo, hide_passwords(params or {}))
    # the profile reaches the notebooks through the environment, so that only parameters
    # given with -p are injected (an injected value beats the environment's)
    os.environ["NNLIB_PROFILE"] = profile
    if profile == "full":  # the arithmetic of the committed results, unless set otherwise
        for var, value in REPRODUCIBLE.items():
            os.environ.setdefault(var, value)
    for var in ("NNLIB_DATA", "NNLIB_CACHE"):  # the kernels run in notebooks/
        if os.environ.get(var):
            os.environ[var] = str(Path(os.environ[var]).resolve())
    # the smoke profile must not replace the committed full-profile outputs
    out_dir = NOTEBOOKS_DIR if profile == "full" else RUNS_DIR / profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    roots = (FIGURES_DIR, GENERATED_DIR, MODELS_DIR) if profile == "full" else ()
    work = RUNS_DIR / "pipeline"
    work.mkdir(parents=True, exist_ok=True)
    try:  # two runs would share runs/pipeline/ (its notebooks, logs and snapshot)
        fd = acquire(work / LOCK)
    except LockHeld as e:
        raise UsageError(f"another run of the pipeline, {e.holder}, is using this checkout "
                         f"(it holds {_shown(work / LOCK)}); wait until it has finished") \
            from None
    try:
        for nb in tqdm(todo, desc=f"notebooks ({profile})", unit="nb"):
            start = time.time()
            run_notebook(nb, out_dir / nb.name, roots, given[nb], timeout)
            tqdm.write(f"{nb.name}: {time.time() - start:.0f} s")
    finally:
        release(fd)


def _fail(status, message):
    print(message, file=sys.stderr)
    sys.exit(status)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.pipeline", description=__doc__.splitlines()[0],
        epilog="The smoke profile runs every notebook on small subsets in a few minutes and "
               "writes into runs/smoke/; the full profile reproduces the committed results "
               "(2 to 3.5 hours on two cores from a fresh clone) and rewrites the notebooks, "
               "figures/, report/generated/ and models/.")
    # one line, not the usage text, for a mistake in the arguments
    parser.error = lambda message: _fail(2, f"error: {message} (see --help)")
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="smoke (minutes, a test) or full (the results; 2 to 3.5 hours)")
    parser.add_argument("--only", nargs="*", help="question ids, e.g. Q1 Q4")
    parser.add_argument("--timeout", type=int, help="seconds per cell")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="a papermill parameter of the notebooks, e.g. -p storage URL "
                             "(VALUE is read as JSON when it parses, else as a string); "
                             "a password in a URL is passed in PGPASSWORD instead")
    args = parser.parse_args(argv)
    try:
        run(args.profile, args.only, args.timeout, dict(_parse_value(p) for p in args.param))
    except UsageError as e:
        _fail(2, f"error: {e}")
    except NotebookFailed as e:
        _fail(1, f"error: {e}")
    except KeyboardInterrupt as e:
        _fail(130, f"interrupted: {str(e) or 'no notebook was running; no file is half written'}")


def _parse_value(pair):
    name, value = pair
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


if __name__ == "__main__":
    main()
