"""`check`: what a node can run. Reports the NVIDIA driver and GPUs, torch and whether CUDA
works, boltz and whether its weights are present, as log lines and `check.json`."""

import sys

from jobs.kinds.base import Command, JobKind, RunContext
from portal.errors import PortalError

MAX_SLEEP = 3600


class CheckKind(JobKind):
    name = "check"
    title = "Node check"
    gpu = "optional"

    def validate(self, params: dict, inputs: list, **context) -> dict:
        unknown = set(params) - {"sleep"}
        if unknown:
            raise PortalError(
                f"Unknown parameter(s) for check: {', '.join(sorted(unknown))}; "
                "it takes only 'sleep'.",
                code="params_invalid",
            )
        sleep = params.get("sleep", 0)
        if (
            isinstance(sleep, bool)
            or not isinstance(sleep, int | float)
            or not 0 <= sleep <= MAX_SLEEP
        ):
            raise PortalError(
                f"'sleep' is a number of seconds from 0 to {MAX_SLEEP}.", code="params_invalid"
            )
        return {"sleep": sleep} if sleep else {}

    def build(self, context: RunContext) -> Command:
        argv = [sys.executable, "-m", "jobs.programs.check", "--out", str(context.out)]
        if context.params.get("sleep"):
            argv += ["--sleep", str(context.params["sleep"])]
        return Command(argv)
