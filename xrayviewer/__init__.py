"""XRayViewer: a chest X-ray viewer with a DenseNet second opinion."""

__version__ = "0.1.0"
