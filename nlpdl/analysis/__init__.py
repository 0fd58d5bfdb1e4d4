"""Looking inside trained models: layer-wise probes, gradient flow, attention maps."""
