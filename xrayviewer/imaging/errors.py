"""Errors raised for image files a user hands us; messages are written for a clinician to act on."""

from __future__ import annotations


class ImageError(Exception):
    """Base class: the file could not be turned into a displayable X-ray image."""


class UnreadableImageError(ImageError):
    """The file is missing, empty, truncated or corrupt."""


class UnsupportedImageError(ImageError):
    """The file is valid but not something we can show (e.g. a Structured Report, absurd size)."""


class DecoderMissingError(UnsupportedImageError):
    """The pixel data needs a decoder plugin that is not installed."""
