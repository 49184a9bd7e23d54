"""Results sidebar: a section per model bundle (name, version, device, time; where the film is outside the
model's training population; one row per class with a probability bar, threshold tick and wording; the
card's limits), applicability warnings, status, disclaimer. A card's negative classes ("normal") are shown
without wording and never counted as findings. A model whose age group is not the film's is folded and
greyed: its reason only, until the user unfolds it, then its scores without wording or orange, never
counted. A refused film shows the refusal and a "Show findings anyway" button instead of sections.

State in (``show_busy``, ``plan``, ``set_folding``, ``show_prediction``, ``show_warnings``, ``show_message``,
``show_refusal``), signals out (``foldToggled``, ``scoreAnywayRequested``); which warnings are said where,
which models are folded and what counts come from the ``ReadingSession``: the panel only renders.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from xrayviewer.gui.session import OUTSIDE, findings_summary

if TYPE_CHECKING:
    from xrayviewer.engine.bundle import ModelCard
    from xrayviewer.engine.predictor import Prediction
    from xrayviewer.gui.session import SidebarWarnings

DISCLAIMER = "Second opinion — not a diagnosis. The reading radiologist decides."
SCORE_ANYWAY = "Show findings anyway"
POSITIVE_COLOUR = QColor("#e0793a")
NEGATIVE_COLOUR = QColor("#4f7fa8")
MUTED_COLOUR = QColor("#5b6068")  # a model outside the film's population: no colour that reads as a verdict


class ProbabilityBar(QWidget):
    """A horizontal bar for a score in [0, 1] with the operating threshold marked as a tick (``muted``: grey
    fill and tick, for a model outside the film's population)."""

    def __init__(self, score: float, threshold: float, positive: bool, parent: QWidget | None = None,
                 muted: bool = False) -> None:
        super().__init__(parent)
        self.score, self.threshold, self.positive = float(score), float(threshold), bool(positive)
        self.muted = muted
        self.setMinimumSize(60, 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"score {self.score:.3f} · threshold {self.threshold:.3f}")

    def fill_colour(self) -> QColor:
        """The colour of the filled part: orange when suggested, blue when not, grey when muted."""
        if self.muted:
            return MUTED_COLOUR
        return POSITIVE_COLOUR if self.positive else NEGATIVE_COLOUR

    def paintEvent(self, event) -> None:
        """Track, filled score, threshold tick."""
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0, 3, -1, -3)
        painter.fillRect(rect, QColor("#2a2d31"))
        fill = QRectF(rect.left(), rect.top(), rect.width() * min(max(self.score, 0.0), 1.0), rect.height())
        painter.fillRect(fill, self.fill_colour())
        x = rect.left() + rect.width() * min(max(self.threshold, 0.0), 1.0)
        painter.setPen(QPen(QColor("#8a9099" if self.muted else "#f2f2f2"), 2))
        painter.drawLine(int(x), int(rect.top()) - 3, int(x), int(rect.bottom()) + 3)


def finding_wording(positive: bool) -> str:
    """Plain wording of a finding's decision at the model card's operating point."""
    return "suggested" if positive else "not suggested"


def score_text(prediction: Prediction, name: str, worded: bool = True) -> str:
    """A class's score and decision, e.g. "55% · suggested"; a negative class gets none ("normal 24%"), nor
    does any class unless ``worded`` (a model outside the film's population states no decision)."""
    score = f"{float(prediction.scores[name]):.0%}"
    if name in prediction.negative_classes or not worded:
        return score
    return f"{score} · {finding_wording(name in prediction.positive)}"


def display_order(prediction: Prediction) -> list[str]:
    """The classes as listed: findings by descending score, then the negative classes."""
    negatives = set(prediction.negative_classes)
    return sorted(prediction.classes, key=lambda c: (c in negatives, -float(prediction.scores[c])))


def card_tooltip(card: ModelCard | None) -> str:
    """Model card summary for the sidebar's tooltip: data, metrics, operating points, limits."""
    if card is None:
        return ""
    parts = [f"<b>{card.name}</b> v{card.version}: {card.summary()}"]
    if card.description:
        parts.append(card.description)
    if card.limitations:
        parts.append(f"<b>Limits:</b> {card.limitations}")
    if card.training_data:
        parts.append("<b>Data:</b> " + "; ".join(f"{k}: {v}" for k, v in card.training_data.items()))
    if card.metrics:
        parts.append("<b>Metrics:</b> " + "; ".join(f"{k}: {v}" for k, v in card.metrics.items()))
    parts.append(f"<b>Thresholds:</b> {card.threshold_method}")
    return "<br>".join(parts)


