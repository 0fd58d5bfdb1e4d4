"""A dense layer's matmul whose weight gradient XLA:CPU runs without its slow paths.

For y = x @ W autodiff writes dW = x^T g as a dot over x's first axis. XLA:CPU runs that dot with Eigen, often
after writing a transposed copy of g; a dot over the last axis of its first operand goes to YNNPACK instead. So
on CPU the backward pass transposes the smaller of x and g itself, behind optimization barriers that keep XLA from
folding the transposes (or their producers) back into the dot: the GPT steps 8-11 % faster. For a
vocabulary-sized weight (an LM's output layer) Eigen's dot is as fast, but the copy of the N x V gradient is not:
there the gradient is (g^T x)^T, which XLA computes from g as it was written (the PTB LSTM step 16 % faster on
one core).
Other platforms take autodiff's form. Figures: benchmarks/RESULTS.md.

`Dense` is `nnx.Linear` (same parameters, same initialisation) with this matmul, and with its bias gradient, the
sum of the output gradient over every row, taken as a product with a ones vector (`add_bias`): XLA:CPU then reads
the output gradient as the weight gradient's dot does, and writes it once; summed over the rows of a B x T x V
gradient it had computed that gradient twice, once per layout (and had written exp(logits - lse) out before it).
`dot_general` alone plugs into any Flax layer: `nnx.Linear(..., dot_general=dot_general)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def _weight_grad_cpu(x_NxI: jax.Array, g_NxO: jax.Array) -> jax.Array:
    bar = jax.lax.optimization_barrier  # each keeps XLA from folding a transpose or a producer into the dot
    if g_NxO.shape[1] < x_NxI.shape[1]:  # transpose the smaller operand: (g^T x)^T
        return bar(bar(bar(g_NxO).T) @ bar(x_NxI)).T
    return bar(bar(x_NxI).T) @ bar(g_NxO)


def _vocabulary_weight_grad_cpu(x_NxI: jax.Array, g_NxO: jax.Array) -> jax.Array:
    return (g_NxO.T @ x_NxI).T


def _weight_grad(x_NxI: jax.Array, g_NxO: jax.Array) -> jax.Array:
    return x_NxI.T @ g_NxO


# a weight with a side this long is an output layer over a vocabulary (Eigen's dot was as fast as YNNPACK's there)
VOCABULARY_SIZED = 4096


@jax.custom_vjp
def matmul(x_NxI: jax.Array, w_IxO: jax.Array) -> jax.Array:
    """x @ w for 2-d operands, with the weight gradient computed as described above."""
    return x_NxI @ w_IxO


def _matmul_fwd(x_NxI, w_IxO):
    return x_NxI @ w_IxO, (x_NxI, w_IxO)


def _matmul_bwd(residuals, g_NxO):
    x_NxI, w_IxO = residuals
    g_NxO = g_NxO.astype(x_NxI.dtype)
    cpu = _vocabulary_weight_grad_cpu if max(w_IxO.shape) > VOCABULARY_SIZED else _weight_grad_cpu
    dw_IxO = jax.lax.platform_dependent(x_NxI, g_NxO, cpu=cpu, default=_weight_grad)
    return (g_NxO @ w_IxO.T).astype(x_NxI.dtype), dw_IxO.astype(w_IxO.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, **kwargs):
    """`jax.lax.dot_general` with the dense layer's case (the last axis of lhs against the first of a 2-d rhs,
    no batch axes, default precision) routed through `matmul`."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    dense = (rhs.ndim == 2 and tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,)
             and not lhs_batch and not rhs_batch and precision is None and kwargs.get("out_sharding") is None
             and preferred_element_type in (None, jnp.result_type(lhs, rhs)) and lhs.dtype == rhs.dtype)
    if not dense:
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type, **kwargs)
    *lead, d = lhs.shape
    return matmul(lhs.reshape(-1, d), rhs).reshape(*lead, rhs.shape[1])


def _plus_bias(y_NxO: jax.Array, b_O: jax.Array) -> jax.Array:
    return y_NxO + b_O.reshape((1,) * (y_NxO.ndim - 1) + (-1,))


@jax.custom_vjp
def add_bias(y_NxO: jax.Array, b_O: jax.Array) -> jax.Array:
    """y + b over the last axis; b's gradient is ones @ g over the rows of the output gradient g."""
    return _plus_bias(y_NxO, b_O)


def _add_bias_fwd(y_NxO, b_O):
    return _plus_bias(y_NxO, b_O), None


def _add_bias_bwd(_, g_NxO):
    g_RxO = g_NxO.reshape(-1, g_NxO.shape[-1])
    return g_NxO, jnp.ones((g_RxO.shape[0],), g_RxO.dtype) @ g_RxO


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


class Dense(nnx.Linear):
    """`nnx.Linear` whose product is `dot_general` above and whose bias is added by `add_bias`."""

    def __init__(self, in_features: int, out_features: int, **kwargs):
        super().__init__(in_features, out_features, dot_general=dot_general, **kwargs)

    def __call__(self, inputs: jax.Array) -> jax.Array:
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        y = self.dot_general(inputs, kernel, (((inputs.ndim - 1,), (0,)), ((), ())), precision=self.precision)
        return y if bias is None else add_bias(y, bias)
