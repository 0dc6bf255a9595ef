"""Reads a zero checkpoint (docs/checkpoint-format.md) with numpy alone.

    import zero_checkpoint
    ckpt = zero_checkpoint.load("ckpt")          # a checkpoint root (its `latest`) or a step-S directory
    ckpt.step, ckpt.rows                         # optimizer steps done, data rows consumed
    ckpt.tensor("fc1.weight")                    # the whole tensor, from every rank's slice
    ckpt.tensor("fc1.weight/exp_avg")            # AdamW's first moment (PyTorch's state_dict name)
    ckpt.tensor("bn.running_mean", rank=1)       # model state as rank 1 trained it
    ckpt.names("parameter")                      # tensor names of one kind

Checksums are verified when a file is first read.
"""
import json
import os
import zlib

import numpy as np

FORMAT_VERSION = 1
_DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8")}


class Checkpoint:
    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "manifest.json")) as f:
            self.manifest = json.load(f)
        if self.manifest.get("format") != "zero-checkpoint":
            raise ValueError(f"{path}: not a zero checkpoint")
        if self.manifest["version"] != FORMAT_VERSION:
            raise ValueError(f"{path}: checkpoint format version {self.manifest['version']} (this reader: {FORMAT_VERSION})")
        self.step, self.rows = self.manifest["step"], self.manifest["rows"]
        self.world_size = self.manifest["world_size"]
        self._tensors = {t["name"]: t for t in self.manifest["tensors"]}
        self._files = {}

    def names(self, kind=None):
        return [t["name"] for t in self.manifest["tensors"] if kind is None or t["kind"] == kind]

    def _file(self, rank):
        if rank not in self._files:
            entry = self.manifest["files"][rank]
            with open(os.path.join(self.path, entry["name"]), "rb") as f:
                data = f.read()
            if len(data) != entry["bytes"] or zlib.crc32(data) != entry["crc32"]:
                raise ValueError(f"{self.path}/{entry['name']}: size or checksum mismatch")
            self._files[rank] = data
        return self._files[rank]

    def tensor(self, name, rank=0):
        """The whole tensor: its slices concatenated (per-rank model state: `rank`'s copy)."""
        t = self._tensors[name]
        dtype = _DTYPES[t["dtype"]]
        numel = int(np.prod(t["shape"], dtype=np.int64))
        if t["per_rank"]:
            parts = [np.frombuffer(self._file(rank), dtype, numel, t["offsets"][rank])]
        else:
            parts = []
            for q in range(self.world_size):
                begin = min(numel, q * t["slice"])
                count = min(t["slice"], numel - begin)
                if count:
                    parts.append(np.frombuffer(self._file(q), dtype, count, t["offsets"][q]))
        return np.concatenate(parts).reshape(t["shape"])


def load(path):
    """A checkpoint directory, or the one a checkpoint root's `latest` names."""
    latest = os.path.join(path, "latest")
    if os.path.exists(latest):
        with open(latest) as f:
            path = os.path.join(path, f.read().strip())
    return Checkpoint(path)
