"""The output layer of a language model whose output weights are its input embedding table (tied embeddings)."""

import jax


@jax.custom_vjp
def _logits_NxV(x_NxD: jax.Array, table_VxD: jax.Array) -> jax.Array:
    return x_NxD @ table_VxD.T


def _logits_fwd(x_NxD, table_VxD):
    return x_NxD @ table_VxD.T, (x_NxD, table_VxD)


def _logits_bwd(residuals, g_NxV):
    x_NxD, table_VxD = residuals
    # The table's gradient as (x^T g)^T rather than autodiff's g^T x: XLA:CPU then reads g once as it was written,
    # where for g^T x it first wrote a transposed copy of the N x V gradient, recomputing the softmax into it
    # (benchmarks/RESULTS.md has the step times).
    return (g_NxV @ table_VxD).astype(x_NxD.dtype), (x_NxD.T @ g_NxV).T.astype(table_VxD.dtype)


_logits_NxV.defvjp(_logits_fwd, _logits_bwd)


def tied_logits(x_BxTxD: jax.Array, table_VxD: jax.Array) -> jax.Array:
    """x @ table^T over the last axis: B x T x D states to B x T x V logits (any leading shape)."""
    *lead, d = x_BxTxD.shape
    return _logits_NxV(x_BxTxD.reshape(-1, d), table_VxD).reshape(*lead, table_VxD.shape[0])
