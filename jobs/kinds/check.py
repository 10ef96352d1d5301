"""`check`: what a node can run, as its probe sees it (nodes/probe.py: `inspect`), reported as log
lines and `check.json`."""

import sys

from rest_framework import serializers

from jobs.kinds.base import Command, CommandKind, RunContext

MAX_SLEEP = 3600


class CheckParams(serializers.Serializer):
    sleep = serializers.FloatField(
        min_value=0,
        max_value=MAX_SLEEP,
        default=0,
        help_text="Seconds to wait first, printing a line a second (to try cancel and the pool).",
    )


class CheckKind(CommandKind):
    name = "check"
    title = "Node check"
    gpu = "optional"
    Params = CheckParams

    def validate(self, params: dict, inputs: list, **context) -> dict:
        cleaned = self.clean_params(params)
        return {"sleep": cleaned["sleep"]} if cleaned["sleep"] else {}

    def build(self, context: RunContext) -> Command:
        argv = [sys.executable, "-m", "jobs.programs.check", "--out", str(context.out)]
        if context.params.get("sleep"):
            argv += ["--sleep", str(context.params["sleep"])]
        return Command(argv)
