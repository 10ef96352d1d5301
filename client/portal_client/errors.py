"""What the client raises: the API's own `{"code", "detail"}` answers, and its own checks."""


class PortalError(Exception):
    """An error from the portal (its stable `code` and `detail`, and the HTTP `status`), or one
    the client found itself (`status` None)."""

    def __init__(self, code: str, detail: str, status: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.status = code, detail, status

    @classmethod
    def from_response(cls, response) -> "PortalError":
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "code" in body:
            return cls(str(body["code"]), str(body.get("detail", "")), response.status_code)
        # Not the API's answer (a proxy's error page, say): its first words will do.
        text = " ".join(response.text.split())[:200] or response.reason or ""
        return cls(f"http_{response.status_code}", text, response.status_code)


class DigestMismatch(PortalError):
    """A download whose bytes are not the ones the portal lists."""

    def __init__(self, detail: str):
        super().__init__("digest_mismatch", detail)
