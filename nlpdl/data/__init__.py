"""Datasets, data files and tokenizers."""
