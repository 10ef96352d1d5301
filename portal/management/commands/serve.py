from django.core.management.base import BaseCommand

from portal.signals import server_starting


class Command(BaseCommand):
    help = "Serve the portal with Daphne on HOST:PORT (bodies streamed, see portal/serving.py)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For/-Proto from the proxy in front (nginx)",
        )

    def handle(self, *args, host, port, proxy_headers, **options):
        # Imported here: Daphne installs Twisted's asyncio reactor when it is first imported.
        from django.conf import settings

        from portal.serving import PortalDaphne

        # The web server answers many submissions at once: it places jobs on a thread of
        # its own rather than within each request.
        settings.PORTAL_PLACE_IN_BACKGROUND = True
        # The apps load what they need to answer (the job kinds: boltz's parser, …) while the
        # server starts, not in the first scientist's request.
        server_starting.send(sender=self.__class__)

        argv = ["-b", host, "-p", str(port)]
        if proxy_headers:
            argv.append("--proxy-headers")
        self.stdout.write(f"Serving the portal on http://{host}:{port}/")
        PortalDaphne().run([*argv, "portal.asgi:application"])