def hidden_note(name: str) -> QLabel:
    """A word-wrapped label styled by ``name`` (``resources/dark.qss``), hidden until it has something to
    say."""
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.hide()
    return label


class _ContentHeightScrollArea(QScrollArea):
    """A scroll area that asks for its content's whole height: it scrolls only when the dock is shorter."""

    def sizeHint(self) -> QSize:
        """Full content height (QScrollArea's own hint is cached from when the content was empty)."""
        body = self.widget().sizeHint()
        return QSize(body.width(), body.height() + 2 * self.frameWidth())

    def minimumSizeHint(self) -> QSize:
        """Wide enough for the content beside a scroll bar: rows are never cut off on the right."""
        width = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        return QSize(width + 2 * self.frameWidth(), super().minimumSizeHint().height())


class FoldHeader(QLabel):
    """A label that folds or unfolds its section when clicked, or on Enter or Space once focused (only
    while ``foldable``: otherwise it is plain text, out of the tab order)."""

    activated = Signal()

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.foldable = False

    def set_foldable(self, on: bool, focusable: bool = True) -> None:
        """Clickable (and reachable by Tab when ``focusable``), or plain text."""
        self.foldable = on
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus if on and focusable else Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor if on else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """A left click folds or unfolds."""
        if self.foldable and event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter, Return or Space fold or unfold; other keys go on to the window (its shortcuts)."""
        keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
        if self.foldable and event.key() in keys:
            self.activated.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class ModelSection(QFrame):
    """One model bundle's part of the sidebar: header with its facts, finding rows, its card's limits,
    or its own error. Outside the film's population it is greyed and, unless unfolded, shows only why."""

    foldToggled = Signal(str, bool)  # model name, unfold (True) or fold back (False)

    def __init__(self, card: ModelCard, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelSection")
        self.name = card.name
        self.prediction: Prediction | None = None
        self.population_warnings: tuple[str, ...] = ()
        self.answered = False  # findings or an error are shown
        self.outside = False  # the film is outside this model's population (greyed, never counted)
        self.folded = False  # ...and its scores are folded away
        self.header = FoldHeader(f"<b>{html.escape(card.name)}</b> v{html.escape(str(card.version))}")
        self.header.setObjectName("modelHeader")
        self.header.setToolTip(card_tooltip(card))
        self.header.activated.connect(self._toggle)
        self.fold = FoldHeader()  # "▸ show its scores": clicked; the header above it takes the focus
        self.fold.setObjectName("fold")
        self.fold.activated.connect(self._toggle)
        self.fold.hide()
        self.facts = QLabel("analysing…")
        self.facts.setObjectName("modelInfo")
        self.facts.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(4)
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(1, 1)
        self.population = hidden_note("population")
        self.population.setToolTip("This film is outside the population the model was trained on: "
                                   "its scores are less reliable here.")
        self.grid_box = QWidget()  # the finding rows, folded away as one
        self.grid_box.setLayout(self.grid)
        self.error = hidden_note("modelError")
        limitations = card.limitations
        self.limits = QLabel(f"Limits: {limitations}")
        self.limits.setObjectName("limits")
        self.limits.setWordWrap(True)
        if not limitations:  # never setVisible(True) here: before it joins the layout it would be a window
            self.limits.hide()
        title = QHBoxLayout()
        title.addWidget(self.header)
        title.addWidget(self.facts, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 4)
        layout.setSpacing(3)
        layout.addLayout(title)
        layout.addWidget(self.fold)
        layout.addWidget(self.busy)
        layout.addWidget(self.population)
        layout.addWidget(self.grid_box)
        layout.addWidget(self.error)
        layout.addWidget(self.limits)
        self.setToolTip(card_tooltip(card))
        self.rows: dict[str, tuple[QLabel, ProbabilityBar, QLabel]] = {}
        self._has_limits = bool(limitations)

    def _toggle(self) -> None:
        if self.outside:
            self.foldToggled.emit(self.name, self.folded)

    def set_folding(self, outside: bool, folded: bool) -> None:
        """Outside the film's population (greyed, scores without wording), and folded (only why)."""
        changed = outside != self.outside
        self.outside, self.folded = outside, outside and folded
        self.setProperty("outside", outside)
        for widget in (self, *self.findChildren(QWidget)):  # the style sheet greys by this property
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.header.set_foldable(outside)
        self.fold.set_foldable(outside, focusable=False)
        action = "show" if self.folded else "hide"
        self.header.setAccessibleDescription(f"{OUTSIDE}: Enter to {action} its scores" if outside else "")
        self.fold.setText(f"{'▸ show' if self.folded else '▾ hide'} its scores ({OUTSIDE}, not counted)")
        self.fold.setVisible(outside)
        self.grid_box.setVisible(not self.folded)
        self.limits.setVisible(self._has_limits and not self.folded)
        if changed and self.prediction is not None:  # rows are worded (or not) when made
            self._show_rows(self.prediction)

    def set_population_warnings(self, given: Sequence[str], own: Sequence[str]) -> None:
        """Where the film is outside this model's training population (``engine.applicability``): all it
        ``given`` are kept, its ``own`` (those not said once above the sections) are shown here."""
        self.population_warnings = tuple(given)
        self.population.setText("\n".join(own))
        self.population.setVisible(bool(own))

    def show_prediction(self, prediction: Prediction) -> None:
        """One row per class, findings first, highest score first; device, backend and time in the header."""
        self.prediction, self.answered = prediction, True
        self.busy.hide()
        self.error.hide()
        self._show_rows(prediction)
        total_ms = float(prediction.timings.get("total", 0.0))
        self.facts.setText(f"{prediction.device} · {total_ms:.0f} ms")
        where = f"{prediction.backend} on {prediction.device}"
        self.facts.setToolTip(f"{where}; preprocessing + forward + heat maps")

    def _show_rows(self, prediction: Prediction) -> None:
        for widgets in self.rows.values():
            for widget in widgets:
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows = {}
        negatives = set(prediction.negative_classes)
        positives = set() if self.outside else set(prediction.positive) - negatives
        for row, name in enumerate(display_order(prediction)):
            score, threshold = float(prediction.scores[name]), float(prediction.thresholds[name])
            positive = name in positives
            label = QLabel(name)
            bar = ProbabilityBar(score, threshold, positive, muted=self.outside)
            verdict = QLabel(score_text(prediction, name, worded=not self.outside))
            verdict.setObjectName("outside" if self.outside else "positive" if positive else "negative")
            if name in negatives:
                verdict.setToolTip("reference class: not a finding")
            elif self.outside:
                verdict.setToolTip(f"threshold {threshold:.2f}, not applied: the film is outside the "
                                   "population this model was trained on")
            else:
                verdict.setToolTip(f"threshold {threshold:.2f} (operating point from the model card)")
            for column, widget in enumerate((label, bar, verdict)):
                self.grid.addWidget(widget, row, column)
            self.rows[name] = (label, bar, verdict)

    def show_error(self, message: str) -> None:
        """This model gave no findings: say why in its place."""
        self.answered = True
        self.busy.hide()
        self.facts.setText("failed")
        self.error.setText(message)
        self.error.show()


class ResultsPanel(QWidget):
    """The findings of the current image, one section per model bundle, or why there are none."""

    foldToggled = Signal(str, bool)  # a section asks to unfold (True) or fold back: model name
    scoreAnywayRequested = Signal()  # "Show findings anyway" on a refused film

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsPanel")
        self.status = QLabel("Open an image to get a second opinion.")
        self.status.setObjectName("resultsStatus")
        self.status.setWordWrap(True)
        self.score_anyway = QPushButton(SCORE_ANYWAY)
        self.score_anyway.setObjectName("scoreAnyway")
        self.score_anyway.setToolTip("Run the models on this film although it was refused (this film only); "
                                     "the refusal stays noted above the findings.")
        self.score_anyway.clicked.connect(self.scoreAnywayRequested)
        self.score_anyway.hide()
        self.score_anyway_hint = hidden_note("hint")
        self.score_anyway_hint.setText("For this film only; the refusal stays noted above the findings.")
        self.refused_note = hidden_note("scoredAnyway")
        self.unchecked = hidden_note("unchecked")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(6)
        self.busy.hide()
        self.warnings = hidden_note("applicability")
        body = QWidget()
        body.setObjectName("resultsBody")
        self.sections_box = QVBoxLayout(body)
        self.sections_box.setContentsMargins(0, 0, 4, 0)
        self.sections_box.setSpacing(0)
        self.sections_box.addStretch(1)
        self.scroll = _ContentHeightScrollArea()
        self.scroll.setObjectName("resultsScroll")
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.disclaimer = QLabel(DISCLAIMER)
        self.disclaimer.setObjectName("disclaimer")
        self.disclaimer.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status)
        layout.addWidget(self.score_anyway, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.score_anyway_hint)
        layout.addWidget(self.busy)
        layout.addWidget(self.refused_note)
        layout.addWidget(self.unchecked)
        layout.addWidget(self.warnings)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.disclaimer)
        self.sections: dict[str, ModelSection] = {}

    def _clear(self) -> None:
        for name in list(self.sections):
            self.remove_model(name)
        for widget in (self.warnings, self.refused_note, self.unchecked, self.score_anyway,
                       self.score_anyway_hint):
            widget.hide()

    def show_busy(self, text: str = "Analysing the image…") -> None:
        """An image is being opened or analysed: busy indicator, no stale findings."""
        self._clear()
        self.status.setText(text)
        self.busy.show()

    def show_message(self, text: str) -> None:
        """No findings to show (no model installed, all turned off, an error): say why, plainly."""
        self._clear()
        self.busy.hide()
        self.status.setText(text)

    def show_refusal(self, text: str) -> None:
        """The film is refused (``engine.applicability``): the reason instead of findings, and the button
        that scores it anyway."""
        self.show_message(text)
        self.score_anyway.show()
        self.score_anyway_hint.show()

    def show_warnings(self, warnings: SidebarWarnings) -> None:
        """The applicability and shared population warnings above the sections, each section's own in it
        (``ReadingSession.sidebar_warnings``); the note on a refused film scored anyway, and once that no
        gate checked the film."""
        shown = ((self.refused_note, (warnings.scored_anyway,)), (self.unchecked, warnings.unchecked),
                 (self.warnings, warnings.above))
        for label, lines in shown:
            label.setText("\n".join(filter(None, lines)))
            label.setVisible(any(lines))
        for name, section in self.sections.items():
            section.set_population_warnings(warnings.given.get(name, ()), warnings.own.get(name, ()))

    def set_folding(self, outside: Collection[str], folded: Collection[str]) -> None:
        """Which sections are outside the film's population (greyed, never counted), and of those which
        are folded (``ReadingSession.outside`` and ``folded``)."""
        for name, section in self.sections.items():
            section.set_folding(name in outside, name in folded)
        self._update_status()

    def plan(self, cards: Sequence[ModelCard]) -> None:
        """One section per card, in this order: new ones wait for their model, others keep their
        findings, sections of models not listed go."""
        names = [card.name for card in cards]
        for name in [n for n in self.sections if n not in names]:
            self.remove_model(name)
        for index, card in enumerate(cards):
            if card.name not in self.sections:
                self.sections[card.name] = ModelSection(card, self.scroll.widget())
                self.sections[card.name].foldToggled.connect(self.foldToggled)
            self.sections_box.insertWidget(index, self.sections[card.name])
        self.sections = {name: self.sections[name] for name in names}
        self.busy.hide()
        self._update_status()

    def show_prediction(self, name: str, prediction: Prediction) -> None:
        """The findings of model ``name`` (planned before)."""
        if name in self.sections:
            self.sections[name].show_prediction(prediction)
            self._update_status()

    def show_model_error(self, name: str, message: str) -> None:
        """Model ``name`` failed: its section says why; the others are untouched."""
        if name in self.sections:
            self.sections[name].show_error(message)
            self._update_status()

    def remove_model(self, name: str) -> None:
        """Drop the section of model ``name`` (e.g. turned off in the Model menu)."""
        section = self.sections.pop(name, None)
        if section is not None:
            self.sections_box.removeWidget(section)
            section.deleteLater()
            self._update_status()

    def predictions(self) -> list[Prediction]:
        """The Predictions shown, in section order."""
        return [s.prediction for s in self.sections.values() if s.prediction is not None]

    def _update_status(self) -> None:
        self.scroll.updateGeometry()  # sections came, went or grew: ask for the new content height
        if not self.sections:
            return
        answered = [s for s in self.sections.values() if s.prediction is not None]
        counted = [s.prediction for s in answered if not s.outside]
        running = sum(not s.answered for s in self.sections.values())
        self.status.setText(findings_summary(counted, running, len(answered) - len(counted)))
