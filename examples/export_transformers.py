#!/usr/bin/python3
"""Export small transformer models (GPT-2-style decoders, a BERT-style classifier) and their data.

usage: /usr/bin/python3 examples/export_transformers.py OUTDIR [NAME ...]   (default: every model)

Writes, deterministically (fixed seeds), for each model NAME:
  OUTDIR/NAME.onnx      forward(inputs..., targets) -> scalar cross-entropy loss,
                        exported with opset 17, TrainingMode.TRAINING, do_constant_folding=False
  OUTDIR/NAME_data/     one INPUT.npy (int64, rows along dimension 0) per model input

Models (see MODELS):
  gpt_tied, gpt_untied          causal decoder, hand-written attention (matmul, masked_fill with a
                                registered bool triu buffer, softmax); LM head tied to / separate
                                from the token embedding
  gpt_mha_tied, gpt_mha_untied  the same with nn.MultiheadAttention(batch_first=True, attn_mask=...)
  bert_postln, bert_preln       encoder + classifier: token + position + token-type embeddings,
                                padding mask input, post-LN / pre-LN blocks, Tanh pooler on token 0

The GPTs take inputs idx, tgt [b, T] (tgt = idx shifted by one token); the BERTs take
ids, types, mask [b, T] and label [b].  b is the per-rank micro-batch (MICRO_BATCH).
The model classes are importable: make(NAME) returns (torch module, {input: array}).
"""
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MICRO_BATCH = 2
ROWS = 64  # dataset rows per model


def init_weights(module, std=0.02):
    """GPT-2 / BERT initialisation: N(0, std) weights for Linear and Embedding, zero biases,
    LayerNorm (1, 0).  MultiheadAttention's packed in_proj gets the same."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.normal_(m.in_proj_weight, 0.0, std)
            nn.init.zeros_(m.in_proj_bias)


# --- GPT ------------------------------------------------------------------------------------------
class GPTBlock(nn.Module):
    """Pre-LayerNorm decoder block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, d, heads, mha):
        super().__init__()
        self.heads, self.mha = heads, mha
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        if mha:
            self.attn = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        else:
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attention(self, h, mask):
        if self.mha:
            return self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        b, t, d = h.shape
        hd = d // self.heads
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in self.qkv(h).split(d, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))

    def forward(self, x, mask):
        x = x + self.attention(self.ln1(x), mask)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab=64, d=32, heads=4, layers=2, seq=8, mha=False, tied=True):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList([GPTBlock(d, heads, mha) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        if tied:
            self.head.weight = self.tok.weight
        # True above the diagonal: position i may not attend to j > i.
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))
        init_weights(self)

    def forward(self, idx, tgt):
        b, t = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(t))
        for blk in self.blocks:
            x = blk(x, self.mask)
        logits = self.head(self.ln(x))
        return F.cross_entropy(logits.reshape(b * t, -1), tgt.reshape(b * t))


