"""Job kinds of the test suite's own, registered through PORTAL_JOB_KIND_MODULES.

`sleep` is a harmless job of known length (it can also ignore SIGTERM, print a flood of lines,
go silent, fail, or run shorter when it runs again); `counter` runs in a resident engine
(tests/jobprograms.py) that counts how often it loaded.
"""

import os
import sys

from django.conf import settings
from rest_framework import serializers

from jobs.kinds import register
from jobs.kinds.base import Command, CommandKind, EngineKind


class SleepParams(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, required=False)
    again = serializers.FloatField(
        min_value=0, required=False, help_text="seconds instead, when the job runs again"
    )
    lines = serializers.IntegerField(min_value=0, required=False)
    silent = serializers.BooleanField(required=False)
    exit = serializers.IntegerField(min_value=0, max_value=255, required=False)
    ignore_term = serializers.BooleanField(required=False)
    say = serializers.CharField(required=False)
    gib = serializers.IntegerField(min_value=0, required=False, help_text="GPU memory it needs")
    n = serializers.JSONField(required=False, help_text="tells otherwise equal jobs apart")


class SleepKind(CommandKind):
    name = "sleep"
    title = "Sleep (tests)"
    gpu = "optional"
    max_inputs = 2
    Params = SleepParams

    def gpu_memory(self, params, inputs):
        return params.get("gib", 0) * 2**30 or None

    def build(self, context):
        params = dict(context.params)
        # A job re-queued after its node died runs `again` seconds on its next run: a test
        # needs the first run long enough to outlive the failure, not the second.
        ran = settings.WORKDIR / "tmp" / f"sleep-{context.job_id}.ran"
        if ran.exists() and "again" in params:
            params["seconds"] = params["again"]
        ran.parent.mkdir(parents=True, exist_ok=True)
        ran.touch()
        argv = [sys.executable, "-m", "tests.jobprograms", "sleep", str(context.out)]
        names = ("seconds", "lines", "silent", "exit", "ignore_term", "say")
        argv += [str(params.get(k, "")) for k in names]
        argv += [str(i.path) for i in context.inputs]
        return Command(argv)


class CounterParams(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, required=False)
    ignore_cancel = serializers.BooleanField(required=False)
    fail = serializers.BooleanField(required=False)
    oom_once = serializers.BooleanField(
        required=False, help_text="run out of GPU memory the first time it runs"
    )
    gib = serializers.IntegerField(min_value=0, required=False, help_text="GPU memory it needs")
    n = serializers.IntegerField(required=False, help_text="tells otherwise equal jobs apart")


class CounterKind(EngineKind):
    name = "counter"
    title = "Counter engine (tests)"
    gpu = "optional"
    shares_gpu = True  # where it has an estimate (`gib`)
    engine = "tests.jobprograms.CounterEngine"
    Params = CounterParams

    def gpu_memory(self, params, inputs):
        return params.get("gib", 0) * 2**30 or None

    def engine_environment(self):
        return {"COUNTER_GREETING": "hello"}

    def engine_options(self):
        # The node's configuration: read where the engine starts, as a kind's weights path is.
        return {"memory": int(os.environ.get("COUNTER_ENGINE_MEMORY", "0"))}

    def engine_request(self, context):
        request = {**context.params, "out": str(context.out)}
        if context.params.get("oom_once"):
            request["oom_marker"] = str(settings.WORKDIR / "tmp" / f"oom-{context.job_id}")
            (settings.WORKDIR / "tmp").mkdir(parents=True, exist_ok=True)
        return request


class EngineParams(serializers.Serializer):
    n = serializers.IntegerField(required=False, help_text="tells otherwise equal jobs apart")


class SlowLoadKind(EngineKind):
    name = "slowload"
    title = "Slowly loading engine (tests)"
    gpu = "optional"
    engine = "tests.jobprograms.SlowLoadEngine"
    Params = EngineParams

    def engine_request(self, context):
        return {}


class BrokenKind(EngineKind):
    name = "broken"
    title = "Engine that cannot load (tests)"
    gpu = "optional"
    engine = "tests.jobprograms.BrokenEngine"
    Params = EngineParams

    def engine_request(self, context):
        return {}


for kind in (SleepKind(), CounterKind(), SlowLoadKind(), BrokenKind()):
    register(kind)
