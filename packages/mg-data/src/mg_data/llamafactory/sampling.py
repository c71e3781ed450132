"""An entry's `num_samples` draw, the same rows LLaMA-Factory 0.9.5 draws for a seed.

LLaMA-Factory (data/loader.py) takes `np.random.permutation(n)[:num_samples]` (every row once, in random
order) and, when num_samples exceeds n, `np.random.choice(n, rest)` more (repeats). numpy's global generator
is seeded by the training seed (transformers' set_seed; 42 by default) before the data is loaded.

mg-data has no numpy: this reproduces that legacy RandomState stream with Python's own Mersenne Twister
(the same MT19937), seeded as numpy seeds it (init_genrand, where Python's `random.seed` uses
init_by_array), and numpy's bounded draws (a bit mask and rejection, 32-bit draws while the bound fits).
So the first dataset with num_samples in a LLaMA-Factory run gets exactly its rows; a later one in the same
run draws from where the earlier draws left numpy's generator, which is not reproduced here (each entry
starts from the seed).
"""

from __future__ import annotations

import random

_N = 624


def numpy_legacy_random(seed: int) -> random.Random:
    """A Random whose 32-bit draws are numpy's `np.random.seed(seed)` stream."""
    state = [seed & 0xFFFFFFFF]
    for i in range(1, _N):
        previous = state[-1]
        state.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
    rng = random.Random()
    rng.setstate(
        (3, (*state, _N), None)
    )  # position 624: the next draw regenerates the block, as numpy's does
    return rng


def _bounded(rng: random.Random, top: int) -> int:
    """A uniform integer in [0, top]: numpy's random_interval (and its masked randint)."""
    if top == 0:
        return 0
    mask = top
    for shift in (1, 2, 4, 8, 16, 32):
        mask |= mask >> shift
    while True:
        if top <= 0xFFFFFFFF:
            value = rng.getrandbits(32) & mask
        else:
            value = ((rng.getrandbits(32) << 32) | rng.getrandbits(32)) & mask
        if value <= top:
            return value


def sample_indices(total: int, count: int, seed: int) -> list[int]:
    """LLaMA-Factory's num_samples indices into `total` rows."""
    rng = numpy_legacy_random(seed)
    order = list(range(total))
    for i in range(total - 1, 0, -1):  # numpy's legacy shuffle: Fisher-Yates from the end
        j = _bounded(rng, i)
        order[i], order[j] = order[j], order[i]
    picked = order[:count]
    picked += [_bounded(rng, total - 1) for _ in range(count - len(picked))]
    return picked
