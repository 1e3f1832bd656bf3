"""Datasets: unlabeled faces (autoencoder stage) and landmark benchmarks."""
