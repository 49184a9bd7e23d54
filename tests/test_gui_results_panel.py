"""The findings sidebar states the model card's limits next to its results."""

from types import SimpleNamespace

from xrayviewer.gui.results_panel import ResultsPanel


def _prediction():
    return SimpleNamespace(
        classes=["cardiomegaly"], scores={"cardiomegaly": 0.7}, thresholds={"cardiomegaly": 0.4},
        positive=["cardiomegaly"], model="cardiomegaly", version="1", device="cpu", backend="torch",
        timings={"total": 12.0},
    )


def test_limits_of_the_card_are_shown_with_the_findings(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(_prediction(), "tooltip", limitations="small test set <20 positives")
    assert "Limits: small test set &lt;20 positives" in panel.model_info.text()
    assert "70% · suggested" in panel.rows["cardiomegaly"][2].text()
    panel.show_prediction(_prediction(), "tooltip")
    assert "Limits" not in panel.model_info.text()
