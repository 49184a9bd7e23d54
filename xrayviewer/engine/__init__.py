"""Engine: model bundles, preprocessing, inference, CAM, datasets, training and metrics. No Qt."""
