"""Inference engine: model bundles, preprocessing, prediction, CAM, applicability. No Qt, no training."""
