"""The two reports of a release, for people.

- The **checking report** (`render_markdown`, `render_html`) is for the output checkers and
  stays inside the vault (`release show`, the console): every output with its status, each
  rule applied, every suppressed or withheld cell with its true value, rule and reason, which
  quantity a secondary suppression protects, the audit's feasible ranges and the comparison
  with earlier releases (in the spirit of ACRO's results and OpenSAFELY Airlock).
- The **disclosure-control note** (`render_public_markdown`, `render_public_html`) leaves with
  the release: the rules in words, which outputs are published or withheld, "c = suppressed",
  who approved. It says nothing about any single cell.
"""

from __future__ import annotations

from typing import Any

import jinja2
import msgspec
from markdown_it import MarkdownIt

from trialvault.disclose.outputs import CheckedRelease
from trialvault.disclose.rules import (
    ACROSS,
    ALL_SAME,
    DOMINANCE,
    MIN_CLUSTERS,
    NONZERO,
    P_RATIO,
    RESIDUAL_DOF,
    ROUNDING,
    SECONDARY,
    THRESHOLD,
    ZERO,
    describe,
)
from trialvault.study.model import Disclosure

_INTERNAL = """\
# Checking report: release {{ meta.release_id }} (stays in the vault)

- Study: `{{ release.study_id }}`; evaluation run `{{ meta.run_id }}`; study file SHA-256 \
`{{ release.provenance.get("study_sha256", "?") }}`
- Data origin (package manifests): **{{ release.data_origin }}**
- Requested by **{{ meta.requested_by }}** at {{ meta.requested_at }}\
{{ (': "' ~ meta.note ~ '"') if meta.note else "" }}
- Release status: **{{ meta.status }}** ({{ meta.reviews | selectattr("decision", "equalto", \
"approve") | list | length }} of {{ meta.required }} approvals); disclosure status: \
**{{ release.status }}**
{% for r in meta.reviews %}
- review by **{{ r.reviewer }}** ({{ r.decision }}) at {{ r.reviewed_at }}: "{{ r.comment }}"
{% endfor %}
{% if verification is not none %}
- Signatures: {{ "all verify" if not verification.problems else "PROBLEMS: " ~ \
(verification.problems | join("; ")) }}
{% endif %}

## Rules (from the study file stored with the run)

{% for k, v in release.rules.items() %}
- `{{ k }}` = {{ v }}
{% endfor %}

## Outputs

| Output | Status | Suppressed | Withheld |
|---|---|---|---|
{% for name, r in release.reviews.items() %}
| `{{ name }}` | {{ r.status }} | {{ r.suppressed | length }} | \
{{ "yes" if r.status == "fail" else "no" }} |
{% endfor %}
{% for name, r in release.reviews.items() %}

### `{{ name }}` ({{ r.status }})

Rules applied:

{% for rule in r.rules %}
- `{{ rule.code }}` ({{ rule.status }}, {{ rule.cells }} cell(s)): {{ rule.description }}
{% endfor %}
{% if r.audit %}

Audit: {{ summary(r.audit) }}
{% endif %}
{% if r.suppressed %}

| Row | Column | True value | Shown | Rule | Why | Protects |
|---|---|---|---|---|---|---|
{% for c in r.suppressed %}
| {{ c.row }} | {{ c.column }} | {{ c.value }} | {{ c.shown }} | `{{ c.rule }}` | \
{{ c.reason }} | {{ c.protects }} |
{% endfor %}
{% endif %}
{% endfor %}
{% if release.across %}

## Against earlier releases of the study

{% for a in release.across %}
- release {{ a.release_id }} (intruder model: {{ a.intruder_model }}): {{ a.quantities }} \
quantities, all protected: **{{ "yes" if a.all_protected else "NO" }}**, narrowest range \
{{ a.narrowest_range }}{% for u in a.unprotected %}; NOT protected: {{ u.label }} \
[{{ u.low }}, {{ u.high }}]{% endfor %}
{% endfor %}
{% endif %}
"""

