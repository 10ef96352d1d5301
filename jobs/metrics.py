"""The jobs' series at `/metrics` (portal/metrics.py), read from the database at each scrape,
so every web process answers alike.

The histograms cover every job that has the two times, since the portal began: they only
grow, as a Prometheus histogram should, except when jobs are deleted (a project with them) or
a running job goes back to the queue, which Prometheus reads as a counter reset.
"""

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from jobs.kinds import registry as kinds
from jobs.models import Job, Priority, State
from nodes.models import Node
from nodes.selectors import with_running_count

HOUR, DAY = 3600, 24 * 3600
# Upper bounds in seconds: from a job that starts at once to one that waited a day.
QUEUE_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, HOUR, 3 * HOUR, 12 * HOUR, DAY)
# From a job of seconds to one that runs to the longest time limit (7 days).
RUN_BUCKETS = (
    10,
    30,
    60,
    300,
    600,
    1800,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    3 * DAY,
    7 * DAY,
)


def duration_histogram(name, documentation, jobs, start, end, buckets):
    """A histogram by kind of `end - start` over `jobs`, from one grouped query: a bucket is
    a count filtered by its bound, the sum a sum of the durations."""
    duration = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    bounds = {f"le_{i}": bound for i, bound in enumerate(buckets)}
    rows = (
        jobs.filter(**{f"{start}__isnull": False, f"{end}__isnull": False})
        .values("kind")
        .annotate(
            count=Count("pk"),
            total=Sum(duration),
            **{
                key: Count("pk", filter=Q(**{f"{end}__lte": F(start) + timedelta(seconds=bound)}))
                for key, bound in bounds.items()
            },
        )
        .order_by("kind")
    )
    family = HistogramMetricFamily(name, documentation, labels=["kind"])
    for row in rows:
        counts = [(floatToGoString(bound), row[key]) for key, bound in bounds.items()]
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        family.add_metric([row["kind"]], [*counts, ("+Inf", row["count"])], total)
    return family


class JobsCollector(Collector):
    def collect(self):
        yield self.jobs()
        yield duration_histogram(
            "portal_job_queue_wait_seconds",
            "Time from queued to started, of jobs that started",
            Job.objects.all(),
            "queued_at",
            "started_at",
            QUEUE_WAIT_BUCKETS,
        )
        yield duration_histogram(
            "portal_job_run_seconds",
            "Time from started to finished, of jobs that finished after starting",
            Job.objects.filter(state__in=[State.SUCCEEDED, State.FAILED, State.CANCELLED]),
            "started_at",
            "finished_at",
            RUN_BUCKETS,
        )
        yield self.running_per_node()
        yield self.silent()

    def jobs(self):
        counts = {
            (row["state"], row["kind"], row["priority"]): row["n"]
            for row in Job.objects.values("state", "kind", "priority")
            .annotate(n=Count("pk"))
            .order_by()
        }
        # Every state of every kind, at 0 when none: a series that vanishes when the last
        # running job ends would read as "no data" rather than 0.
        every_kind = sorted(set(kinds()) | {kind for _, kind, _ in counts})
        family = GaugeMetricFamily(
            "portal_jobs", "Jobs by state, kind and priority", labels=["state", "kind", "priority"]
        )
        for state in State.values:
            for kind in every_kind:
                for priority in Priority:
                    n = counts.get((state, kind, priority.value), 0)
                    family.add_metric([state, kind, priority.label], n)
        return family

    def running_per_node(self):
        family = GaugeMetricFamily(
            "portal_jobs_running", "Jobs running on each node", labels=["node"]
        )
        for node in with_running_count(Node.objects.only("name")).order_by("name"):
            family.add_metric([node.name], node.running_count)
        return family

    def silent(self):
        # Per-message lag (a line stored to a page receiving it) is measured by
        # bench/stream.py; what a live series can say honestly is how long the quietest
        # running job has said nothing (the silence limit stops it at PORTAL_JOB_SILENCE_LIMIT).
        quiet_since = Job.objects.filter(state=State.RUNNING).aggregate(
            since=Min(Coalesce("last_output_at", "started_at"))
        )["since"]
        seconds = (timezone.now() - quiet_since).total_seconds() if quiet_since else 0.0
        return GaugeMetricFamily(
            "portal_running_jobs_silent_seconds",
            "The longest any running job has gone without output (0 when none runs)",
            value=max(seconds, 0.0),
        )
