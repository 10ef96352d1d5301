"""What the `portal` command says of a job at its end: its headline figures."""

from portal_client.cli import figures


def test_a_predictions_figures_are_said_and_missing_ones_left_out():
    job = {
        "metrics": {
            "confidence_score": {"step": 0, "value": 0.8123},
            "ptm": {"step": 0, "value": 0.79},
            "affinity_probability_binary": {"step": 0, "value": 0.43},
            "ticks": {"step": 3, "value": 3},
        }
    }
    assert figures(job) == "confidence 0.812, pTM 0.790, binder probability 0.430"
    assert figures({"metrics": {}}) == ""
