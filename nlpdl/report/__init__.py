"""Reading finished runs and sweeps back: metric curves, seed-pooled summaries, report.md and PNG figures."""
