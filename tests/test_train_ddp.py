"""DDP under torchrun: two CPU processes (gloo) on a tiny real dataset agree and write one checkpoint set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_train_run import tiny_config

from xrayviewer.training.checkpoints import load_checkpoint


@pytest.mark.slow
def test_two_cpu_processes_agree_and_rank_zero_writes_once(shared_data, tmp_path):
    config = tiny_config(shared_data, tmp_path, epochs=1, device="cpu")
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.resolved()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "xrayviewer",
            "train",
            "--config",
            str(path),
            "--events",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["status"] for e in events if e["event"] == "run_end"] == ["completed"]  # rank 0 speaks alone
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    first, second = metrics["rank_digests"]
    assert first == second  # DDP kept both replicas identical
    assert sorted(p.name for p in (runs[0] / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert load_checkpoint(runs[0] / "checkpoints" / "last.pt")["epoch"] == 1
