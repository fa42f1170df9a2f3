"""The console's audit page: filters (user, command, result, dates, text), pages of 50 with
links that keep the filter, and times to the second."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>")[-1].split("</tbody>")[0]
    return re.findall(r"<tr><td>(\d+)</td>", body)


def test_filters_pages_and_readable_times(client: TestClient, login) -> None:  # type: ignore[no-untyped-def]
    login(client, "dana")
    for _ in range(30):  # each view of the page is a session: two entries
        assert client.get("/audit").status_code == 200
    first = client.get("/audit").text
    total = int(re.search(r"of (\d+) entries match", first).group(1))  # type: ignore[union-attr]
    assert total > 60 and len(_rows(first)) == 50 and "older →" in first
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", first)  # no microseconds
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1)  # type: ignore[union-attr]
    second = client.get(older.replace("&amp;", "&")).text
    assert "← newer" in second and not set(_rows(first)) & set(_rows(second))

    only_adds = client.get("/audit?command=users+add").text
    assert "users add" in only_adds and "console audit" not in only_adds.split("<tbody>")[-1]
    assert len(_rows(only_adds)) >= 4
    by_omar = client.get("/audit?user=omar").text
    assert len(_rows(by_omar)) == 0
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert len(_rows(client.get(f"/audit?since={tomorrow}").text)) == 0
    kept = client.get("/audit?command=console+audit&page=1").text
    assert re.search(r"command=console\+audit&amp;upto=\d+&amp;page=2", kept)  # filter kept
    assert len(_rows(client.get("/audit?result=error").text)) == 0
