"""Several browsers over one in-process TestClient: each keeps its own cookies (one app, one
lifespan, so one supervisor and one class channel for all of them)."""

from __future__ import annotations

from fastapi.testclient import TestClient


class Browser:
    """One browser's cookie jar over the test's one client (one app, one lifespan)."""

    def __init__(self, client: TestClient):
        self.c, self.jar = client, []

    def _swap(self) -> None:
        self.c.cookies.clear()
        for ck in self.jar:
            self.c.cookies.jar.set_cookie(ck)

    @property
    def cookie_names(self) -> set[str]:
        return {ck.name for ck in self.jar}

    def request(self, method: str, url: str, **kw):
        self._swap()
        r = self.c.request(method, url, follow_redirects=False, **kw)
        self.jar = list(self.c.cookies.jar)
        return r

    def get(self, url: str, **kw):
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw):
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw):
        return self.request("DELETE", url, **kw)

    def websocket_connect(self, url: str, **kw):
        self._swap()
        return self.c.websocket_connect(url, **kw)
