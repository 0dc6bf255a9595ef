"""zero's random numbers in Python: the order zero-run reads a dataset's rows in
(tools/zero-run/data_order.h) and dropout's masks (runtime/include/zero/training_math.h),
so a PyTorch reference can reproduce a zero run exactly.

    Order(dataset_rows, shuffle, seed).rows(step, rank, world, micro_batch)

gives the rows rank `rank` of `world` reads at optimizer step `step` (global_batch: every
rank's, in rank order), and

    dropout_keep(seed, step, micro_step, rank, stream, count, ratio)

the keep mask (a numpy bool array of `count` elements, row-major) of the Dropout with
index `stream` among the model's training-mode Dropouts, on that rank's micro-batch.
"""
import numpy as np

MASK = (1 << 64) - 1


def splitmix64(x):
    """splitmix64 of a counter (a Python int, returned as one) or of every element of a uint64
    array (wrapping arithmetic, as in C)."""
    scalar = not isinstance(x, np.ndarray)
    x = np.asarray(x & MASK if scalar else x, np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return int(z) if scalar else z


def dropout_key(seed, step, micro_step, rank, stream):
    key = splitmix64(seed)
    for part in (step, micro_step, rank, stream):
        key = splitmix64(key + part)
    return key


def dropout_keep(seed, step, micro_step, rank, stream, count, ratio):
    """Element i survives when the top 24 bits of splitmix64(key + i), over 2^24, are >= ratio."""
    key = dropout_key(seed, step, micro_step, rank, stream)
    with np.errstate(over="ignore"):
        counters = np.uint64(key) + np.arange(count, dtype=np.uint64)
    uniform = (splitmix64(counters) >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return uniform >= np.float32(ratio)


def permutation(rows, seed, epoch):
    """Epoch `epoch`'s permutation of range(rows) (Fisher-Yates from splitmix64)."""
    key = splitmix64(splitmix64(seed) + epoch)
    with np.errstate(over="ignore"):
        draws = splitmix64(np.uint64(key) + np.arange(rows, dtype=np.uint64))  # draws[t] for t
    perm = list(range(rows))
    for t in range(rows - 1, 0, -1):
        j = (int(draws[t]) * (t + 1)) >> 64
        perm[t], perm[j] = perm[j], perm[t]
    return perm


class Order:
    def __init__(self, dataset_rows, shuffle=False, seed=0):
        self.d, self.shuffle, self.seed, self._perms = dataset_rows, shuffle, seed, {}

    def row(self, position):
        if not self.shuffle:
            return position % self.d
        epoch = position // self.d
        if epoch not in self._perms:
            self._perms[epoch] = permutation(self.d, self.seed, epoch)
        return self._perms[epoch][position % self.d]

    def rows(self, step, rank, world, micro_batch):
        first = (step * world + rank) * micro_batch
        return [self.row(first + j) for j in range(micro_batch)]

    def global_batch(self, step, world, micro_batch):
        """Every rank's rows of a step, in rank order: the global batch."""
        return [r for rank in range(world) for r in self.rows(step, rank, world, micro_batch)]
