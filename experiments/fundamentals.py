"""The course's fundamentals as experiments: XOR needs a hidden layer."""

from nlpdl.config import (DataConfig, ExperimentConfig, OptimConfig, TaskConfig, TrainConfig, register)
from nlpdl.models.ffn import FFNConfig


@register("xor", "2-layer ReLU network learns XOR (full-batch gradient descent on the 4 points)")
def xor(variant: str) -> ExperimentConfig:
    return ExperimentConfig(
        name="xor",
        description="2-layer ReLU network on XOR",
        task=TaskConfig(loss="cross_entropy"),
        data=DataConfig(dataset="xor", full_batch=True, eval_batch_size=4),
        model=FFNConfig(input="features", hidden=8, num_layers=1, activation="relu"),
        optim=OptimConfig(name="sgd", lr=0.5),
        train=TrainConfig(steps=60 if variant == "tiny" else 500, eval_every=20 if variant == "tiny" else 100,
                          log_every=10, seed=0),
    )
