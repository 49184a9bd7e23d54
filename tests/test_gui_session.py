"""The sidebar's policy on the ReadingSession alone, without Qt: shared warnings, the default heat map,
faintness, the user's pin, stale request ids, refused films scored anyway, and models outside the film's
population (folded, not counted, never the default heat map)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from engine_helpers import make_card, make_prediction

from xrayviewer.engine.applicability import NO_GATE, Applicability
from xrayviewer.gui.session import STOPPED, ReadingSession, findings_summary, models_outside
from xrayviewer.imaging.image import Window, XRayImage

PA = "Trained on AP films; this film is PA."
ADULT = "Trained on children's films; this patient is an adult."
LATERAL = "Lateral view (LL): the models were trained on frontal films."


PHOTOGRAPH = "Not a chest radiograph (looks like a photograph): no findings computed."
LOOKS_ADULT = "Looks like an adult's film; this model was trained on children's films."


def shown(session: ReadingSession, default: Window | None = None, invert: bool = False, age_group: str = "",
          ) -> int:
    """Open a stand-in image (only what the session reads of a LoadedImage) and show it."""
    request = session.new_request()
    image = XRayImage(np.zeros((256, 256), np.float32), "MONOCHROME2", Window(0.5, 1.0), invert=invert,
                      age_group=age_group)
    loaded = SimpleNamespace(levels=SimpleNamespace(default=default), image=image)
    session.show_image(request, loaded)
    return request


def test_the_session_module_loads_no_qt():
    code = "import sys, xrayviewer.gui.session; print(any(m.startswith('PySide6') for m in sys.modules))"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_warning_every_model_gives_is_said_once_above_them():
    session = ReadingSession()
    shown(session)
    session.film_warnings = (LATERAL,)
    session.plan(["a", "b"], {"a": (PA, ADULT), "b": (PA, ADULT)})
    warnings = session.sidebar_warnings()
    assert warnings.above == (LATERAL, "Every model:", f"• {PA}", f"• {ADULT}")
    assert warnings.own == {"a": (), "b": ()}  # not repeated under each model...
    assert warnings.given == {"a": (PA, ADULT), "b": (PA, ADULT)}  # ...but still each model's own


def test_a_warning_some_models_share_names_them_and_goes_back_when_one_is_off():
    session = ReadingSession()
    shown(session)
    session.plan(["a", "c", "b"], {"a": (PA, ADULT), "c": (), "b": (ADULT,)})
    warnings = session.sidebar_warnings()
    assert warnings.above == ("a and b:", f"• {ADULT}")  # c states no population: not "Every model"
    assert warnings.own == {"a": (PA,), "c": (), "b": ()}
    session.remove_model("b")
    warnings = session.sidebar_warnings()
    assert warnings.above == () and warnings.own == {"a": (PA, ADULT), "c": ()}


def test_the_default_heat_map_follows_the_models_and_skips_negative_classes():
    session = ReadingSession()
    shown(session)
    session.plan(["types", "pneumonia"], {})
    assert session.default_heat_map() is None and session.heat_map_findings() == []
    types = make_prediction("types", {"normal": 0.9, "bacterial": 0.3, "viral": 0.1}, negative=("normal",))
    session.add_prediction("types", types)
    assert session.heat_map_choice() == ("types", "bacterial")  # "normal" scores highest but is no finding
    session.add_prediction("pneumonia", make_prediction("pneumonia", {"pneumonia": 0.7}))
    assert list(session.predictions) == ["types", "pneumonia"]  # sidebar order, not arrival order
    assert session.heat_map_choice() == ("pneumonia", "pneumonia")  # the positive finding wins
    assert session.heat_map_findings() == [
        ("types", "normal"), ("types", "bacterial"), ("types", "viral"), ("pneumonia", "pneumonia")
    ]
    assert session.unanswered() == []


def test_the_heat_map_shown_is_faint_below_its_threshold():
    session = ReadingSession()
    shown(session)
    session.plan(["m"], {})
    session.add_prediction("m", make_prediction("m", {"x": 0.2, "y": 0.8}, thresholds={"x": 0.4, "y": 0.4}))
    assert not session.heat_map_faint()  # none shown
    session.heat_map = ("m", "x")
    assert session.heat_map_faint()
    session.heat_map = ("m", "y")
    assert not session.heat_map_faint()


def test_a_chosen_heat_map_is_pinned_for_the_image_and_its_reruns_only():
    session = ReadingSession()
    first = shown(session)
    session.plan(["m"], {})
    prediction = make_prediction("m", {"x": 0.2, "y": 0.8})
    session.add_prediction("m", prediction)
    session.heat_map = ("m", "y")
    assert not session.choose_heat_map("m", "y")  # already shown: nothing to do
    assert session.automatic_heat_map(first, [prediction]) == ("m", "y")
    assert session.choose_heat_map("m", "x") and session.pinned
    assert session.automatic_heat_map(first, [prediction]) is None  # the worker leaves it alone
    assert session.heat_map_choice() == ("m", "y")  # the combo keeps the map shown until the chosen one comes
    session.heat_map = ("m", "x")
    assert session.heat_map_choice() == ("m", "x")
    rerun = session.rerun()  # e.g. a model turned on: the choice stays
    assert rerun != first and session.pinned and session.automatic_heat_map(rerun, [prediction]) is None
    session.drop_heat_map()  # e.g. its model turned off, or another device: the default again
    assert not session.pinned and session.heat_map is None
    assert session.heat_map_choice() == ("m", "y")

    assert session.choose_heat_map("m", "x")
    following = shown(session)  # the next image: nothing pinned, no findings yet
    assert not session.pinned and session.heat_map is None and not session.predictions
    assert session.automatic_heat_map(following, [prediction]) == ("m", "y")
    assert not session.choose_heat_map("m", "x")  # no findings to explain yet


def test_answers_to_an_older_request_are_stale():
    session = ReadingSession()
    assert not session.is_current(0)  # nothing shown
    first = shown(session)
    assert session.is_current(first)
    opening = session.new_request()  # another image is being opened: the one shown is not current
    assert opening > first and not session.is_current(first) and not session.is_current(opening)
    session.request = session.shown_request  # it failed to open: the image shown is current again
    assert session.is_current(first)
    rerun = session.rerun()
    assert rerun > opening and session.is_current(rerun) and not session.is_current(first)
    session.request = STOPPED  # closing: every answer is stale
    assert not session.is_current(rerun)


def test_findings_are_planned_kept_and_cleared_per_model():
    session = ReadingSession()
    shown(session)
    session.plan(["a", "b", "c"], {"a": (PA,)})
    session.add_prediction("a", make_prediction("a", {"x": 0.7}))
    session.model_failed("b")
    assert session.unanswered() == ["c"]
    session.plan(["c", "a"], {})  # b turned off meanwhile: a keeps its findings
    assert list(session.predictions) == ["a"] and session.unanswered() == ["c"]
    assert session.population == {"c": (), "a": ()}
    session.clear_findings()
    assert session.models == [] and session.predictions == {} and session.film_warnings == ()


def test_window_and_inversion_are_the_users_on_top_of_the_images_own():
    session = ReadingSession()
    default = Window(40.0, 400.0)
    shown(session, default=default, invert=True)
    session.set_window(Window(50.0, 300.0))
    assert session.window_override == Window(50.0, 300.0)
    session.set_window(default)
    assert session.window_override is None  # back to the image's own window (maybe its VOI LUT)
    assert session.display_inverted()  # MONOCHROME1
    session.inverted = True
    assert not session.display_inverted()
    shown(session)
    assert not session.inverted and session.window_override is None


def test_a_refused_film_shows_its_refusal_until_scored_anyway_for_that_film_only():
    session = ReadingSession()
    first = shown(session)
    assert not session.refused  # not checked yet
    session.checked(Applicability(refusal=PHOTOGRAPH))
    assert session.refused and session.scored_anyway_note() == ""
    rerun = session.score_anyway()
    assert rerun > first and session.is_current(rerun) and not session.refused
    note = ("Scored although refused: not a chest radiograph (looks like a photograph). "
            "These findings may mean nothing.")
    assert session.scored_anyway_note() == note
    session.checked(Applicability(refusal=PHOTOGRAPH))  # the forced run's verdict: refused, scored anyway
    assert not session.refused and session.sidebar_warnings().scored_anyway == note
    session.clear_findings()  # e.g. another device: the override stays with the film
    assert session.scored_anyway and session.scored_anyway_note() == note

    shown(session)  # the next film starts afresh
    assert not session.scored_anyway and session.applicability is None
    session.checked(Applicability(refusal=PHOTOGRAPH))
    assert session.refused and session.sidebar_warnings().scored_anyway == ""


def test_nothing_checked_the_film_is_said_once_unless_it_was_refused():
    session = ReadingSession()
    shown(session)
    session.checked(Applicability(warnings=(LATERAL,)), (NO_GATE,))
    session.plan(["a", "b"], {})
    warnings = session.sidebar_warnings()
    assert warnings.unchecked == (NO_GATE,) and warnings.above == (LATERAL,)  # once, not per model
    session.checked(Applicability(refusal="Not a chest radiograph (body part KNEE): no findings computed."),
                    (NO_GATE,))
    assert session.sidebar_warnings().unchecked == ()  # the rules checked it, and refused it
    session.score_anyway()
    assert session.sidebar_warnings().unchecked == ()  # scored anyway: still checked, still refused


def test_models_outside_the_films_age_group_come_from_the_header_else_the_gates_estimate():
    cards = [make_card("peds", age_group="child"), make_card("adult", age_group="adult"), make_card("any")]
    estimate = Applicability(population="adult", population_source="pixels")
    image = XRayImage(np.zeros((4, 4), np.float32), "MONOCHROME2", Window(0.5, 1.0))
    assert models_outside(image, cards, estimate) == {"peds"}
    assert models_outside(image, cards, None) == set()  # nothing known: every model speaks
    child = XRayImage(np.zeros((4, 4), np.float32), "MONOCHROME2", Window(0.5, 1.0), age_group="child")
    assert models_outside(child, cards, estimate) == {"adult"}  # the header wins over the pixels

    session = ReadingSession()
    shown(session)
    session.checked(estimate)
    session.plan_models(cards)
    assert session.outside == {"peds"} and session.population["peds"] == (LOOKS_ADULT,)
    assert session.folded("peds") and not session.folded("adult")


def test_an_outside_model_is_folded_not_counted_and_never_the_default_heat_map():
    session = ReadingSession()
    request = shown(session)
    session.plan(["peds", "adult"], {"peds": (LOOKS_ADULT,)}, outside={"peds"})
    peds = make_prediction("peds", {"pneumonia": 0.9})  # suggested, and higher than the adult model's
    adult = make_prediction("adult", {"cardiomegaly": 0.3})
    session.add_prediction("peds", peds)
    session.add_prediction("adult", adult)
    assert session.counted_predictions() == [adult]
    assert session.default_heat_map() == ("adult", "cardiomegaly")
    assert session.automatic_heat_map(request, [peds, adult], session.outside) == ("adult", "cardiomegaly")
    assert session.heat_map_findings() == [("adult", "cardiomegaly")]  # nothing of a folded model
    assert not session.set_expanded("peds", True)
    assert not session.folded("peds") and session.outside == {"peds"}  # unfolded, still outside
    assert session.heat_map_findings() == [("peds", "pneumonia"), ("adult", "cardiomegaly")]
    assert session.default_heat_map() == ("adult", "cardiomegaly")  # still not counted
    assert session.choose_heat_map("peds", "pneumonia")
    session.heat_map = ("peds", "pneumonia")
    assert session.set_expanded("peds", False)  # folded back: its heat map gives way to the default
    assert session.heat_map is None and not session.pinned
    assert not session.set_expanded("adult", False)  # not outside: nothing to fold
    shown(session)
    assert session.expanded == set() and session.outside == frozenset()


def test_the_summary_counts_only_the_models_that_fit_the_film():
    adult = make_prediction("adult", {"cardiomegaly": 0.7, "effusion": 0.2})
    peds = make_prediction("peds", {"pneumonia": 0.9})
    assert findings_summary([adult, peds], 0) == "2 of 3 findings above their model's threshold (2 models)"
    assert findings_summary([adult], 0, 1) == (
        "1 of 2 findings above their model's threshold (1 model) · 1 model outside the film's population, "
        "not counted")
    assert findings_summary([], 1, 2) == (
        "No finding counted: 2 models outside the film's population · 1 still running")
    assert findings_summary([], 1) == "Analysing the image…"
    assert findings_summary([make_prediction("a", {"x": 0.1})], 0) == (
        "No finding above its model's threshold (1 checked by 1 model)")
