"""The findings sidebar: a section per model bundle, each with its card's limits, in the planned order (real
engine ModelCards and Predictions, built by hand)."""

from engine_helpers import make_card, make_prediction

from xrayviewer.gui.results_panel import ResultsPanel, card_tooltip


def _card(name, limitations=""):
    return make_card(name, limitations=limitations)


def _prediction(model, scores, thresholds):
    return make_prediction(model, scores, thresholds=thresholds)


def test_limits_of_each_card_are_shown_with_its_findings(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.plan([_card("cardiomegaly", "small test set <20 positives"), _card("pneumonia")])
    cardio = panel.sections["cardiomegaly"]
    assert cardio.limits.text() == "Limits: small test set <20 positives" and not cardio.limits.isHidden()
    assert panel.sections["pneumonia"].limits.isHidden()
    scores, thresholds = {"cardiomegaly": 0.7}, {"cardiomegaly": 0.4}
    panel.show_prediction("cardiomegaly", _prediction("cardiomegaly", scores, thresholds))
    assert cardio.rows["cardiomegaly"][2].text() == "70% · suggested"
    assert cardio.facts.text() == "cpu · 12 ms" and "torch" in cardio.facts.toolTip()
    assert panel.status.text().endswith("1 still running")


def test_sections_follow_the_plan_and_errors_stay_in_their_section(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.plan([_card("a"), _card("b"), _card("c")])
    panel.show_prediction("a", _prediction("a", {"x": 0.2, "y": 0.9}, {"x": 0.5, "y": 0.5}))
    panel.show_model_error("b", "The model 'b' could not be loaded: sha256 mismatch")
    panel.show_prediction("c", _prediction("c", {"z": 0.1}, {"z": 0.5}))
    assert list(panel.sections) == ["a", "b", "c"]
    assert list(panel.sections["a"].rows) == ["y", "x"]  # highest score first
    assert panel.sections["b"].error.text().endswith("sha256 mismatch") and not panel.sections["b"].rows
    assert panel.status.text() == "1 of 3 findings above their model's threshold (2 models)"
    kept = panel.sections["a"]
    panel.plan([_card("c"), _card("a")])  # b turned off: its section goes, the others keep their findings
    assert list(panel.sections) == ["c", "a"] and panel.sections["a"] is kept
    layout_order = [panel.sections_box.itemAt(i).widget() for i in range(2)]
    assert layout_order == [panel.sections["c"], kept]
    assert [p.model for p in panel.predictions()] == ["c", "a"]


def test_the_card_tooltip_sums_up_the_real_card():
    metrics = {"auroc": 0.91, "split": "test", "n": 9}
    card = make_card("pneumonia", limitations="AP films only", metrics=metrics)
    tip = card_tooltip(card)
    assert tip.startswith(f"<b>pneumonia</b> v1: {card.summary()}") and "AUROC 0.910" in tip
    assert "<b>Limits:</b> AP films only" in tip and "<b>Thresholds:</b> fixed" in tip
    assert card_tooltip(None) == ""
