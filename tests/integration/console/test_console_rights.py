"""The rights desk in the console: file, pause, resume, extend, refuse — never echoing a code."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient

CHILD = "CHILDCODE-Q7Z"


def test_file_and_progress_a_request_without_showing_the_code(client: TestClient, login,  # type: ignore[no-untyped-def]
                                                               csrf_of) -> None:
    today = dt.date.today()
    received, asked, answered = (today - dt.timedelta(days=d) for d in (10, 8, 2))
    login(client, "omar")
    token = csrf_of(client, "/rights")
    filed = client.post("/rights/new", data={
        "csrf_token": token, "type": "restriction", "la": "354", "child": CHILD,
        "received": received.isoformat(), "channel": "email", "note": "via LA"})
    assert filed.status_code == 303, filed.text
    location = filed.headers["location"]
    rid = int(re.search(r"/rights/(\d+)", location).group(1))  # type: ignore[union-attr]
    page = client.get(location)
    assert page.status_code == 200 and "restriction" in page.text
    for action, data in [("await-id", {"date": asked.isoformat()}),
                         ("resume", {"date": answered.isoformat()}),
                         ("extend", {"reason": "Several LAs hold records about this request; "
                                               "searches take longer."})]:
        done = client.post(f"/rights/{rid}/{action}", data={"csrf_token": token, **data})
        assert done.status_code == 303, (action, done.text)
    detail = client.get(f"/rights/{rid}")
    assert "Extension" in detail.text and "tell the person by" in detail.text
    listing = client.get("/rights")
    for html in (page.text, detail.text, listing.text):
        assert CHILD not in html


def test_analyst_cannot_open_the_desk(client: TestClient, login) -> None:  # type: ignore[no-untyped-def]
    login(client, "ana")
    assert client.get("/rights").status_code == 403
