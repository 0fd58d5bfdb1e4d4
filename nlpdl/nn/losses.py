"""Per-example losses (shape [B], for the caller to weight, mask and reduce), plus a registry."""

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from nlpdl.nn.activations import log_sum_exp, unknown_name_error


def cross_entropy_by_autodiff(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """-log softmax(logits)[label] written out, its gradient left to autodiff: what `cross_entropy` must equal
    (and the loss of the backprop lesson, whose point is autodiff). The label's logit is picked with a mask, not a
    gather, so its gradient is elementwise rather than a scatter into a zeroed buffer as large as the logits."""
    class_BxC = jax.lax.broadcasted_iota(labels_B.dtype, logits_BxC.shape, logits_BxC.ndim - 1)
    is_label_BxC = class_BxC == labels_B[..., None]
    return log_sum_exp(logits_BxC) - jnp.sum(jnp.where(is_label_BxC, logits_BxC, 0.0), axis=-1)


def _label_logit(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    # clipped: a label outside the classes (a padding position the caller weights 0) must not read NaN
    return jnp.take_along_axis(logits_BxC, labels_B[..., None], axis=-1, mode="clip")[..., 0]


@jax.custom_vjp
def cross_entropy(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """-log softmax(logits)[label] per example, for integer labels; any leading shape ([B] or [B, T] labels).

    Its gradient is written by hand, softmax minus one-hot, in one elementwise pass over the logits. Autodiff of
    the same formula (`cross_entropy_by_autodiff`) costs six reads and three writes of a B x T x V buffer (picking
    the label's logit, keeping exp(logits - max) for the backward pass, reducing it); here the forward pass reads
    the logits twice (max, then the sum of exponentials) and gathers the labels' logits, and the backward pass
    reads them once and writes the gradient (the PTB LSTM and GPT steps: benchmarks/RESULTS.md)."""
    return log_sum_exp(logits_BxC) - _label_logit(logits_BxC, labels_B)


def _cross_entropy_fwd(logits_BxC, labels_B):
    lse_B = log_sum_exp(logits_BxC)
    return lse_B - _label_logit(logits_BxC, labels_B), (logits_BxC, lse_B, labels_B)


def _cross_entropy_bwd(residuals, ct_B):
    logits_BxC, lse_B, labels_B = residuals
    class_BxC = jax.lax.broadcasted_iota(labels_B.dtype, logits_BxC.shape, logits_BxC.ndim - 1)
    one_hot_BxC = (class_BxC == labels_B[..., None]).astype(logits_BxC.dtype)
    grad_BxC = (jnp.exp(logits_BxC - lse_B[..., None]) - one_hot_BxC) * ct_B[..., None].astype(logits_BxC.dtype)
    # one pass that writes the gradient once: without the barrier XLA:CPU wrote exp(...) out, then the gradient
    # twice over (once per consumer's layout)
    return jax.lax.optimization_barrier(grad_BxC), None


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def label_is_top(logits_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Whether the label's logit is the largest (a tie for the largest counts): top-1 accuracy without an argmax,
    whose (value, index) reduction XLA:CPU runs unvectorised (4 ms of a 104 ms PTB LSTM step on one core)."""
    return _label_logit(logits_BxC, labels_B) >= jnp.max(logits_BxC, axis=-1)


def binary_cross_entropy(logits_B: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Sigmoid cross-entropy from logits, max(x,0) - x*y + log1p(exp(-|x|)); accepts [B] or [B,1] logits."""
    if logits_B.ndim == labels_B.ndim + 1:
        logits_B = logits_B[..., 0]
    y = labels_B.astype(logits_B.dtype)
    return jnp.maximum(logits_B, 0) - logits_B * y + jnp.log1p(jnp.exp(-jnp.abs(logits_B)))


def mse(outputs_BxC: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Mean over classes of the squared error against one-hot targets."""
    targets_BxC = jax.nn.one_hot(labels_B, outputs_BxC.shape[-1], dtype=outputs_BxC.dtype)
    return jnp.mean((outputs_BxC - targets_BxC) ** 2, axis=-1)


def argmax_predict(outputs_BxC: jax.Array) -> jax.Array:
    """The class with the largest output."""
    return jnp.argmax(outputs_BxC, axis=-1).astype(jnp.int32)


def sign_predict(logits_Bx1: jax.Array) -> jax.Array:
    """Class 1 where the single logit is positive, else 0."""
    return (logits_Bx1[..., 0] > 0).astype(jnp.int32)


def softmax_probabilities(outputs_BxC: jax.Array) -> jax.Array:
    return jax.nn.softmax(outputs_BxC, axis=-1)


def sigmoid_probabilities(logits_Bx1: jax.Array) -> jax.Array:
    """P(class 0), P(class 1) from the single logit."""
    p1_B = jax.nn.sigmoid(logits_Bx1[..., 0])
    return jnp.stack([1.0 - p1_B, p1_B], axis=-1)


def one_output_per_class(num_classes: int) -> int:
    """C outputs for C classes."""
    return num_classes


def one_output_for_two_classes(num_classes: int) -> int:
    """A single logit, which only makes sense for two classes."""
    if num_classes != 2:
        raise ValueError(f"binary_cross_entropy needs exactly 2 classes, got {num_classes}.")
    return 1


@dataclass(frozen=True)
class Loss:
    """A per-example loss, how many model outputs it needs for C classes, how it predicts, and the class
    probabilities it models (B x C)."""

    fn: Callable[[jax.Array, jax.Array], jax.Array]
    num_outputs: Callable[[int], int]
    predict: Callable[[jax.Array], jax.Array]
    probabilities: Callable[[jax.Array], jax.Array]


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(cross_entropy, one_output_per_class, argmax_predict, softmax_probabilities),
    "binary_cross_entropy": Loss(binary_cross_entropy, one_output_for_two_classes, sign_predict,
                                 sigmoid_probabilities),
    # MSE regresses one-hot targets; its outputs are read as scores, normalised by a softmax
    "mse": Loss(mse, one_output_per_class, argmax_predict, softmax_probabilities),
}


def get_loss(name: str) -> Loss:
    """The Loss registered under `name`; ValueError with suggestions if unknown."""
    try:
        return LOSSES[name]
    except KeyError:
        raise unknown_name_error("loss", name, LOSSES) from None
