"""Activation functions as explicit, numerically stable jnp formulas, plus a name registry."""

import difflib
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """A ValueError for an unknown registry name, listing close matches and all known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Known: {', '.join(known)}.")


def sigmoid(x: jax.Array) -> jax.Array:
    """1 / (1 + e^-x), split by sign so exp never overflows and the negative tail keeps precision."""
    # z = -|x|, written as a `where` so the derivative at x = 0 is the true 1/4 rather than 0.
    z = jnp.where(x >= 0, -x, x)
    e = jnp.exp(z)
    return jnp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: jax.Array) -> jax.Array:
    """(1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x; expm1 keeps precision near 0."""
    u = jnp.where(x >= 0, x, -x)
    t = -jnp.expm1(-2.0 * u) / (1.0 + jnp.exp(-2.0 * u))
    return jnp.where(x >= 0, t, -t)


def relu(x: jax.Array) -> jax.Array:
    """max(x, 0), with derivative 1[x > 0] (0 at the kink)."""
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """x for x >= 0, negative_slope * x otherwise."""
    return jnp.where(x >= 0, x, negative_slope * x)


def softmax(x: jax.Array) -> jax.Array:
    """exp(x) / sum exp(x) over the last axis, shifted by the max so exp never overflows."""
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def log_sum_exp(x: jax.Array) -> jax.Array:
    """log sum exp(x) over the last axis (which it removes), shifted by the max so exp never overflows."""
    max_x = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    return jnp.log(jnp.sum(jnp.exp(x - max_x), axis=-1)) + max_x[..., 0]


def log_softmax(x: jax.Array) -> jax.Array:
    """log softmax over the last axis: x minus its log-sum-exp."""
    return x - log_sum_exp(x)[..., None]


def identity(x: jax.Array) -> jax.Array:
    """x unchanged (a linear output unit)."""
    return x


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softmax": softmax,
    "identity": identity,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation registered under `name`; ValueError with suggestions if unknown."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise unknown_name_error("activation", name, ACTIVATIONS) from None
