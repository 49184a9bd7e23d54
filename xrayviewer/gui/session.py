"""The film being read, without Qt: what the viewer shows for it and the sidebar's policy.

Like napari's ``ViewerModel`` beside its Qt window: ``MainWindow`` updates a ``ReadingSession`` from the
worker's answers and the user's actions, then hands the widgets what to render; the widgets decide nothing.
Request ids make answers to an older request stale, so a result never lands on the wrong image.

The worker reads ``request`` (to skip stale work) and ``pinned_for`` (to leave a heat map the user chose
alone) from its own thread: both are ints that only the UI thread replaces, so no lock is needed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xrayviewer.engine.applicability import outside_population, population_warnings
from xrayviewer.imaging.image import Window, XRayImage

if TYPE_CHECKING:
    from xrayviewer.engine.applicability import Applicability
    from xrayviewer.engine.bundle import ModelCard
    from xrayviewer.engine.predictor import Prediction
    from xrayviewer.gui.workers import LoadedImage

HeatMap = tuple[str, str]  # (model bundle, finding)
STOPPED = -1  # ``request`` once the viewer closes: every answer is stale
OUTSIDE = "outside its population"  # how a section whose model does not fit the film is labelled


@dataclass(frozen=True)
class SidebarWarnings:
    """What the findings sidebar says about where the film lies outside the models' reach."""

    above: tuple[str, ...] = ()  # above the sections: the film's warnings, then those models share
    given: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model → all its population warnings
    own: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model → those said in its section
    scored_anyway: str = ""  # the note above the findings of a refused film the user had scored
    unchecked: tuple[str, ...] = ()  # nothing checked it is a chest film (no gate, or it failed), once


