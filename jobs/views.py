import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from jobs.filters import JobFilter
from jobs.forms import JobForm
from jobs.kinds import get_kind, headline, registry
from jobs.kinds.base import Page, Runs
from jobs.models import ACTIVE, State
from jobs.selectors import jobs_visible_to, waiting
from jobs.services import job_submit_all
from nodes.selectors import nodes_online
from portal.errors import PortalError
from portal.ids import parse_id
from portal.projects.models import Role
from portal.projects.selectors import projects_visible_to
from portal.projects.views import page_membership
from portal.uploads.selectors import uploads_visible_to


@login_required
def dashboard(request):
    jobs = jobs_visible_to(request.user)
    counts = jobs.filter(state__in=ACTIVE).aggregate(
        queued=Count("id", filter=Q(state=State.QUEUED)),
        running=Count("id", filter=Q(state=State.RUNNING)),
    )
    online = nodes_online().filter(enabled=True)
    return render(
        request,
        "jobs/dashboard.html",
        {
            # The jobs a user submitted, not those their jobs run (the candidates of a search).
            "my_jobs": jobs.filter(owner=request.user, parent__isnull=True)[:10],
            "counts": counts,
            "nodes_online": online.count(),
            "gpus_online": sum(len(n.gpus or []) for n in online),
            "projects": projects_visible_to(request.user),
            "uploads": uploads_visible_to(request.user)[:5],
            "unavailable": unavailable_kinds(),
        },
    )


def about(job) -> str:
    parent = get_kind(job.parent.kind) if job.parent_id else None
    return parent.about_child(job) if parent else ""


def params_table(params: dict) -> list[tuple[str, str]]:
    """A job's parameters as a page shows them: by name, a mapping or list as JSON in short."""

    def short(value) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict | list):
            text = json.dumps(value, sort_keys=True)
            return text if len(text) <= 120 else text[:117] + "…"
        return str(value)

    return [(name.replace("_", " "), short(value)) for name, value in sorted(params.items())]


def unavailable_kinds() -> list[tuple[str, str]]:
    """(title, why and what an operator does) of each kind no node can run now (but those a
    portal may well go without: `JobKind.optional`)."""
    found = []
    for _, kind in sorted(registry().items()):
        why = None if kind.optional else kind.unavailable()
        if why:
            found.append((kind.title or kind.name, why))
    return found


@login_required
def job_list(request):
    jobs = jobs_visible_to(request.user)
    projects = projects_visible_to(request.user)
    chosen = {k: request.GET.get(k, "") for k in ("project", "state", "kind", "children")}
    # A value that is not valid filters nothing, as a page's filter form would.
    jobs = JobFilter(request.GET, queryset=jobs, request=request).qs
    # The jobs other jobs run (a search it waits for, the candidates of a search) are grouped
    # under them: counted on their row, listed only when asked.
    hidden = jobs.filter(parent__isnull=False).count()
    if not chosen["children"]:
        jobs = jobs.filter(parent__isnull=True)
    jobs = jobs.annotate(runs=Count("children", distinct=True)).order_by("-created_at", "-id")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    for job in page:
        job.figures = headline(job)
    return render(
        request,
        "jobs/list.html",
        {
            "page": page,
            "projects": projects,
            "states": State.values,
            "kinds": sorted(registry()),
            "chosen": chosen,
            "children_count": hidden,
        },
    )


def children_label(job, kind) -> str:
    """What a job's children are to it: a job that holds no slot runs as them (a campaign's
    candidates, a screen's ligands); another job waits for them (its MSA search)."""
    if kind is None or kind.runs != Runs.NO_SLOT:
        return "Runs after"
    count = job.children.count()
    return f"Its {count} jobs (the first 20 here)" if count > 20 else "Its jobs"


@login_required
def job_detail(request, pk):
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    membership = page_membership(request, job.project_id)
    kind = get_kind(job.kind)
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "params_json": json.dumps(job.params, indent=2, sort_keys=True),
            "params_table": params_table(job.params),
            "inputs": [i.upload for i in job.job_inputs.select_related("upload")],
            "transitions": job.transitions.select_related("by"),
            "artifacts": job.artifacts.all(),
            "children": job.children.order_by("id")[:20],
            "children_label": children_label(job, kind),
            # The kind's own parts of the page, if it has any.
            "page": kind.page if kind else Page(),
            "can_cancel": membership.allows(Role.EDITOR) and not job.is_finished,
            "can_submit": membership.allows(Role.EDITOR),
            # What the kind's own part of the page needs beyond the job.
            "page_context": kind.page_context(job) if kind else {},
            # What the job it runs for says of it (a search, of its candidate).
            "about": about(job),
            # A queued job's place in the queue, and when it may start.
            "waiting": waiting(job),
        },
    )


@login_required
def job_new(request, pk):
    """Which kind of job: each kind the portal runs, with what it takes."""
    membership = page_membership(request, pk, role=Role.EDITOR)
    kinds = [(kind, kind.unavailable()) for _, kind in sorted(registry().items())]
    return render(request, "jobs/new.html", {"project": membership.project, "kinds": kinds})


@login_required
def job_new_kind(request, pk, kind):
    """A job of one kind: its form is built from the parameters the kind declares."""
    membership = page_membership(request, pk, role=Role.EDITOR)
    project = membership.project
    job_kind = get_kind(kind)
    if job_kind is None:
        raise Http404("No such kind of job.")
    uploads = list(project.uploads.all())
    fields = job_kind.Params().fields
    initial = {k: v for k, v in request.GET.items() if k in fields}
    # "Run again with changes": the form filled from a job of the kind the user can see (its
    # uploads and parameters; a new seed unless one is given).
    source = parse_id(request.GET.get("from", ""))
    rerun = source and jobs_visible_to(request.user).filter(pk=source, kind=kind).first()
    if rerun:
        params, chosen = job_kind.again(rerun)
        initial.update({k: v for k, v in params.items() if k in fields})
        chosen = [str(pk) for pk in chosen if any(u.pk == pk for u in uploads)]
        if chosen and job_kind.max_inputs:
            initial["inputs"] = chosen[0] if job_kind.max_inputs == 1 else chosen
    form = JobForm(request.POST or None, kind=job_kind, uploads=uploads, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            submitted = job_submit_all(
                project=project,
                by=request.user,
                kind=kind,
                name=form.cleaned_data["name"],
                params=form.params(),
                inputs=form.input_ids(),
                priority=form.cleaned_data["priority"],
            )
        except ValidationError as exc:
            form.show_errors(exc.detail)
        except PortalError as exc:
            form.add_error(None, str(exc.detail))
        else:
            if len(submitted) == 1:
                return redirect("job", pk=submitted[0][0].pk)
            messages.success(request, f"{len(submitted)} jobs submitted, one per record.")
            return redirect(f"{reverse('jobs')}?project={project.pk}&kind={kind}")
    context = {
        "project": project,
        "kind": job_kind,
        "form": form,
        # For the kind's own form scripts (which upload a field may name).
        "uploads": [{"id": u.pk, "name": u.name, "kind": u.kind} for u in uploads],
        # Why no node can run it now (the form says so, and cannot be sent).
        "unavailable": job_kind.unavailable(),
        **job_kind.form_context(project),
    }
    return render(request, job_kind.page.form or "jobs/new_kind.html", context)
