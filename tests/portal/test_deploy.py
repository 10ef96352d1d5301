"""Production-style settings pass Django's deployment checks."""

import subprocess
import sys

from tests.conftest import REPO


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k7#Pq2x!Lm9vR4tZ8wY1nB6cF3hJ0gD5sA-eU_iO+pXrTyQ3mW8zK2dV6bN",
        "DJANGO_ALLOWED_HOSTS": "portal.example.org",
        "PORTAL_HTTPS": "1",
        "PORTAL_BEHIND_PROXY": "1",
        "PORTAL_WORKDIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
