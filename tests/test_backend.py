"""TensorFlow starts without its C++ start-up lines, and real messages still get through."""
import os
import subprocess
import sys

from nnlib.cnn.backend import START_UP_NOISE, quiet_start_up

NOISE = ["WARNING: All log messages before absl::InitializeLog() is called are written to "
         "STDERR",
         "I0000 00:00:1796472766.126528   10471 port.cc:153] oneDNN custom operations are on.",
         "E0000 00:00:1796472769.704160   10471 cuda_platform.cc:52] failed call to cuInit"]


def test_noise_pattern_matches_start_up_lines_only():
    assert all(START_UP_NOISE.search(line) for line in NOISE)
    for real in ("ValueError: bad model", "error: models/x.keras is not a model",
                 "I said: port.cc is fine"):
        assert not START_UP_NOISE.search(real)


def test_held_lines_are_written_back_unless_noise(capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with quiet_start_up():
        os.write(2, ("\n".join(NOISE) + "\nreal problem\n").encode())
    assert capfd.readouterr().err == "real problem\n"


def test_lines_are_written_back_when_the_block_fails(capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    try:
        with quiet_start_up():
            os.write(2, b"before the failure\n")
            raise RuntimeError
    except RuntimeError:
        pass
    assert capfd.readouterr().err == "before the failure\n"


def test_a_log_level_set_by_the_user_holds_nothing_back(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with quiet_start_up():
        os.write(2, (NOISE[1] + "\n").encode())
    assert capfd.readouterr().err == NOISE[1] + "\n"


def test_tensorflow_starts_quietly():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", "from nnlib.cnn.backend import import_keras;"
                          "k = import_keras(); print(k.backend.backend())"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "tensorflow"
    assert run.stderr == ""
