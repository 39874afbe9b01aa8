"""Multi-process training on the CPU (2 processes, gloo) on the toy world: ranks draw different
slices of one global batch; AnyDressing's dressing stage (gradients averaged by hand, its modules
called unwrapped) after 2 steps on 2 processes with batch 1 equals 1 process with batch 2, far closer
than a run on another global batch; a 2-process run killed after its first checkpoint resumes to the
uninterrupted weights. The other trainers: ``python -m atelier.train.multiprocess_check``."""

import torch

from atelier.train.anydressing.data import ToyDressing, batch_for_step
from atelier.train.multiprocess_check import check


def test_ranks_take_their_own_slices_of_the_global_batch():
    data = ToyDressing(32, count=12, categories=("upper", "lower"))
    whole = batch_for_step(data, data.groups, 5, 4, 0)
    parts = [batch_for_step(data, data.groups, 5, 2, 0, process=rank, processes=2) for rank in (0, 1)]
    assert not torch.equal(parts[0].persons, parts[1].persons)
    assert torch.equal(torch.cat([part.persons for part in parts]), whole.persons)
    assert torch.equal(batch_for_step(data, data.groups, 5, 4, 0, process=0, processes=1).persons, whole.persons)


def test_two_processes_follow_one_and_a_killed_run_resumes(tmp_path):
    result = check("anydressing", tmp_path, steps=2)
    assert result.two_vs_one < 1e-4
    assert result.gate_half_batch > 20 * result.two_vs_one
    assert result.killed_mid_run
    assert result.resumed_vs_uninterrupted == 0.0
