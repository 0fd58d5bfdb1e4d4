"""Neural-network building blocks: activations and per-example losses, selectable by name."""
