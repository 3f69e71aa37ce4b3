"""Resume after a kill: the resumed run ends with the uninterrupted run's weights, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import compose_train
from resumable import (
    ACROSS,
    EPOCHS,
    cli,
    kill_at_step,
    overrides,
    restore_snapshot,
    scores,
    snapshot_every_write,
    weights_hash,
)
from torch.utils.data import TensorDataset

import train
from forecast.loader import EpochSampler, ResumableLoader


def test_epoch_order_depends_on_seed_and_epoch_alone():
    sampler = EpochSampler(50, seed=3)
    sampler.set_epoch(2)
    order = list(sampler)
    assert sorted(order) == list(range(50))
    other = EpochSampler(50, seed=3)  # the same epoch after two others: the same order
    for epoch in (0, 1, 2):
        other.set_epoch(epoch)
        got = list(other)
    assert got == order
    sampler.set_epoch(3)
    assert list(sampler) != order
    seed4 = EpochSampler(50, seed=4)
    seed4.set_epoch(2)
    assert list(seed4) != order
    torch.manual_seed(0)  # and it draws nothing from the global generator
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(sampler)
    assert torch.equal(torch.rand(3), expected)


def test_distributed_processes_share_one_order(monkeypatch):
    whole = EpochSampler(11, seed=5)
    whole.set_epoch(1)
    order = list(whole)
    shards = []
    for rank in (0, 1, 2):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
        sampler = EpochSampler(11, seed=5)
        sampler.set_epoch(1)
        assert len(sampler) == 4
        shards.append(list(sampler))
    assert [i for batch in zip(*shards, strict=True) for i in batch][:11] == order
    assert all(len(s) == 4 for s in shards)


def test_loader_resumes_mid_epoch_and_starts_the_next_epoch_whole():
    data = TensorDataset(torch.arange(100))
    full = ResumableLoader(data, 8, seed=1)
    full.sampler.set_epoch(4)
    batches = [b[0] for b in full]
    part = ResumableLoader(data, 8, seed=1)
    part.sampler.set_epoch(4)
    served = iter(part)
    for _ in range(5):
        next(served)
    state = part.state_dict()
    assert state == {"epoch": 4, "batches": 5, "seed": 1}
    resumed = ResumableLoader(data, 8, seed=1)
    resumed.load_state_dict(state)
    rest = [b[0] for b in resumed]
    assert len(rest) == len(batches) - 5
    assert all(torch.equal(a, b) for a, b in zip(rest, batches[5:], strict=True))
    resumed.sampler.set_epoch(5)
    assert sum(len(b[0]) for b in resumed) == 100
    with pytest.raises(ValueError, match="seed=1, this run seed=2"):
        ResumableLoader(data, 8, seed=2).load_state_dict(state)


def test_resume_from_checkpoints_of_every_kind_ends_identical(tmp_path, series_csv, monkeypatch):
    """Validation at epoch ends and early stopping: continue from what a kill right after a
    checkpoint write would leave (validation-time, epoch-end, mid-epoch writes)."""
    snaps, run = tmp_path / "snaps", tmp_path / "run"
    snaps.mkdir()
    with monkeypatch.context() as m:
        snapshot_every_write(m, snaps)
        ref = train.train(compose_train(overrides(series_csv, *EPOCHS)), run)
    ref_hash = weights_hash(run)
    assert ref["global_steps"] < 15  # early stopping fired before max_epochs
    taken = sorted(snaps.iterdir())
    chosen = [s for s in taken if s.name.endswith("best")]  # written at validation end
    rng = np.random.default_rng(7)
    rest = [s for s in taken if s not in chosen]
    chosen += [rest[i] for i in rng.choice(len(rest), 2, replace=False)]
    assert len(chosen) >= 4
    for snap in chosen:
        restore_snapshot(snap, run)
        if snap.name.endswith("best"):  # continue from best.ckpt itself (as if last.ckpt were lost)
            (run / "checkpoints" / "last.ckpt").unlink(missing_ok=True)
        got = train.train(compose_train(overrides(series_csv, *EPOCHS, "resume=true")), run)
        assert weights_hash(run) == ref_hash, snap.name
        assert scores(got) == scores(ref), snap.name


def test_kill_then_resume_ends_identical(tmp_path, series_csv):
    """SIGKILL a CLI run at a seeded moment, resume it: the weights of the uninterrupted run.
    The steps before the kill ran in a fresh process, the reference in this one: the two
    agree bit for bit (same seed, same thread count)."""
    args = overrides(series_csv, *ACROSS)
    ref = train.train(compose_train(args), tmp_path / "ref")
    run = tmp_path / "run"
    rng = np.random.default_rng(12)
    left = kill_at_step(cli(run, args), run, int(rng.integers(6, 24)), float(rng.uniform(0, 0.05)))
    assert 0 < left < 40
    earlier = run / "logs" / "metrics.csv"  # the killed attempt's rows (or some, if unflushed)
    if not earlier.exists():
        earlier.parent.mkdir(parents=True, exist_ok=True)
        earlier.write_text("epoch,step,train/loss\n0,0,1.0\n")
    rows = earlier.read_text()
    got = train.train(compose_train([*args, "resume=true"]), run)
    assert weights_hash(run) == weights_hash(tmp_path / "ref")
    assert scores(got) == scores(ref)
    assert (run / "logs" / "metrics.attempt-1.csv").read_text() == rows  # kept, not replaced
    assert earlier.read_text() != rows


@pytest.mark.slow
def test_three_kills_then_resume_match_a_fresh_uninterrupted_process(tmp_path, series_csv):
    """Three SIGKILLs at seeded moments, each run resumed with resume=true; all CLI processes."""
    import subprocess

    args = overrides(series_csv, *ACROSS)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(cli(ref_dir, args), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-1500:]
    rng = np.random.default_rng(2026)
    steps = sorted(rng.choice(np.arange(4, 34), 3, replace=False))
    for i, step in enumerate(steps):
        left = kill_at_step(cli(run, [*args, *(["resume=true"] if i else [])]), run, int(step),
                            float(rng.uniform(0, 0.1)))
        assert 0 < left < 40
    done = subprocess.run(cli(run, [*args, "resume=true"]), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-1500:]
    assert weights_hash(run) == weights_hash(ref_dir)
    ref = json.loads((ref_dir / "metrics.json").read_text())
    got = json.loads((run / "metrics.json").read_text())
    assert scores(got) == scores(ref)


def test_field_runs_refuse_resume_in_one_line(tmp_path):
    cfg = compose_train(["data=field", "model=causal3d", "resume=true"])
    with pytest.raises(ValueError, match=r"resume=True: field runs .* do not resume"):
        train.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_keeps_the_interrupted_attempts_log(tmp_path, monkeypatch):
    from forecast.resume import keep_earlier_log

    logs = tmp_path / "logs"
    assert keep_earlier_log(logs / "metrics.csv") is None  # nothing logged yet
    logs.mkdir()
    for attempt in (1, 2):
        (logs / "metrics.csv").write_text(f"step,loss\n{attempt},0.5\n")
        kept = keep_earlier_log(logs / "metrics.csv")
        assert kept == logs / f"metrics.attempt-{attempt}.csv"
        assert kept.read_text() == f"step,loss\n{attempt},0.5\n"
        assert not (logs / "metrics.csv").exists()
    (logs / "metrics.csv").write_text("step,loss\n3,0.5\n")
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)  # another process of a DDP run leaves it
    assert keep_earlier_log(logs / "metrics.csv") is None
    assert (logs / "metrics.csv").exists()
