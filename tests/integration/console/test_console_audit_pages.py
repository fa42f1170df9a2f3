"""The console's audit page: filters (user, command, result, dates, text), pages of 50 with
links that keep the filter, and times to the second."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>")[-1].split("</tbody>")[0]
    return re.findall(r"<tr><td>(\d+)</td>", body)


def test_filters_pages_and_readable_times(client: TestClient, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    # Page views write no entries (login and logout bracket a session): sign in and out to
    # fill more than a page. Each is a session of its own: a begin and an end entry.
    for _ in range(16):
        login(client, "dana")
        assert client.post("/logout", data={"csrf_token": csrf_of(client, "/audit")}
                           ).status_code == 303
    login(client, "dana")
    first = client.get("/audit").text
    total = int(re.search(r"of (\d+) entries match", first).group(1))  # type: ignore[union-attr]
    assert total > 60 and len(_rows(first)) == 50 and "older →" in first
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", first)  # no microseconds
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1)  # type: ignore[union-attr]
    second = client.get(older.replace("&amp;", "&")).text
    assert "← newer" in second and not set(_rows(first)) & set(_rows(second))

    only_adds = client.get("/audit?command=users+add").text
    assert "users add" in only_adds and "console login" not in only_adds.split("<tbody>")[-1]
    assert len(_rows(only_adds)) >= 4
    by_omar = client.get("/audit?user=omar").text
    assert len(_rows(by_omar)) == 0
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert len(_rows(client.get(f"/audit?since={tomorrow}").text)) == 0
    kept = client.get("/audit?q=console+log&page=1").text  # login and logout: 66 entries
    assert re.search(r"q=console\+log&amp;upto=\d+&amp;page=2", kept)  # filter kept
    assert len(_rows(client.get("/audit?result=error").text)) == 0
