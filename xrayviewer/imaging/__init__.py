"""Imaging core: files (DICOM, PNG, JPEG, TIFF) to calibrated pixels and display windows. No Qt, no torch."""
