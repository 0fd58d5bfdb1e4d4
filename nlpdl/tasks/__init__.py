"""What is being learned: each task builds its data, its loss and how its metrics read.

A task module provides:
  load_data(cfg, data_dir) -> TaskData
  make_loss_fn(cfg) -> (model, batch, *, train, rngs) -> {metric: sum}, with "loss_sum" and "count"
  summarize(sums) -> {metric: value}
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

import grain

from nlpdl.models import DataSpec


@dataclass
class TaskData:
    train: grain.IterDataset  # endless training batches
    evals: dict[str, Callable[[], Iterator[dict]]]  # split -> a fresh pass over it
    steps_per_epoch: int
    batch_size: int  # global batch size (rows)
    spec: DataSpec
    artifacts: dict[str, Any] = field(default_factory=dict)  # name -> object with .save(path), e.g. a vocab


def get_task(name: str) -> ModuleType:
    return importlib.import_module(f"nlpdl.tasks.{name}")
