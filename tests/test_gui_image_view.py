"""The image canvas: overlay alignment under rotate/flip/zoom, wheel zoom around the cursor, fit and 1:1."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from xrayviewer.gui.image_view import ImageView


@pytest.fixture
def view(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    qtbot.waitExposed(view)
    rows, cols = 300, 200  # not square: rotation swaps the footprint
    view.set_picture(np.tile(np.arange(cols, dtype=np.uint8), (rows, 1)))
    overlay = np.zeros((rows, cols, 4), np.uint8)
    overlay[:50, :40] = (255, 0, 0, 255)  # a marker in the top-left corner
    view.set_overlay(overlay)
    view.set_overlay_visible(True)
    return view


def assert_aligned(view: ImageView) -> None:
    assert view.overlay_item.sceneTransform() == view.image_item.sceneTransform()
    assert view.overlay_item.sceneBoundingRect() == view.image_item.sceneBoundingRect()


def test_overlay_stays_aligned_under_rotate_flip_zoom(view):
    assert_aligned(view)
    view.rotate_90()
    rect = view.image_item.sceneBoundingRect()
    assert (round(rect.width()), round(rect.height())) == (300, 200)
    assert_aligned(view)
    view.flip_horizontal()
    view.flip_vertical()
    view.zoom_by(3)
    assert_aligned(view)
    assert view.orientation() == (90, True, True)
    # the overlay's marker pixel and the image pixel map to the same screen spot
    spot = view.viewport_pos_of(10, 10)
    assert view.pixel_at(spot) == (10, 10)
    marker = view.overlay_item.mapFromScene(view.mapToScene(spot))
    assert (int(marker.y()), int(marker.x())) == (10, 10)


def test_rotation_moves_the_picture_on_screen(view):
    before = view.viewport_pos_of(0, 0)
    view.rotate_90()
    after = view.viewport_pos_of(0, 0)
    assert (before - after).manhattanLength() > 50
    view.rotate_90(clockwise=False)
    view.reset_view()
    assert view.orientation() == (0, False, False)


def test_wheel_zooms_around_the_cursor(view):
    cursor = QPoint(400, 150)
    under = view.pixel_at(cursor)
    assert under != (-1, -1)
    zoom = view.zoom()
    event = QWheelEvent(
        QPointF(cursor),
        QPointF(view.viewport().mapToGlobal(cursor)),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom() == pytest.approx(zoom * 1.25**2)
    assert view.pixel_at(cursor) == under


def test_fit_and_actual_size(view):
    view.actual_size()
    assert view.zoom() == pytest.approx(1.0)
    view.zoom_by(4)
    view.fit_to_window()
    shown = view.mapFromScene(view.image_item.sceneBoundingRect()).boundingRect()
    assert view.viewport().rect().adjusted(-2, -2, 2, 2).contains(shown)
    assert shown.height() >= view.viewport().height() - 4  # tall picture fills the height


def test_overlay_of_the_wrong_size_is_refused(view):
    with pytest.raises(ValueError):
        view.set_overlay(np.zeros((10, 10, 4), np.uint8))