def gpt_data(vocab, seq, rows=ROWS, seed=1):
    """Learnable token streams: arithmetic progressions mod vocab with a random start and stride."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, vocab, (rows, 1))
    stride = rng.integers(1, 4, (rows, 1))
    s = (start + stride * np.arange(seq + 1)) % vocab
    return {"idx": s[:, :-1].astype(np.int64), "tgt": s[:, 1:].astype(np.int64)}


# --- BERT -----------------------------------------------------------------------------------------
class BertBlock(nn.Module):
    """Encoder block, bidirectional attention with an additive padding mask; post-LN or pre-LN."""

    def __init__(self, d, heads, pre_ln):
        super().__init__()
        self.heads, self.pre_ln = heads, pre_ln
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attention(self, h, bias):
        b, t, d = h.shape
        hd = d // self.heads
        q, k, v = (f(h).view(b, t, self.heads, hd).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = F.softmax((q @ k.transpose(-2, -1)) / math.sqrt(hd) + bias, dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(b, t, d))

    def forward(self, x, bias):
        mlp = lambda z: self.out(F.gelu(self.fc(z)))  # noqa: E731
        if self.pre_ln:
            x = x + self.attention(self.ln1(x), bias)
            return x + mlp(self.ln2(x))
        x = self.ln1(x + self.attention(x, bias))
        return self.ln2(x + mlp(x))


class Bert(nn.Module):
    def __init__(self, vocab=64, d=32, heads=4, layers=2, seq=8, types=2, classes=3, pre_ln=False):
        super().__init__()
        self.pre_ln = pre_ln
        self.tok, self.pos, self.typ = nn.Embedding(vocab, d), nn.Embedding(seq, d), nn.Embedding(types, d)
        self.ln_emb = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([BertBlock(d, heads, pre_ln) for _ in range(layers)])
        if pre_ln:
            self.ln_final = nn.LayerNorm(d)
        self.pool = nn.Linear(d, d)
        self.cls = nn.Linear(d, classes)
        init_weights(self)

    def forward(self, ids, types, mask, label):
        b, t = ids.shape
        x = self.ln_emb(self.tok(ids) + self.pos(torch.arange(t)) + self.typ(types))
        # mask: int64 [b, t], 1 = real token, 0 = padding -> additive bias [b, 1, 1, t].
        bias = (1.0 - mask.to(x.dtype)).reshape(b, 1, 1, t) * -10000.0
        for blk in self.blocks:
            x = blk(x, bias)
        if self.pre_ln:
            x = self.ln_final(x)
        pooled = torch.tanh(self.pool(x[:, 0]))
        return F.cross_entropy(self.cls(pooled), label)


def bert_data(vocab, seq, classes, rows=ROWS, seed=2):
    """[CLS]=1, tokens in 3..vocab-1, a [SEP]=2 between two segments, padding 0 after a random length.
    The label is a function of the tokens (sum of the first segment mod classes), so it is learnable."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, seq), np.int64)
    types = np.zeros((rows, seq), np.int64)
    mask = np.zeros((rows, seq), np.int64)
    label = np.zeros(rows, np.int64)
    for r in range(rows):
        n = int(rng.integers(seq // 2, seq + 1))  # real tokens including [CLS] and [SEP]
        sep = int(rng.integers(2, n))              # position of [SEP]
        toks = rng.integers(3, vocab, n)
        toks[0], toks[sep] = 1, 2
        ids[r, :n] = toks
        types[r, sep + 1:n] = 1
        mask[r, :n] = 1
        label[r] = int(toks[1:sep].sum()) % classes
    return {"ids": ids, "types": types, "mask": mask, "label": label}


# --- registry ---------------------------------------------------------------------------------------
GPT_CFG = dict(vocab=64, d=32, heads=4, layers=2, seq=8)
BERT_CFG = dict(vocab=64, d=32, heads=4, layers=2, seq=8, types=2, classes=3)
MODELS = {
    "gpt_tied": lambda: (GPT(mha=False, tied=True, **GPT_CFG), gpt_data(GPT_CFG["vocab"], GPT_CFG["seq"])),
    "gpt_untied": lambda: (GPT(mha=False, tied=False, **GPT_CFG), gpt_data(GPT_CFG["vocab"], GPT_CFG["seq"])),
    "gpt_mha_tied": lambda: (GPT(mha=True, tied=True, **GPT_CFG), gpt_data(GPT_CFG["vocab"], GPT_CFG["seq"])),
    "gpt_mha_untied": lambda: (GPT(mha=True, tied=False, **GPT_CFG), gpt_data(GPT_CFG["vocab"], GPT_CFG["seq"])),
    "bert_postln": lambda: (Bert(pre_ln=False, **BERT_CFG),
                            bert_data(BERT_CFG["vocab"], BERT_CFG["seq"], BERT_CFG["classes"])),
    "bert_preln": lambda: (Bert(pre_ln=True, **BERT_CFG),
                           bert_data(BERT_CFG["vocab"], BERT_CFG["seq"], BERT_CFG["classes"])),
}


def make(name):
    """(torch module initialised with seed 0, data dict).  The same call gives the same weights."""
    torch.manual_seed(0)
    model_fn = MODELS[name]
    model, data = model_fn()
    return model, data


def input_names(data):
    return list(data)  # dict order: the forward() argument order


def export(model, data, path, micro_batch=MICRO_BATCH):
    names = input_names(data)
    args = tuple(torch.from_numpy(data[k][:micro_batch]) for k in names)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # math.sqrt(head_dim) etc.
    torch.onnx.export(model, args, path, input_names=names, output_names=["loss"],
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False)


def write(name, outdir, micro_batch=MICRO_BATCH):
    model, data = make(name)
    export(model, data, os.path.join(outdir, name + ".onnx"), micro_batch)
    ddir = os.path.join(outdir, name + "_data")
    os.makedirs(ddir, exist_ok=True)
    for k, v in data.items():
        np.save(os.path.join(ddir, k + ".npy"), v)
    return model, data


def main(outdir, names=None):
    os.makedirs(outdir, exist_ok=True)
    for name in names or MODELS:
        write(name, outdir)
        print(f"wrote {name}.onnx and {name}_data/ in {outdir}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
