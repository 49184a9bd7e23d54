"""Training crash safety: SIGKILL mid-epoch then --resume equals an uninterrupted run; a kill while a
checkpoint is being written never leaves a corrupt one; an unwritable or too small output folder is refused
before training starts; a disk that fills up mid-run stops it cleanly with the last checkpoint intact."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_run import tiny_config

from xrayviewer.cli.main import main
from xrayviewer.training import checkpoints
from xrayviewer.training.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from xrayviewer.training.events import EpochEnded, Event
from xrayviewer.training.trainer import TrainingError, train

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


@pytest.fixture(scope="module")
def straight_run(shared_data, tmp_path_factory):
    """An uninterrupted two-epoch run (the reference)."""
    return train(tiny_config(shared_data, tmp_path_factory.mktemp("straight")))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(shared_data, tmp_path, straight_run):
    config = tiny_config(shared_data, tmp_path)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.resolved()))
    command = [sys.executable, "-m", "xrayviewer", "train", "--config", str(path), "--events", "json"]
    killed_at = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=_env()) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "batch" and event["epoch"] == 2 and event["step"] >= 2:
                proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: the process just ends
                killed_at = (event["epoch"], event["step"])
                break
        proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    (run,) = (tmp_path / "runs").iterdir()
    state = load_checkpoint(run / "checkpoints" / "last.pt")  # readable: never half-written
    assert (state["epoch"], state["step"]) == (1, 0)  # at most the epoch being trained was lost
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 1
    assert not (run / "bundle").exists()
    resumed = train(None, resume=run)
    assert resumed.status == "completed"
    straight, again = _weights(straight_run.run_dir), _weights(run)
    assert straight.keys() == again.keys()
    for key in straight:
        assert torch.equal(straight[key], again[key]), key
    first = load_file(str(straight_run.bundle_dir / "weights.safetensors"))
    second = load_file(str(resumed.bundle_dir / "weights.safetensors"))
    assert all(torch.equal(first[k], second[k]) for k in first)  # the same model, bit for bit
    assert not list((run / "checkpoints").glob(".*.tmp"))


_SAVER = textwrap.dedent("""
    import sys, torch
    from xrayviewer.training.checkpoints import save_checkpoint
    for step in range(10**6):
        save_checkpoint(sys.argv[1], {"step": step, "blob": torch.full((3_000_000,), float(step))})
        print(step, flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.013, 0.031])
def test_a_kill_while_a_checkpoint_is_written_never_leaves_a_corrupt_one(tmp_path, delay):
    target = tmp_path / "last.pt"
    with subprocess.Popen([sys.executable, "-c", _SAVER, str(target)], stdout=subprocess.PIPE, text=True,
                          env=_env()) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if int(line) >= 2:
                break
        time.sleep(delay)  # somewhere inside the next save (each takes tens of milliseconds)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    state = load_checkpoint(target)
    assert state["step"] >= 2 and bool((state["blob"] == state["step"]).all())  # whole, and one save's
    checkpoints.remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_data_is_read(shared_data, tmp_path,
                                                                                      capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = tiny_config(shared_data, tmp_path, out=str(blocker / "runs"))
    from xrayviewer.training import trainer

    monkeypatch.setattr(trainer, "prepare_data", lambda *a: pytest.fail("data prepared for a doomed run"))
    with pytest.raises(TrainingError, match=r"a-file is a file, not a folder"):
        train(config)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.resolved()))
    assert main(["train", "--config", str(path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_one_and_says_why(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    save_checkpoint(target, {"epoch": 1})

    def full_disk(state, fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint last\.pt .*: No space left on "
                                              r"device \(the previous last\.pt is intact\)"):
        save_checkpoint(target, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(target) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str):
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root here: " + mounted.stderr.decode(errors="replace")[:200])
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_tiny_disk_is_refused_before_training_starts(shared_data, tmp_path, monkeypatch):
    from xrayviewer.training import trainer

    monkeypatch.setattr(trainer, "prepare_data", lambda *a: pytest.fail("data prepared for a doomed run"))
    with _tmpfs(tmp_path / "tiny", "256k") as disk:
        config = tiny_config(shared_data, tmp_path, out=str(disk / "runs"))
        with pytest.raises(TrainingError, match=r"not enough free space for the run folder .* MB free, its "
                                                r"checkpoints and bundle need about \d+ MB"):
            train(config)
        assert list(disk.iterdir()) == []  # nothing written


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_stops_cleanly_and_resumes(shared_data, tmp_path):
    with _tmpfs(tmp_path / "disk", "40m") as disk:
        config = tiny_config(shared_data, tmp_path, out=str(disk / "runs"), epochs=3)
        filler = disk / "filler"

        def fill_after_epoch_one(event: Event) -> None:
            if isinstance(event, EpochEnded) and event.epoch == 1:
                with open(filler, "wb") as fh, contextlib.suppress(OSError):
                    while True:
                        fh.write(b"\0" * (1 << 20))

        with pytest.raises(CheckpointError, match=r"No space left on device .* continue with --resume"):
            train(config, [fill_after_epoch_one])
        (run,) = (disk / "runs").iterdir()
        state = load_checkpoint(run / "checkpoints" / "last.pt")
        assert state["epoch"] == 1  # the last complete checkpoint, intact
        assert not list((run / "checkpoints").glob(".*.tmp"))
        filler.unlink()
        resumed = train(None, resume=run)
        assert resumed.status == "completed" and (resumed.bundle_dir / "weights.safetensors").is_file()
