from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts.services import token_create, token_revoke
from portal.errors import PortalError


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'pipeline on hpc01'.")
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a token that does not expire.",
    )


@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        expires_on = form.cleaned_data["expires_on"]
        expires_at = (
            timezone.make_aware(datetime.combine(expires_on, time.max)) if expires_on else None
        )
        try:
            token, new_key = token_create(
                user=request.user, name=form.cleaned_data["name"], expires_at=expires_at
            )
        except PortalError as exc:
            form.add_error(None, str(exc.detail))
        else:
            form = TokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": request.user.api_tokens.all(), "new_key": new_key},
    )


@login_required
@require_POST
def token_revoke_view(request, pk):
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    token_revoke(token=token)
    messages.success(request, f"Token '{token.name}' is revoked.")
    return redirect("tokens")