@dataclass
class ReadingSession:
    """The film being read: request ids, the image, every model's answer and the heat map shown.

    ``models`` are the sidebar's sections in order (``predictions`` follows it); ``population`` holds each
    model's population warnings (``engine.applicability.population_warnings``), ``outside`` the models
    whose age group is not the film's (folded away unless ``expanded``), and ``film_warnings`` the
    applicability warnings of the film itself. ``applicability`` is the latest verdict on the film shown;
    ``scored_anyway`` says the user asked for findings although it was refused (for this film only).
    """

    request: int = 0  # the latest request: answers to any other are stale
    shown_request: int = 0  # the request whose image is on screen
    loaded: LoadedImage | None = None
    models: list[str] = field(default_factory=list)
    predictions: dict[str, Prediction] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)  # models that answered with an error
    heat_map: HeatMap | None = None  # the heat map on the image
    pinned_for: int = 0  # the request whose heat map the user chose (0: none): no automatic change then
    window_override: Window | None = None  # None: the image's default (header window or VOI LUT)
    inverted: bool = False  # the user's inversion, on top of the image's own (MONOCHROME1)
    film_warnings: tuple[str, ...] = ()
    population: dict[str, tuple[str, ...]] = field(default_factory=dict)
    outside: frozenset[str] = frozenset()  # planned models outside the film's population
    expanded: set[str] = field(default_factory=set)  # of those, the ones the user unfolded on this film
    findings_complete: bool = False  # every model answered for the image shown (or none can)
    applicability: Applicability | None = None
    unchecked: tuple[str, ...] = ()  # why nothing checked that the film is a chest film (NO_GATE...)
    scored_anyway: bool = False  # the user asked for findings on this refused film
    _last_id: int = 0

    # -- requests ------------------------------------------------------------------------------------
    def new_request(self) -> int:
        """A fresh request id, now the latest: answers to older ones become stale."""
        self._last_id += 1
        self.request = self._last_id
        return self.request

    def rerun(self) -> int:
        """A new request to run the models again on the image shown; a pinned heat map stays pinned. Its
        findings are not complete until the models answer again."""
        pinned = self.pinned
        self.shown_request = self.new_request()
        self.findings_complete = False
        if pinned:  # set before the request is sent: the worker reads it when its predictions come
            self.pinned_for = self.shown_request
        return self.shown_request

    def is_current(self, request_id: int) -> bool:
        """True for answers about the image shown while no other image is being opened."""
        return request_id == self.request == self.shown_request and self.loaded is not None

    def show_image(self, request_id: int, loaded: LoadedImage) -> None:
        """A new image is on screen: default window, no inversion, no findings or heat map yet."""
        self.shown_request, self.loaded = request_id, loaded
        self.heat_map, self.findings_complete = None, False
        self.window_override, self.inverted = None, False
        # a new film is judged afresh: refused again if refused, its models folded by its own population
        self.applicability, self.unchecked, self.scored_anyway = None, (), False
        self.expanded = set()
        self.clear_findings()

    # -- applicability ---------------------------------------------------------------------------------
    def checked(self, verdict: Applicability, unchecked: Sequence[str] = ()) -> None:
        """The worker's verdict on the film shown; ``unchecked``: why no learned gate looked at it."""
        self.applicability, self.unchecked = verdict, tuple(unchecked)
        self.film_warnings = verdict.warnings

    @property
    def refused(self) -> bool:
        """The film shown is refused and the user has not asked for its findings: show the refusal."""
        return self.applicability is not None and self.applicability.refused and not self.scored_anyway

    def score_anyway(self) -> int:
        """The user asked for findings although the film is refused ("Show findings anyway"): for this film
        only. Returns the request to run the models with."""
        self.scored_anyway = True
        return self.rerun()

    def scored_anyway_note(self) -> str:
        """The note kept above the findings of a refused film scored on request; "" otherwise."""
        verdict = self.applicability
        if not self.scored_anyway or verdict is None or not verdict.refused:
            return ""
        # the engine's refusal ends with ": no findings computed.", which is no longer true here
        why = verdict.refusal.removesuffix(": no findings computed.").rstrip(".")
        return f"Scored although refused: {why[:1].lower()}{why[1:]}. These findings may mean nothing."

    # -- findings --------------------------------------------------------------------------------------
    def clear_findings(self) -> None:
        """No sections: the sidebar is busy again or says why there are no findings."""
        self.models, self.predictions, self.failed = [], {}, set()
        self.film_warnings, self.population, self.outside = (), {}, frozenset()

    def plan(self, names: Sequence[str], population: Mapping[str, Sequence[str]],
             outside: Collection[str] = ()) -> None:
        """The models that run, in sidebar order, with their population warnings and those outside the
        film's population; models still listed keep their answers, the others go."""
        self.models = list(names)
        self.population = {name: tuple(population.get(name, ())) for name in names}
        self.outside = frozenset(outside) & set(names)
        self.failed &= set(names)
        self._order_predictions()

    def plan_models(self, cards: Sequence[ModelCard]) -> None:
        """:meth:`plan` for these cards on the film shown, judged with its latest verdict."""
        assert self.loaded is not None
        image, verdict = self.loaded.image, self.applicability
        population = {card.name: population_warnings(image, card, verdict) for card in cards}
        self.plan([card.name for card in cards], population, models_outside(image, cards, verdict))

    # -- populations -----------------------------------------------------------------------------------
    def folded(self, name: str) -> bool:
        """Model ``name`` is outside the film's population and not unfolded: no wording, no heat map."""
        return name in self.outside and name not in self.expanded

    def set_expanded(self, name: str, on: bool) -> bool:
        """The user unfolds (or folds back) an outside model's section. True when its heat map was on the
        image and has to give way (folded again): the caller draws the default one instead."""
        if name not in self.outside:
            return False
        (self.expanded.add if on else self.expanded.discard)(name)
        if on or self.heat_map is None or self.heat_map[0] != name:
            return False
        self.drop_heat_map()
        return True

    def counted_predictions(self) -> list[Prediction]:
        """The predictions that count (status line, default heat map): those of the models whose
        population fits the film. Outside models run so that unfolding is instant, but they do not
        speak unless asked, and even then they are not counted."""
        return [p for name, p in self.predictions.items() if name not in self.outside]

    def add_prediction(self, name: str, prediction: Prediction) -> None:
        """Model ``name`` (planned) answered with findings."""
        self.predictions[name] = prediction
        self._order_predictions()

    def model_failed(self, name: str) -> None:
        """Model ``name`` (planned) answered with an error (its findings, if any, stay)."""
        self.failed.add(name)

    def remove_model(self, name: str) -> None:
        """Model ``name`` was turned off: its section and answers go."""
        if name in self.models:
            self.models.remove(name)
        self.predictions.pop(name, None)
        self.population.pop(name, None)
        self.outside -= {name}
        self.failed.discard(name)

    def unanswered(self) -> list[str]:
        """The planned models with neither findings nor an error yet."""
        return [name for name in self.models if name not in self.predictions and name not in self.failed]

    def _order_predictions(self) -> None:
        self.predictions = {name: self.predictions[name] for name in self.models if name in self.predictions}

    # -- heat map ------------------------------------------------------------------------------------------
    @property
    def pinned(self) -> bool:
        """The user chose the heat map of the image shown: it changes no more on its own."""
        return self.pinned_for != 0 and self.pinned_for == self.shown_request

    def default_heat_map(self) -> HeatMap | None:
        """The heat map shown unless the user chose one (``engine.cam.explained_finding`` over the
        predictions that count)."""
        return _explained_finding(self.counted_predictions())

    def automatic_heat_map(self, request_id: int, predictions: Sequence[Prediction],
                           outside: Collection[str] = ()) -> HeatMap | None:
        """The heat map to draw for ``request_id`` given these predictions in sidebar order, never one of a
        model ``outside`` the film's population: none when the user chose one for that request. The worker
        asks from its own thread (this reads only ``pinned_for``)."""
        if request_id == self.pinned_for:
            return None
        return _explained_finding([p for p in predictions if p.model not in outside])

    def heat_map_choice(self) -> HeatMap | None:
        """The heat map to select among the findings: the user's while pinned, else the default one."""
        return self.heat_map if self.pinned else self.default_heat_map()

    def heat_map_findings(self) -> list[HeatMap]:
        """Every (model, finding) a heat map can explain, in sidebar order; none of a folded model."""
        shown = [p for p in self.predictions.values() if not self.folded(p.model)]
        return [(p.model, c) for p in shown for c in p.classes]

    def choose_heat_map(self, model: str, finding: str) -> bool:
        """The user chose this heat map for the image shown: pinned from now on. False (nothing to do) when
        there are no findings or it is already shown."""
        if not self.predictions or (model, finding) == self.heat_map:
            return False
        self.pinned_for = self.shown_request
        return True

    def drop_heat_map(self) -> None:
        """No heat map on the image, none pinned (the next one is the default again)."""
        self.heat_map, self.pinned_for = None, 0

    def heat_map_faint(self) -> bool:
        """The heat map shown is drawn faint: its finding scores below its threshold."""
        if self.heat_map is None:
            return False
        from xrayviewer.engine.cam import drawn_faint  # as in _explained_finding: loaded by now

        model, finding = self.heat_map
        return drawn_faint(self.predictions.get(model), finding)

    # -- window / level ---------------------------------------------------------------------------------
    def set_window(self, window: Window) -> None:
        """The user's window; the image's own default is remembered as no override."""
        assert self.loaded is not None
        self.window_override = None if window == self.loaded.levels.default else window

    def display_inverted(self) -> bool:
        """Whether the display maps high values to black: the image's own inversion, flipped by the user's."""
        assert self.loaded is not None
        return self.loaded.image.invert != self.inverted

    # -- warnings --------------------------------------------------------------------------------------------
    def sidebar_warnings(self) -> SidebarWarnings:
        """The film's warnings, then each population warning several models give, said once above the
        sections under their names ("Every model" when all give it); each section keeps the rest."""
        given = {name: self.population.get(name, ()) for name in self.models}
        shared: dict[tuple[str, ...], list[str]] = {}
        for warning in dict.fromkeys(w for warnings in given.values() for w in warnings):
            models = tuple(name for name in self.models if warning in given[name])
            if len(models) > 1:
                shared.setdefault(models, []).append(warning)
        above = list(self.film_warnings)
        for models, warnings in shared.items():
            who = "Every model" if len(models) == len(self.models) else " and ".join(models)
            above += [f"{who}:", *(f"• {w}" for w in warnings)]
        own = {}
        for name, warnings in given.items():
            said = {w for models, common in shared.items() if name in models for w in common}
            own[name] = tuple(w for w in warnings if w not in said)
        # a refused film was checked, by the rules if not by a gate: "nothing checked it" would be wrong
        refused = self.applicability is not None and self.applicability.refused
        unchecked = () if refused else self.unchecked
        return SidebarWarnings(tuple(above), given, own, self.scored_anyway_note(), unchecked)


