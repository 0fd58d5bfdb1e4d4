"""Train state, optimizers, the pure steps, checkpoints and the loop."""
