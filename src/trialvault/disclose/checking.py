"""The checking report of a release, for people: Markdown, and the same as a printable page.

The JSON form is `CheckedRelease.to_json()` plus the request and its reviews; this module writes
what an output checker reads (in the spirit of ACRO's results and OpenSAFELY Airlock's file
groups): every output with its status, context, each rule applied and each cell changed and why.
Rounded cells are counted per output (listing every one would bury the suppressions); the JSON
lists each of them.
"""

from __future__ import annotations

from typing import Any

import jinja2
from markdown_it import MarkdownIt

from trialvault.disclose.outputs import CheckedOutput, CheckedRelease

_MD = """\
# Checking report: release {{ meta.release_id }}

- Study: `{{ release.study_id }}`; evaluation run `{{ meta.run_id }}`
- Requested by **{{ meta.requested_by }}** at {{ meta.requested_at }}\
{{ (': "' ~ meta.note ~ '"') if meta.note else "" }}
- Release status: **{{ meta.status }}**; disclosure status: **{{ release.status }}**
{% for r in meta.reviews %}
- review by **{{ r.reviewer }}** ({{ r.decision }}) at {{ r.reviewed_at }}: "{{ r.comment }}"
{% endfor %}

## Rules (from the study file)

{% for k, v in release.rules.items() %}
- `{{ k }}` = {{ v }}
{% endfor %}

## Outputs

| Output | Kind | Status | Suppressed | Rounded | Withheld |
|---|---|---|---|---|---|
{% for o in release.outputs %}
| `{{ o.name }}` | {{ o.kind }} | {{ o.status }} | {{ counts[o.name].suppressed }} | \
{{ counts[o.name].rounded }} | {{ "yes" if o.withheld else "no" }} |
{% endfor %}
{% for o in release.outputs %}

### `{{ o.name }}`: {{ o.title }} ({{ o.status }})

{{ o.context }}

Rules applied:

{% for r in o.rules %}
- `{{ r.code }}` ({{ r.status }}, {{ r.cells }} cell(s)): {{ r.description }}
{% endfor %}
{% if o.audit %}

Audit: {{ o.audit.quantities }} unsafe quantities and suppressed cells checked against every \
linked table; all protected: **{{ "yes" if o.audit.all_protected else "NO" }}**\
{{ ("; narrowest feasible range " ~ (o.audit.narrowest_range | int))
   if o.audit.narrowest_range is not none else "" }}.
{% endif %}
{% set changed = o.changes | rejectattr("action", "equalto", "rounded") | list %}
{% if changed %}

Cells changed (besides rounding):

| Row | Column | Action | Rule | Why |
|---|---|---|---|---|
{% for c in changed %}
| {{ c.row }} | {{ c.column }} | {{ c.action }} | `{{ c.rule }}` | {{ c.reason }} |
{% endfor %}
{% endif %}
{% endfor %}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #bbb;
padding:.2rem .5rem;font-size:.9rem;text-align:left}th{background:#eee}
code{background:#f3f3f3;padding:0 .2rem}h3{margin-top:2rem;border-top:1px solid #ddd;
padding-top:1rem}
</style></head><body>{{ body }}</body></html>
"""


def _counts(out: CheckedOutput) -> dict[str, int]:
    return {"suppressed": sum(c.action == "suppressed" for c in out.changes),
            "rounded": sum(c.action == "rounded" for c in out.changes)}


def render_markdown(release: CheckedRelease, meta: dict[str, Any]) -> str:
    """The checking report as Markdown. `meta`: release_id, run_id, requested_by,
    requested_at, status, note, reviews (reviewer, decision, comment, reviewed_at)."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_MD).render(
        release=release, meta=meta, counts={o.name: _counts(o) for o in release.outputs})


def render_html(release: CheckedRelease, meta: dict[str, Any]) -> str:
    """The checking report as one printable page (Markdown rendered with raw HTML off, so no
    text from a study file or a comment can inject markup)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(
        render_markdown(release, meta))
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_PAGE).render(title=f"Checking report {meta['release_id']}",
                                         body=jinja2.utils.markupsafe.Markup(body))