def models_outside(image: XRayImage, cards: Sequence[ModelCard], verdict: Applicability | None,
                   ) -> frozenset[str]:
    """The models whose card's age group is not the film's (header, else the gate's estimate): they run,
    but are folded, not counted and never get the default heat map (``engine.applicability``)."""
    return frozenset(card.name for card in cards if outside_population(image, card, verdict))


def findings_summary(counted: Sequence[Prediction], running: int, uncounted: int = 0) -> str:
    """"2 of 4 findings above their model's threshold (2 models)" over the ``counted`` predictions;
    ``running`` models still to answer, ``uncounted`` that answered outside the film's population."""
    checked = sum(len(p.classes) - len(p.negative_classes) for p in counted)
    positive = sum(len(set(p.positive) - set(p.negative_classes)) for p in counted)
    models = _models(len(counted))
    if positive:
        text = f"{positive} of {checked} findings above their model's threshold ({models})"
    elif counted:
        text = f"No finding above its model's threshold ({checked} checked by {models})"
    elif uncounted:
        text = f"No finding counted: {_models(uncounted)} outside the film's population"
    else:
        return "Analysing the image…" if running else "No model could give findings (see below)."
    if counted and uncounted:
        text += f" · {_models(uncounted)} outside the film's population, not counted"
    if running:
        text += f" · {running} still running"
    return text


def _models(count: int) -> str:
    return f"{count} model{'s' if count != 1 else ''}"


def _explained_finding(predictions: Sequence[Prediction]) -> HeatMap | None:
    # engine.cam loads matplotlib, which the UI thread must not import at start-up; there are predictions
    # only once the worker has loaded it
    from xrayviewer.engine.cam import explained_finding

    return explained_finding(predictions)
