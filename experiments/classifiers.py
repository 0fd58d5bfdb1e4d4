"""Text classifiers. `mr_ffn`: a feed-forward net over averaged word embeddings on MR."""

from nlpdl.config import (DataConfig, ExperimentConfig, OptimConfig, TaskConfig, TrainConfig, register)
from nlpdl.models.ffn import FFNConfig


@register("mr_ffn", "feed-forward classifier over averaged word embeddings, MR (test = CV fold 0)")
def mr_ffn(variant: str) -> ExperimentConfig:
    tiny = variant == "tiny"
    return ExperimentConfig(
        name="mr_ffn",
        description="FFN over averaged embeddings on MR",
        task=TaskConfig(loss="cross_entropy"),
        data=DataConfig(dataset="mr", max_len=64, batch_size=50, eval_batch_size=512, num_folds=10, fold=0,
                        valid_fraction=0.1),
        model=FFNConfig(input="embeddings", embed_dim=16 if tiny else 300, hidden=16 if tiny else 100,
                        num_layers=1, activation="relu", dropout=0.0 if tiny else 0.5),
        optim=OptimConfig(name="adam", lr=1e-2 if tiny else 1e-3),
        train=TrainConfig(epochs=0 if tiny else 5, steps=60 if tiny else 0, eval_every=20 if tiny else 0,
                          log_every=10 if tiny else 50),
    )