_PUBLIC = """\
# Disclosure control: release {{ meta.release_id }}

{% if release.data_origin != "real" %}
**SYNTHETIC DATA — not results of the trial.**{{ unknown_note if release.data_origin == \
"unknown" else "" }}
{{ "" }}
{% endif %}
- Study: `{{ release.study_id }}`; evaluation run `{{ meta.run_id }}`; study file SHA-256 \
`{{ release.provenance.get("study_sha256", "?") }}`
- Requested by **{{ meta.requested_by }}** at {{ meta.requested_at }}
{% for a in meta.approvals %}
- Approved by **{{ a.reviewer }}** at {{ a.reviewed_at }} (signed)
{% endfor %}

Every number in this release passed statistical disclosure control under the rules of the
study file in force for the evaluation run, and {{ meta.approvals | length }} output checkers
other than the requester approved it. **"{{ release.rules.suppression_symbol }}" means
suppressed.** Nothing is said about why a particular value is suppressed.

## Rules

{% for text in rules %}
- {{ text }}
{% endfor %}

## Outputs

{% for o in release.outputs %}
- `{{ o.name }}`: {{ o.title }}{{ " — withheld (failed its checks)" if o.withheld else "" }}
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


def public_rules(rules: Disclosure) -> list[str]:
    """The release's rules in words (no cell is named)."""
    return [describe(code, rules).capitalize() + "." for code in (
        THRESHOLD, ZERO, SECONDARY, ROUNDING, DOMINANCE, P_RATIO, ALL_SAME, NONZERO,
        RESIDUAL_DOF, MIN_CLUSTERS, ACROSS)]


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["summary"] = _audit_summary
    return env


def _audit_summary(audit: list[dict[str, Any]]) -> str:
    widths = [f["high"] - f["low"] for f in audit if f.get("high") is not None]
    protected = all(f["protected"] for f in audit)
    return (f"{len(audit)} quantities (unsafe counts and suppressed cells) checked against "
            f"every published cell; all protected: **{'yes' if protected else 'NO'}**; "
            f"narrowest feasible range {min(widths) if widths else 'unbounded'}.")


def render_markdown(release: CheckedRelease, meta: dict[str, Any],
                    verification: Any = None) -> str:
    """The reviewers' checking report as Markdown (stays in the vault)."""
    return _env().from_string(_INTERNAL).render(release=release, meta=meta,
                                                verification=verification)


def _page(markdown: str, title: str) -> str:
    # Markdown rendered with raw HTML off, so no text from a study file or a comment can
    # inject markup.
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_PAGE).render(title=title, body=jinja2.utils.markupsafe.Markup(body))


def render_html(release: CheckedRelease, meta: dict[str, Any], verification: Any = None
                ) -> str:
    return _page(render_markdown(release, meta, verification),
                 f"Checking report {meta['release_id']}")


def render_public_markdown(release: CheckedRelease, meta: dict[str, Any]) -> str:
    """The note that leaves with the release: rules in words, outputs, approvals."""
    rules = msgspec.convert(release.rules, Disclosure)
    return _env().from_string(_PUBLIC).render(
        release=release, meta=meta, rules=public_rules(rules),
        unknown_note=" (The data's origin is not recorded in the packages; a release is "
                     "presented as trial results only when every package declares real data.)")


def render_public_html(release: CheckedRelease, meta: dict[str, Any]) -> str:
    return _page(render_public_markdown(release, meta),
                 f"Disclosure control {meta['release_id']}")


def outputs_markdown(release: CheckedRelease) -> str:
    """Every output as it would be released (the published text of each cell, "c" where
    suppressed; a withheld output by name only): what `release show` adds below a report, so
    reviewers and the requester read the values that would leave."""
    symbol = release.rules.get("suppression_symbol", "c")
    lines = ["## Outputs as released", "",
             f'"{symbol}" = suppressed. Withheld outputs are not released at all.', ""]
    for o in release.outputs:
        lines += [f"### `{o.name}`: {_cell(o.title)}", ""]
        if o.withheld:
            lines += ["Withheld (failed its checks): not released.", ""]
            continue
        if o.context:
            lines += [_cell(o.context), ""]
        table = o.table
        head = [str(table.index.name or ""), *(str(c) for c in table.columns)]
        lines.append("| " + " | ".join(_cell(h) for h in head) + " |")
        lines.append("|" + "---|" * len(head))
        for index, row in zip(table.index, table.itertuples(index=False), strict=True):
            lines.append("| " + " | ".join(_cell(str(v)) for v in (index, *row)) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    # A table cell or heading on one line; a pipe would end the cell.
    return " ".join(str(text).split()).replace("|", "\\|")
