"""A training order that survives a restart: shuffled by (seed, epoch) alone, resumable mid-epoch.

``DataLoader(shuffle=True)`` draws each epoch's order from the global torch generator, so
the order depends on everything that drew from it before (weight initialisation, other
loaders, how many epochs ran in this process). :class:`EpochSampler` makes the order a pure
function of ``(seed, epoch)``, and :class:`ResumableLoader` tells Lightning how far into
the epoch it got (``state_dict``), so a run resumed from a mid-epoch checkpoint sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def _replicas() -> tuple[int, int]:
    """(rank, number of processes) of a distributed run; (0, 1) otherwise."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler[int]):
    """Indices ``0 .. n-1`` in an order that depends on ``(seed, epoch)`` only.

    Lightning calls :meth:`set_epoch` at every epoch start. :meth:`skip` drops the first
    indices of one epoch's order (the batches a resumed run already trained on). In a
    distributed run each process takes every ``world``-th index of the same order (the
    order repeated from its start to a whole number per process), so the loader itself
    shards and Lightning must not swap in its own sampler (``use_distributed_sampler=False``).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0
        self._skip_epoch, self._skip = -1, 0

    def __len__(self) -> int:
        return -(-self.n // _replicas()[1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip(self, epoch: int, count: int) -> None:
        """Leave out the first ``count`` indices of ``epoch``'s order, once."""
        self._skip_epoch, self._skip = int(epoch), int(count)

    def order(self, epoch: int) -> list[int]:
        # numpy's seed sequence mixes both numbers (torch's generator keeps 32 bits of a seed)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n).tolist()

    def __iter__(self) -> Iterator[int]:
        # a generator: the order is drawn at the first index, after Lightning's set_epoch
        start = self._skip if self.epoch == self._skip_epoch else 0
        self._skip_epoch, self._skip = -1, 0
        order = self.order(self.epoch)
        rank, world = _replicas()
        if world > 1:
            order = (order * world)[: len(self) * world][rank::world]
        yield from order[start:]


class ResumableLoader(DataLoader):
    """A shuffling training loader whose position within the epoch is checkpointed.

    Lightning saves ``state_dict()`` with every checkpoint and hands it back to
    ``load_state_dict`` on resume (any loader with both methods is resumable to it).
    The state is ``{"epoch", "batches"}``: the batches served so far in that epoch.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__(dataset, batch_size=batch_size, num_workers=num_workers,
                         sampler=EpochSampler(len(dataset), seed),  # type: ignore[arg-type]
                         generator=torch.Generator().manual_seed(int(seed)))
        self.seed = int(seed)
        self._served, self._resume = 0, (-1, 0)  # (epoch, batches already served in it)

    def __iter__(self) -> Iterator:  # type: ignore[override]
        # a generator: runs at the first batch, after Lightning's set_epoch for this epoch
        epoch, batches = self._resume
        self._served = batches if self.sampler.epoch == epoch else 0
        self._resume = (-1, 0)
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._served, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state.get("seed", self.seed)) != self.seed:
            raise ValueError(f"the checkpoint's training order has seed={state['seed']}, this "
                             f"run seed={self.seed}; resume with the run's own seed")
        epoch, batches = int(state["epoch"]), int(state["batches"])
        self.sampler.set_epoch(epoch)
        self.sampler.skip(epoch, batches * int(self.batch_size))
        self._resume = (epoch, batches)
