"""The names of fabrec's registries, light enough for the command line to import without
PyTorch: devices, dataset readers, heatmap decoders, crop framings, face detectors and
training-image sampling. Each registry's own module holds what the name does; a test checks
that both lists agree, so a new entry is added in its module and named here."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")  # fabrec.runtime.resolve_device
DATASETS = ("300w", "wflw", "aflw", "folder")  # fabrec.datasets.landmarks.read_dataset
DECODERS = ("reference", "subpixel")  # fabrec.heatmaps.DECODERS
FRAMINGS = ("detector", "landmarks")  # fabrec.framing.FRAMINGS
DETECTORS = ("yunet", "opencv", "dlib")  # fabrec.detect.DETECTORS
SAMPLES = ("random", "first")  # fabrec.datasets.landmarks.choose_training
