"""Course fundamentals: XOR and the limits of a linear unit, backpropagation written by hand."""
