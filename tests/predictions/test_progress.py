"""A prediction's progress comes from inside the model: each recycling pass of the trunk and
each diffusion step, so a running job moves and a stuck one does not."""

import pytest

from jobs.models import Job, State
from tests.jobs.test_runner import lines, place_and_run
from tests.predictions.test_predict import PROTEIN, submit, upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_50_step_prediction_reports_its_trunk_passes_and_diffusion_steps(
    boltz_node, api, alice, project, enqueued
):
    response = submit(
        api,
        alice,
        project,
        upload(api, alice, project, "p.yaml", PROTEIN),
        recycling_steps=2,
        sampling_steps=50,
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    progress = [(e.data["percent"], e.data["message"]) for e in job.events.filter(type="progress")]
    messages = [message for _, message in progress]
    assert [m for m in messages if "trunk" in m] == [
        f"structure: trunk, recycling pass {n} of 3" for n in (1, 2, 3)
    ]
    steps = [int(m.split()[3]) for m in messages if "diffusion" in m]
    assert len(steps) >= 5 and steps == sorted(steps) and steps[-1] == 50
    percents = [percent for percent, _ in progress]
    assert percents == sorted(percents) and percents[-1] == 100
    # Python's warnings (torch's pin_memory note on a machine without a GPU) stay in the
    # engine's own log, out of the job's.
    assert not [line for line in lines(job) if "Warning" in line]
