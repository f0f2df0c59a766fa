"""Data-parallel training (gloo, 2 CPU processes) gives the single-process run on the same global batches."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from clap_lib import distributed as D
from clap_lib import paper
from clap_lib.audio import AudioConfig, LogMel
from clap_lib.models import Clap, Cnn14
from clap_lib.training import ClapTrainConfig
from fixtures import write_paper_audiocaps, write_paper_clotho

pytestmark = pytest.mark.slow

AUDIO = AudioConfig(16000, 1.0, 512, 320, 32, 50.0, 8000.0)
CFG = ClapTrainConfig(frozen_epochs=1, max_unfrozen_epochs=2, early_stop_patience=5, batch_size=8,
                      frozen_lr=1e-3, unfrozen_lr=1e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> Clap:
    """No dropout anywhere (dropout masks differ between ranks by design); float64, so that the comparison
    tests the algorithm, not float32 rounding, which Adam amplifies over steps (see distributed.selftest)."""
    torch.manual_seed(0)
    model = Clap(Cnn14(AUDIO.n_mels, 1 / 32, 4, p_block=0.0, p_fc=0.0), D.ToyTextEncoder(), d_embed=8, p_drop=0.0)
    return model.double()


class DoubleFront(torch.nn.Module):
    """The log-mel front end in float32 (as in training), its output cast to the float64 model."""

    def __init__(self):
        super().__init__()
        self.logmel = LogMel(AUDIO).float()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.logmel(wave.float()).double()


def _train(world: D.World, roots: dict) -> tuple[list[float], list[dict], dict]:
    pairs = paper.read_pairs(roots, paper.PaperSettings(caption_datasets=("clotho", "audiocaps")), 0, 0.2)
    train, val, _ = paper.pairs_for_training(pairs, "dirty")
    model = _model()
    if world.distributed:
        D.use_global_batchnorm(model)
    world.broadcast_module(model)
    steps: list[float] = []
    history = paper.train_clap_streaming(model, DoubleFront(), train, val, CFG, AUDIO, 0, None, world,
                                         log=lambda m: None, on_step=lambda s: steps.append(s["loss"]))
    return steps, history, model.state_dict()


def _worker(rank: int, world_size: int, port: int, roots: dict, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"})
    torch.set_num_threads(1)
    world = D.init_world("cpu")
    try:
        result = _train(world, roots)
        if world.is_main:
            torch.save(result, out)
    finally:
        D.shutdown(world)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("ddp_data")
    return {"clotho": write_paper_clotho(base / "clotho"), "audiocaps": write_paper_audiocaps(base / "audiocaps")}


def test_two_processes_train_exactly_the_single_process_model(roots, tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, _free_port(), roots, str(out)), nprocs=2, join=True)
    steps_2, history_2, state_2 = torch.load(out, weights_only=False)
    steps_1, history_1, state_1 = _train(D.single_process("cpu"), roots)
    assert len(steps_1) == len(steps_2) >= 6  # 3 epochs x 2+ global batches of 8
    np.testing.assert_allclose(steps_2, steps_1, atol=1e-10, rtol=0)  # asked: 1e-5
    np.testing.assert_allclose([h["val_loss"] for h in history_2], [h["val_loss"] for h in history_1], atol=1e-10)
    assert [h["phase"] for h in history_2] == ["frozen", "unfrozen", "unfrozen"]
    for k, v in state_1.items():  # incl. the BatchNorm running statistics of the global batches
        np.testing.assert_allclose(state_2[k].double().numpy(), v.double().numpy(), atol=1e-10, rtol=0, err_msg=k)


def test_torchrun_selftest_cli():
    torchrun = Path(sys.executable).parent / "torchrun"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    res = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "clap_lib.distributed",
                          "selftest", "--device", "cpu"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "selftest: world_size=2 device=cpu dtype=float64" in res.stdout and "OK" in res.stdout


def test_shards_partition_the_global_batch():
    batch = np.arange(12)
    shards = [D.World(r, 3).shard(batch) for r in range(3)]
    assert np.array_equal(np.concatenate(shards), batch) and all(len(s) == 4 for s in shards)
    with pytest.raises(ValueError, match="batch of 10 cannot be split evenly over 3 ranks"):
        D.World(0, 3).shard(np.arange(10))
    order = D.epoch_order(10, seed=0, epoch=1, salt=11)
    assert np.array_equal(order, D.epoch_order(10, 0, 1, 11)) and not np.array_equal(order, D.epoch_order(10, 0, 2, 11))
    assert [len(b) for b in D.global_batches(order, 4)] == [4, 4]  # the incomplete last batch is dropped
    parts = [D.World(r, 3).split(np.arange(7)) for r in range(3)]
    assert [len(p) for p, _ in parts] == [3, 2, 2] and parts[0][1] == [3, 2, 2]


def test_global_batchnorm_keeps_the_batchnorm_state_dict():
    model = Cnn14(32, 1 / 32, 4, p_block=0.0, p_fc=0.0)
    keys = list(model.state_dict())
    D.use_global_batchnorm(model)
    assert list(model.state_dict()) == keys
    assert sum(isinstance(m, D.GlobalBatchNorm2d) for m in model.modules()) == 13  # bn0 + 2 per conv block
    x = torch.randn(3, 64, 32)
    ref = Cnn14(32, 1 / 32, 4, p_block=0.0, p_fc=0.0)
    ref.load_state_dict(model.state_dict())
    assert torch.equal(model(x), ref(x))  # training mode, not distributed: plain batch norm
    assert torch.equal(model.bn0.running_mean, ref.bn0.running_mean)


def test_grid_jobs_plan():
    jobs = D.grid_jobs(["--data-root", "/data", "--set", "clap.batch_size=256"], nproc=8)
    assert [j.phase for j in jobs] == [0] + [1] * 6 + [2]
    assert [j.name for j in jobs if j.phase == 1] == [f"clap[{p},{t}]" for p in ("dirty", "clean", "none")
                                                      for t in ("dirty", "clean")]
    clap = jobs[2].command
    assert clap.startswith("torchrun --standalone --nproc_per_node=8 -m clap_lib.distributed train --data-root /data")
    assert clap.endswith("--step clap --pretrainings dirty --trainings clean")
    assert "--step prepare --pretrainings dirty,clean,none" in jobs[0].command
    assert "-m clap_lib.paper" in jobs[-1].command and "--step grid" in jobs[-1].command
    single = D.grid_jobs([], nproc=1)[1].argv
    assert single[1:4] == ("-m", "clap_lib.paper", "--step")
    assert "# phase 1" in D.format_jobs(jobs)
