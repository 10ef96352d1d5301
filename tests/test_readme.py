"""The example scripts of docs/api.md (an upload, a job, a follow: those that take a token), run
as written against a live portal (only the address, token and ids filled in), so the docs stay
true."""

import re
import subprocess
import sys

import pytest

from jobs.models import Job
from portal.accounts.services import token_create
from tests.conftest import REPO, wait_until

pytestmark = pytest.mark.slow


def examples() -> list[str]:
    text = (REPO / "docs" / "api.md").read_text()
    return [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "TOKEN" in block]


def run(code: str, *args, cwd) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_examples_run_as_written(orm_stack, project, alice, tmp_path):
    orm_stack.add_nodes("node-a")
    _, key = token_create(user=alice, name="readme")
    upload, job, follow = examples()
    address = orm_stack.url.removeprefix("http://")

    def fill(code, **values):
        code = code.replace('"http://127.0.0.1:8000"', f'"http://{address}"')
        code = code.replace('"ws://127.0.0.1:8000"', f'"ws://{address}"').replace(
            '"spt_..."', f'"{key}"'
        )
        for name, value in values.items():
            code = re.sub(rf"(PORTAL, TOKEN, {name} = .*), \d+\n", rf"\1, {value}\n", code)
        return code

    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(">a\nMKTAYIAKQR\n")
    first = run(fill(upload, PROJECT=project.pk), str(fasta), cwd=tmp_path)
    again = run(fill(upload, PROJECT=project.pk), str(fasta), cwd=tmp_path)
    assert first.split()[1] == "fasta" and first == again  # the second time it is found, not sent

    out = run(fill(job, PROJECT=project.pk), cwd=tmp_path)
    assert "succeeded" in out and "NVIDIA driver: none" in out
    assert (tmp_path / f"job-{Job.objects.get(kind='check').pk}.zip").stat().st_size > 0

    sleeper = orm_stack.client(alice).submit(project, params={"seconds": 2})["id"]
    out = run(fill(follow, JOB=sleeper), cwd=tmp_path)
    assert out.strip().endswith("succeeded") and "tick 1" in out
    wait_until(lambda: Job.objects.get(pk=sleeper).is_finished, 10, what="the job")
