"""Job kinds of the test suite's own, registered through PORTAL_JOB_KIND_MODULES.

`sleep` is a harmless job of known length (it can also ignore SIGTERM, print a flood of lines,
go silent or fail); `counter` runs in a resident engine (tests/jobprograms.py) that counts how
often it loaded.
"""

import sys

from jobs.kinds import register
from jobs.kinds.base import Command, JobKind


class SleepKind(JobKind):
    name = "sleep"
    title = "Sleep (tests)"
    gpu = "optional"
    max_inputs = 2

    def validate(self, params, inputs, **context):
        return params

    def build(self, context):
        argv = [sys.executable, "-m", "tests.jobprograms", "sleep", str(context.out)]
        argv += [
            str(context.params.get(k, ""))
            for k in ("seconds", "lines", "silent", "exit", "ignore_term", "say")
        ]
        argv += [str(p) for p in context.inputs]
        return Command(argv)


class CounterKind(JobKind):
    name = "counter"
    title = "Counter engine (tests)"
    gpu = "optional"
    engine = "tests.jobprograms.CounterEngine"

    def validate(self, params, inputs, **context):
        return params

    def engine_request(self, context):
        return {**context.params, "out": str(context.out)}


for kind in (SleepKind(), CounterKind()):
    register(kind)
