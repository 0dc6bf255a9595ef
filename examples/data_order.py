"""The order zero-run reads a dataset's rows in (tools/zero-run/data_order.h), for Python.

    rows = data_order.rows(step, rank, world, micro_batch, dataset_rows, shuffle, seed)

gives the rows rank `rank` of `world` reads at optimizer step `step`; a PyTorch
reference of a zero run takes the rows of every rank in rank order.
"""
MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def permutation(rows, seed, epoch):
    """Epoch `epoch`'s permutation of range(rows) (Fisher-Yates from splitmix64)."""
    key = splitmix64((splitmix64(seed) + epoch) & MASK)
    perm = list(range(rows))
    for t in range(rows - 1, 0, -1):
        j = (splitmix64((key + t) & MASK) * (t + 1)) >> 64
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
