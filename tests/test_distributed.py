"""Data-parallel training on 2 gloo CPU processes gives the single-process model; the grid's command lines."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from toy import toy_clap, toy_data, toy_steps

from clap_lib.models.backbones.cnn14 import Cnn14
from clap_lib.models.loss import clip_loss
from clap_lib.training import distributed as D

W, BATCH, STEPS, SEED = 2, 8, 4, 0
# float64 throughout, so the comparison tests the algorithm: the two runs differ only in summation order
# (halves summed across ranks vs one sum), relative 1e-16 per operation; over a few layers and steps the gradients
# differ by ~1e-14 relative, and Adam moves each parameter by lr * m / (sqrt(v) + eps), which is insensitive to a
# relative change of the gradient, so parameters differ by ~lr * 1e-14. 1e-10 leaves four orders of margin and
# is still far below one step's change (~lr = 1e-2). (float32 would differ by ~1e-6 and Adam turns a flipped
# sign of a near-zero gradient into a 2 * lr jump, which is why the test does not use it.)
TOL = 1e-10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches() -> list[np.ndarray]:
    return D.global_batches(D.epoch_order(BATCH * STEPS, SEED, 0, salt=0), BATCH)


def _embeddings(n: int = 8, d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return tuple(nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1) for _ in "at")


def _two_phases(model, world: D.World) -> tuple[list[float], dict, dict]:
    """The pipeline's pattern: steps with frozen backbones (only what requires a gradient is wrapped), then
    unfrozen steps, wrapping the same model again. Returns the losses and the state after each phase."""
    x, captions = toy_data(BATCH * STEPS, SEED)
    model.audio.requires_grad_(False)
    model.text.requires_grad_(False)
    losses = toy_steps(model, world, x, captions, _batches()[:2])
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    model.requires_grad_(True)
    model.audio.fc_audioset.requires_grad_(False)  # not in the CLIP loss
    losses += toy_steps(model, world, x, captions, _batches()[2:])
    return losses, frozen, model.state_dict()


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(W),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    world = D.init_world("cpu")
    try:
        res: dict = {"world": (world.rank, world.world_size, str(world.device))}
        # torch's SyncBatchNorm on CPU tensors (the reason GlobalBatchNorm2d exists)
        try:
            nn.SyncBatchNorm(3).train()(torch.randn(4, 3, 2, 2))
            res["syncbn"] = "ran"
        except (ValueError, RuntimeError) as e:
            res["syncbn"] = str(e)
        # the differentiable gather: gradient of the global loss w.r.t. this rank's slice
        E_a, E_t = _embeddings()
        k = len(E_a) // W
        a = E_a[rank * k : (rank + 1) * k].clone().requires_grad_()
        t = E_t[rank * k : (rank + 1) * k].clone().requires_grad_()
        loss = D.global_clip_loss(a, t, torch.tensor(2.0, dtype=torch.float64), 100.0, world)
        loss.backward()
        res["gather"] = (loss.item(), a.grad, t.grad)
        # a few unfrozen training steps, then a few with frozen backbones (the pipeline's phase 1)
        x, captions = toy_data(BATCH * STEPS, SEED)
        model = toy_clap(SEED)
        res["losses"] = toy_steps(model, world, x, captions, _batches())
        res["wrapped"] = type(D.wrap_model(model, world)).__name__
        res["n_global_bn"] = sum(isinstance(m, D.GlobalBatchNorm2d) for m in model.modules())
        res["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        res["phases"] = _two_phases(toy_clap(SEED + 1), world)
        torch.save(res, f"{out}.{rank}")
    finally:
        D.shutdown(world)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = str(tmp_path_factory.mktemp("ddp") / "rank")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=W, join=True)
    return [torch.load(f"{out}.{r}", weights_only=False) for r in range(W)]


@pytest.fixture(scope="module")
def reference() -> dict:
    x, captions = toy_data(BATCH * STEPS, SEED)
    model = toy_clap(SEED)
    losses = toy_steps(model, D.single_process("cpu"), x, captions, _batches())
    return {
        "losses": losses,
        "state": model.state_dict(),
        "start": toy_clap(SEED).state_dict(),
        "phases": _two_phases(toy_clap(SEED + 1), D.single_process("cpu")),
        "phases_start": toy_clap(SEED + 1).state_dict(),
    }


@pytest.mark.slow  # 2 spawned processes (~10 s, shared by these tests)
def test_ranks_join_a_gloo_world(ranks):
    assert [r["world"] for r in ranks] == [(0, 2, "cpu"), (1, 2, "cpu")]
    assert all(r["wrapped"] == "DistributedDataParallel" for r in ranks)
    assert all(r["n_global_bn"] == 13 for r in ranks)  # bn0 + 2 per conv block, converted by wrap_model


@pytest.mark.slow  # 2 spawned processes (~10 s, shared by these tests)
def test_torch_syncbatchnorm_still_refuses_cpu(ranks):
    # if this fails, torch's SyncBatchNorm runs on CPU now: use it in sync_batchnorm and drop GlobalBatchNorm2d
    assert "expected input tensor to be on GPU" in ranks[0]["syncbn"]


@pytest.mark.slow  # 2 spawned processes (~10 s, shared by these tests)
def test_gather_backward_gives_each_rank_world_size_times_its_gradient(ranks):
    E_a, E_t = (e.clone().requires_grad_() for e in _embeddings())
    ref = clip_loss(E_a, E_t, torch.tensor(2.0, dtype=torch.float64), 100.0)
    ref.backward()
    k = len(E_a) // W
    for r, res in enumerate(ranks):
        loss, g_a, g_t = res["gather"]
        assert loss == pytest.approx(ref.item(), abs=1e-12)
        torch.testing.assert_close(g_a, W * E_a.grad[r * k : (r + 1) * k], rtol=0, atol=1e-12)
        torch.testing.assert_close(g_t, W * E_t.grad[r * k : (r + 1) * k], rtol=0, atol=1e-12)


@pytest.mark.slow  # 2 spawned processes (~10 s, shared by these tests)
def test_two_processes_train_the_single_process_model(ranks, reference):
    assert len(reference["losses"]) == STEPS
    for res in ranks:
        np.testing.assert_allclose(res["losses"], reference["losses"], rtol=0, atol=TOL)
    moved = 0.0
    for k, v in reference["state"].items():  # parameters and the BatchNorm running statistics
        for res in ranks:
            np.testing.assert_allclose(
                res["state"][k].double().numpy(), v.double().numpy(), rtol=0, atol=TOL, err_msg=k
            )
        moved = max(moved, float((v.double() - reference["start"][k].double()).abs().max()))
    assert moved > 1e-3  # training changed the model, so the agreement is not that of two untouched copies


@pytest.mark.slow  # 2 spawned processes (~10 s, shared by these tests)
def test_frozen_then_unfrozen_phases_train_as_one_process(ranks, reference):
    ref_losses, ref_frozen, ref_final = reference["phases"]
    start = reference["phases_start"]
    for res in ranks:
        losses, frozen, final = res["phases"]
        np.testing.assert_allclose(losses, ref_losses, rtol=0, atol=TOL)
        for k in ref_final:
            np.testing.assert_allclose(frozen[k].numpy(), ref_frozen[k].numpy(), rtol=0, atol=TOL, err_msg=k)
            np.testing.assert_allclose(final[k].numpy(), ref_final[k].numpy(), rtol=0, atol=TOL, err_msg=k)
            weight = k.startswith(("audio.", "text.")) and "running" not in k and "batches" not in k
            if weight:  # backbone weights: still in phase 1, moved in phase 2 (but the unused head)
                assert torch.equal(frozen[k], start[k]), k
                assert torch.equal(final[k], start[k]) == k.startswith("audio.fc_audioset"), k
    assert not torch.equal(ref_frozen["audio_proj.linear1.weight"], start["audio_proj.linear1.weight"])


def test_wrap_model_is_the_identity_in_one_process():
    model = Cnn14(32, 1 / 32, 4, p_block=0.0, p_fc=0.0)
    assert D.wrap_model(model, D.single_process("cpu")) is model
    assert not any(isinstance(m, D.GlobalBatchNorm2d) for m in model.modules())


def test_global_batchnorm_is_batchnorm_outside_a_process_group():
    model = Cnn14(32, 1 / 32, 4, p_block=0.0, p_fc=0.0)
    keys = list(model.state_dict())
    ref = Cnn14(32, 1 / 32, 4, p_block=0.0, p_fc=0.0)
    ref.load_state_dict(model.state_dict())
    D.use_global_batchnorm(model)
    assert list(model.state_dict()) == keys  # checkpoints load unchanged
    x = torch.randn(3, 64, 32)
    assert torch.equal(model(x), ref(x))  # training mode, no process group: plain batch norm
    assert torch.equal(model.bn0.running_var, ref.bn0.running_var)


def test_shards_partition_the_global_batch():
    batch = np.arange(12)
    shards = [D.World(r, 3).shard(batch) for r in range(3)]
    assert np.array_equal(np.concatenate(shards), batch) and all(len(s) == 4 for s in shards)
    with pytest.raises(ValueError, match="batch of 10 cannot be split evenly over 3 ranks"):
        D.World(0, 3).shard(np.arange(10))
    order = D.epoch_order(10, seed=0, epoch=1, salt=11)
    assert sorted(order) == list(range(10))
    assert np.array_equal(order, D.epoch_order(10, 0, 1, 11)) and not np.array_equal(order, D.epoch_order(10, 0, 2, 11))
    assert [len(b) for b in D.global_batches(order, 4)] == [4, 4]  # the incomplete last batch is dropped
    assert [len(b) for b in D.global_batches(order, 2, fraction=0.5)] == [2, 2]  # first 5 items, 2 full batches
    parts = [D.World(r, 3).split(np.arange(7)) for r in range(3)]
    assert [len(p) for p, _ in parts] == [3, 2, 2] and parts[0][1] == [3, 2, 2]


def test_grid_jobs_exact_command_lines():
    jobs = D.grid_jobs(["--set", "seed=1"], D.Launcher(nproc=2, python="py"), ("dirty", "none"), ("clean",))
    torchrun = "py -m torch.distributed.run --standalone --nproc_per_node=2 -m clap_lib run --set seed=1"
    assert [(j.phase, j.name, j.command) for j in jobs] == [
        (0, "prepare", f"{torchrun} --step prepare --pretrainings dirty,none --trainings clean"),
        (1, "clap[dirty,clean]", f"{torchrun} --step clap --pretrainings dirty --trainings clean"),
        (1, "clap[none,clean]", f"{torchrun} --step clap --pretrainings none --trainings clean"),
        (2, "grid", "py -m clap_lib run --set seed=1 --step grid --pretrainings dirty,none --trainings clean"),
    ]
    assert D.format_jobs(jobs).splitlines()[::2][:2] == [
        "# phase 0",
        "# phase 1 (independent: run concurrently, e.g. one node each)",
    ]
    single = D.grid_jobs([], D.Launcher(python="py", command="train"), ("clean",), ("dirty",))
    assert single[1].argv == (
        "py",
        "-m",
        "clap_lib",
        "train",
        "--step",
        "clap",
        "--pretrainings",
        "clean",
        "--trainings",
        "dirty",
    )
    assert len(D.grid_jobs()) == 1 + 3 * 3 + 1  # the default grid: every pretraining x every training


def test_grid_jobs_reject_bad_values():
    with pytest.raises(ValueError, match=r"nproc=0.*>= 1"):
        D.Launcher(nproc=0)
    with pytest.raises(ValueError, match=r"pretrainings \['dirty', 'imagenet'\].*\['dirty', 'clean', 'none'\]"):
        D.grid_jobs([], D.Launcher(), ("dirty", "imagenet"))
    with pytest.raises(ValueError, match=r"trainings \[\]"):
        D.grid_jobs([], D.Launcher(), ("dirty",), ())


def test_run_jobs_stops_at_the_first_failing_phase(tmp_path):
    mark = tmp_path / "ran"
    py = sys.executable
    jobs = [
        D.TorchrunJob(0, "ok", (py, "-c", "pass")),
        D.TorchrunJob(1, "bad", (py, "-c", "raise SystemExit(3)")),
        D.TorchrunJob(2, "never", (py, "-c", f"open({str(mark)!r}, 'w')")),
    ]
    assert D.run_jobs(jobs) == 3
    assert not mark.exists()
    assert D.run_jobs([jobs[0], jobs[2]], concurrent=2) == 0 and mark.exists()


def test_distributed_imports_no_pipeline_module():
    code = (
        "import sys, clap_lib.training.distributed; print(' '.join(m for m in sys.modules if m.startswith('clap_lib')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "clap_lib.training.distributed" in loaded
    assert not {"clap_lib.paper.inputs", "clap_lib.experiment", "clap_lib.cli", "clap_lib.training.trainer"} & set(
        loaded
    ), loaded
