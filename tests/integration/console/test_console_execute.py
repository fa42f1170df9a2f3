"""The console's Execute: a preview first (nothing changed), then the preview's own Confirm;
an erasure needs `erase N` typed; the sealed access response can be downloaded again while
the inventory holds it; the outcome letter is readable; only the buttons the request's state
allows are shown."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pyrage
from pyrage import x25519
from starlette.testclient import TestClient


def _file(client: TestClient, token: str, kind: str, child: str) -> int:
    received = dt.date.today() - dt.timedelta(days=5)
    filed = client.post("/rights/new", data={
        "csrf_token": token, "type": kind, "la": "354", "child": child,
        "received": received.isoformat(), "channel": "email", "note": ""})
    assert filed.status_code == 303, filed.text
    return int(re.search(r"/rights/(\d+)", filed.headers["location"]).group(1))  # type: ignore[union-attr]


def test_access_preview_confirm_download_again_and_letter(client: TestClient, login,  # type: ignore[no-untyped-def]
                                                          csrf_of) -> None:
    login(client, "omar")
    token = csrf_of(client, "/rights")
    rid = _file(client, token, "access", "CHILD-ACCESS-1")
    page = client.get(f"/rights/{rid}").text
    assert "Start work" in page and "Information received" not in page  # state-aware

    identity = x25519.Identity.generate()
    form = {"csrf_token": token, "recipient": str(identity.to_public())}
    preview = client.post(f"/rights/{rid}/execute", data=form)
    assert preview.status_code == 200 and "check before executing" in preview.text
    assert f"access-request-{rid}.zip.age" in preview.text and 'value="yes"' in preview.text
    assert "received" in client.get(f"/rights/{rid}").text  # nothing changed yet
    assert client.get(f"/rights/{rid}/response").status_code == 400  # nothing sealed yet

    done = client.post(f"/rights/{rid}/execute", data={**form, "confirmed": "yes"})
    assert done.status_code == 303, done.text
    page = client.get(f"/rights/{rid}").text
    assert "completed" in page and "Act on this request" not in page
    assert f"download access-request-{rid}.zip.age" in page
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", page)  # history times to the second
    for _ in range(2):  # downloadable again
        got = client.get(f"/rights/{rid}/response")
        assert got.status_code == 200
        with zipfile.ZipFile(io.BytesIO(pyrage.decrypt(got.content, [identity]))) as zf:
            assert any(n.endswith(".xlsx") for n in zf.namelist())
    letter = client.get(f"/rights/{rid}/letter")
    assert letter.status_code == 200 and "CHILD-ACCESS-1" not in letter.text
    assert "locked" in letter.text and str(identity.to_public()) in letter.text


def test_erasure_needs_the_typed_phrase(client: TestClient, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    login(client, "omar")
    token = csrf_of(client, "/rights")
    rid = _file(client, token, "erasure", "CHILD-ERASE-1")
    preview = client.post(f"/rights/{rid}/execute", data={"csrf_token": token})
    assert preview.status_code == 200 and f"erase {rid}" in preview.text
    wrong = client.post(f"/rights/{rid}/execute", data={"csrf_token": token,
                                                         "confirmed": "yes", "phrase": "yes"})
    assert wrong.status_code == 400 and f"type &#39;erase {rid}&#39;" in wrong.text
    assert "received" in client.get(f"/rights/{rid}").text  # not started


def test_a_paused_request_offers_resume_only_with_the_open_actions(client: TestClient, login,  # type: ignore[no-untyped-def]
                                                                   csrf_of) -> None:
    login(client, "omar")
    token = csrf_of(client, "/rights")
    rid = _file(client, token, "restriction", "CHILD-PAUSE-1")
    asked = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    assert client.post(f"/rights/{rid}/await-id", data={"csrf_token": token,
                                                         "date": asked}).status_code == 303
    page = client.get(f"/rights/{rid}").text
    assert "Information received" in page and "Start work" not in page
    assert "Execute the request" not in page and "Refuse with reason" in page
