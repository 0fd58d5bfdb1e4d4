"""The PyTorch models a researcher would otherwise train, at the shapes and with the optimizers of nlpdl's
experiments: a Zaremba LSTM LM, a GPT-style decoder, Kim's CNN. Benchmark-only: nlpdl never imports this.

Each `make_*` returns a `step(batch) -> loss` closure that runs one full training step (forward, backward,
clipping, optimizer update) on numpy batches shaped as nlpdl's, plus the parameter count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _lm_update(model: nn.Module, opt, logits, targets, clip_norm: float):
    """Token-mean cross-entropy, backward, clipping, one optimizer step."""
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return loss


class LSTMLM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float, init_scale: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -init_scale, init_scale)

    def forward(self, x, state):
        h, state = self.lstm(self.drop(self.embed(x)), state)
        return self.out(self.drop(h)), state


def make_lstm_lm(cfg, vocab: int):
    m, o = cfg.model, cfg.optim
    model = LSTMLM(vocab, m.embed_dim, m.hidden, m.num_layers, m.dropout, m.init_scale).train()
    opt = torch.optim.SGD(model.parameters(), lr=o.lr)
    state = None

    def step(batch):
        nonlocal state
        x, y = torch.from_numpy(batch["inputs"]).long(), torch.from_numpy(batch["targets"]).long()
        if state is not None:
            state = tuple(s.detach() for s in state)  # truncated BPTT: the carry goes on, its gradient stops
        logits, state = model(x, state)
        return _lm_update(model, opt, logits, y, o.clip_norm)

    return step, sum(p.numel() for p in model.parameters())


class Block(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.drop, self.p, self.heads = nn.Dropout(dropout), dropout, heads

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, D)))
        return x + self.drop(self.down(self.drop(F.gelu(self.up(self.ln2(x))))))


class GPT(nn.Module):
    def __init__(self, vocab: int, d: int, heads: int, layers: int, d_ff: int, context: int, dropout: float):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff, dropout) for _ in range(layers))
        self.ln, self.drop = nn.LayerNorm(d), nn.Dropout(dropout)
        for name, p in self.named_parameters():
            if p.dim() > 1:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, x):
        h = self.drop(self.embed(x) + self.pos(torch.arange(x.shape[1]))[None])
        for block in self.blocks:
            h = block(h)
        return self.ln(h) @ self.embed.weight.T  # tied output, as nlpdl's


def make_gpt(cfg, vocab: int, compile: bool = False):
    m, o = cfg.model, cfg.optim
    model = GPT(vocab, m.d_model, m.num_heads, m.num_layers, m.d_ff, m.context, m.dropout).train()
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=o.lr, betas=(o.b1, o.b2))
    forward = torch.compile(model) if compile else model

    def step(batch):
        x, y = torch.from_numpy(batch["inputs"]).long(), torch.from_numpy(batch["targets"]).long()
        return _lm_update(model, opt, forward(x), y, o.clip_norm)

    return step, sum(p.numel() for p in model.parameters())


class KimCNN(nn.Module):
    def __init__(self, vocab: int, embed: int, widths: tuple[int, ...], maps: int, classes: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        nn.init.uniform_(self.embed.weight, -0.25, 0.25)
        self.convs = nn.ModuleList(nn.Conv1d(embed, maps, w) for w in widths)
        self.drop, self.out, self.widths = nn.Dropout(dropout), nn.Linear(maps * len(widths), classes), widths

    def forward(self, tokens, lengths):
        mask = (torch.arange(tokens.shape[1])[None, :] < lengths[:, None]).float()
        x = (self.embed(tokens) * mask[..., None]).transpose(1, 2)  # B x E x L
        pooled = []
        for w, conv in zip(self.widths, self.convs):
            maps = F.relu(conv(F.pad(x, (w - 1, w - 1))))
            starts = torch.arange(maps.shape[2]) - (w - 1)
            valid = starts[None, None, :] < lengths[:, None, None]  # windows that hold a word of the sentence
            pooled.append(maps.masked_fill(~valid, float("-inf")).amax(dim=2))
        return self.out(self.drop(torch.cat(pooled, dim=1)))


def make_kim_cnn(cfg, vocab: int, classes: int):
    m, o = cfg.model, cfg.optim
    model = KimCNN(vocab, m.embed_dim, m.widths, m.maps, classes, m.dropout).train()
    opt = torch.optim.Adadelta(model.parameters(), lr=o.lr, rho=o.rho, eps=o.eps)

    def step(batch):
        tokens, lengths = torch.from_numpy(batch["tokens"]).long(), torch.from_numpy(batch["lengths"]).long()
        loss = F.cross_entropy(model(tokens, lengths), torch.from_numpy(np.asarray(batch["labels"])).long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # Kim: each class's weight vector within L2 norm max_norm
            w = model.out.weight
            w.mul_(torch.clamp(o.max_norm / w.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0))
        return loss

    return step, sum(p.numel() for p in model.parameters())
