"""Text classifiers. `mr_ffn`: a feed-forward net over averaged word embeddings on MR."""

from nlpdl.config import DataConfig, ExperimentConfig, OptimConfig, Sweep, TaskConfig, TrainConfig, register
from nlpdl.models.ffn import FFNConfig


MR_FFN_SWEEPS = {
    "activations": Sweep(grid={"model.activation": ("sigmoid", "tanh", "relu", "leaky_relu")}, seeds=3),
    # each optimizer at a learning rate that suits it
    "optimizers": Sweep(zip={"optim.name": ("sgd", "momentum", "adagrad", "adadelta", "adam"),
                             "optim.lr": ("0.5", "0.05", "0.1", "1.0", "0.001")}, seeds=3),
    "depth": Sweep(grid={"model.num_layers": ("0", "1", "2", "3")}, seeds=3),
}


@register("mr_ffn", "feed-forward classifier over averaged word embeddings, MR (test = CV fold 0)",
          sweeps=MR_FFN_SWEEPS)
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
