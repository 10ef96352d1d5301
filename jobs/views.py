import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render

from jobs.filters import JobFilter
from jobs.kinds import registry
from jobs.models import ACTIVE, Priority, State
from jobs.selectors import jobs_visible_to
from jobs.services import job_submit
from nodes.selectors import nodes_online
from portal.errors import PortalError
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
            "my_jobs": jobs.filter(owner=request.user)[:10],
            "counts": counts,
            "nodes_online": online.count(),
            "gpus_online": sum(len(n.gpus or []) for n in online),
            "projects": projects_visible_to(request.user),
            "uploads": uploads_visible_to(request.user)[:5],
        },
    )


@login_required
def job_list(request):
    jobs = jobs_visible_to(request.user)
    projects = projects_visible_to(request.user)
    chosen = {k: request.GET.get(k, "") for k in ("project", "state", "kind")}
    # A value that is not valid filters nothing, as a page's filter form would.
    jobs = JobFilter(request.GET, queryset=jobs, request=request).qs
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "jobs/list.html",
        {
            "page": page,
            "projects": projects,
            "states": State.values,
            "kinds": sorted(registry()),
            "chosen": chosen,
        },
    )


@login_required
def job_detail(request, pk):
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    membership = page_membership(request, job.project_id)
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "params_json": json.dumps(job.params, indent=2, sort_keys=True),
            "inputs": [i.upload for i in job.job_inputs.select_related("upload")],
            "transitions": job.transitions.select_related("by"),
            "artifacts": job.artifacts.all(),
            "can_cancel": membership.allows(Role.EDITOR) and not job.is_finished,
            "can_submit": membership.allows(Role.EDITOR),
        },
    )


class JobForm(forms.Form):
    kind = forms.ChoiceField()
    name = forms.CharField(max_length=200, required=False)
    priority = forms.ChoiceField(choices=[(p, p) for p in Priority.labels], initial="normal")
    params = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        initial="{}",
        help_text='Parameters as JSON, e.g. {"sleep": 10} for a check.',
    )
    inputs = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, uploads, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(k, v.title or k) for k, v in sorted(registry().items())]
        self.fields["inputs"].choices = [(u.pk, f"{u.name} ({u.kind})") for u in uploads]

    def clean_params(self):
        try:
            params = json.loads(self.cleaned_data["params"] or "{}")
        except ValueError as exc:
            raise forms.ValidationError(f"This is not JSON: {exc}") from None
        if not isinstance(params, dict):
            raise forms.ValidationError("Parameters are a JSON object: {...}.")
        return params


@login_required
def job_new(request, pk):
    membership = page_membership(request, pk, role=Role.EDITOR)
    project = membership.project
    uploads = list(project.uploads.all())
    initial = {"kind": request.GET.get("kind")}
    if request.GET.get("model_job", "").isdigit():
        initial["params"] = json.dumps({"model_job": int(request.GET["model_job"])})
    form = JobForm(request.POST or None, uploads=uploads, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            job, _ = job_submit(
                project=project,
                by=request.user,
                kind=form.cleaned_data["kind"],
                name=form.cleaned_data["name"],
                params=form.cleaned_data["params"],
                inputs=[int(i) for i in form.cleaned_data["inputs"]],
                priority=form.cleaned_data["priority"],
            )
        except PortalError as exc:
            form.add_error(None, str(exc.detail))
        else:
            return redirect("job", pk=job.pk)
    return render(request, "jobs/new.html", {"project": project, "form": form})


class TrainForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    dataset = forms.ChoiceField(
        help_text=(
            "A CSV or TSV with a sequence and a label column, or a FASTA whose headers carry "
            "label=…"
        )
    )
    sequence_column = forms.CharField(max_length=200, initial="sequence", required=False)
    label_column = forms.CharField(max_length=200, initial="label", required=False)
    task = forms.ChoiceField(
        choices=[("classification", "classification"), ("regression", "regression")]
    )
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=10)
    lr = forms.FloatField(label="Learning rate", min_value=1e-6, max_value=1.0, initial=1e-3)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, initial=64)
    val_fraction = forms.FloatField(
        label="Validation fraction", min_value=0.05, max_value=0.5, initial=0.2
    )
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000
    )
    priority = forms.ChoiceField(choices=[(p, p) for p in Priority.labels], initial="normal")

    def __init__(self, *args, uploads, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [
            (u.pk, f"{u.name} ({u.kind}, {u.size:,} bytes)") for u in uploads
        ]


@login_required
def train_new(request, pk):
    membership = page_membership(request, pk, role=Role.EDITOR)
    project = membership.project
    uploads = list(project.uploads.filter(kind__in=["csv", "tsv", "fasta"]))
    form = TrainForm(request.POST or None, uploads=uploads)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        upload = next(u for u in uploads if str(u.pk) == data.pop("dataset"))
        name, priority = data.pop("name"), data.pop("priority")
        for column in ("sequence_column", "label_column"):
            data[column] = data[column] or form.fields[column].initial
        try:
            job, _ = job_submit(
                project=project,
                by=request.user,
                kind="train",
                name=name or f"train on {upload.name}",
                params=data,
                inputs=[upload.pk],
                priority=priority,
            )
        except PortalError as exc:
            form.add_error(None, str(exc.detail))
        else:
            return redirect("job", pk=job.pk)
    return render(
        request, "jobs/train_new.html", {"project": project, "form": form, "uploads": uploads}
    )
