"""Documents generated from the study file alone: privacy notice, Article 30 record, LIA.

Templates are Markdown (Jinja2, package data); HTML is the same Markdown rendered by
markdown-it with raw HTML disabled, so text from a study file can never inject markup.

Each document carries every section the ICO's templates ask for (`REQUIRED_SECTIONS`, a test
checks each is present and filled). Every fact comes from a study-file key; a missing or empty
key is refused when the study file is loaded, naming the key.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Literal

import jinja2
from markdown_it import MarkdownIt

from trialvault import __version__
from trialvault.study.model import Category, StudyFile

DocumentKind = Literal["notice", "ropa", "lia"]
DocumentFormat = Literal["md", "html"]

TITLES: dict[str, str] = {
    "notice": "Privacy notice",
    "ropa": "Record of processing activities (Article 30)",
    "lia": "Legitimate interest assessment",
}
# The sections (Markdown headings) each document must have, with the ICO source they answer to.
REQUIRED_SECTIONS: dict[str, dict[str, str]] = {
    # ICO, "The right to be informed" checklist: what to provide when data are obtained from
    # a source other than the individual (the statutory-obligation item applies only to direct
    # collection; the consent item only to consent).
    "notice": {
        "Our contact details": "name and contact details of the controller and of the DPO",
        "About this notice": "dates written and updated, version, review date, owner",
        "The type of personal information we collect": "categories of personal data",
        "How we get the personal information and why we have it":
            "source; purposes; lawful basis; legitimate interests",
        "Special category data": "Article 9 and Schedule 1 conditions",
        "Who we share your information with": "recipients or categories of recipients",
        "Transfers outside the UK": "transfers to third countries or international organisations",
        "Automated decision-making and profiling":
            "existence of automated decision-making, including profiling",
        "How we store your personal information": "security",
        "How long we keep your personal information": "retention periods",
        "Your data protection rights": "rights available",
        "How to complain": "right to lodge a complaint with the ICO",
    },
    # UK GDPR Article 30(1) and the ICO's documentation template for controllers (privacy
    # notice, special category, DPIA and location columns).
    "ropa": {
        "Document control": "owner, version, date, review date",
        "Controller and Data Protection Officer": "Art. 30(1)(a) controller, joint controller, DPO",
        "Purposes of the processing": "Art. 30(1)(b)",
        "Lawful basis": "Article 6 basis, link to the LIA, Article 9 and Schedule 1 conditions",
        "Categories of data subjects": "Art. 30(1)(c), including whether children",
        "Categories of personal data": "Art. 30(1)(c)",
        "Source": "source of the personal data",
        "Recipients": "Art. 30(1)(d), processors",
        "International transfers and safeguards": "Art. 30(1)(e)",
        "Retention": "Art. 30(1)(f) time limits for erasure",
        "Technical and organisational security measures": "Art. 30(1)(g)",
        "Location of the personal data": "ICO template: location",
        "Data subject rights supported": "ICO template: rights available",
        "Automated decision-making and profiling": "ICO template: automated decision-making",
        "Special category data: appropriate policy document":
            "DPA 2018 Sch. 1 Part 4 policy document; retention per policy",
        "Data protection impact assessment": "ICO template: DPIA",
    },
    # ICO legitimate interests assessment template: purpose, necessity, balancing (nature of the
    # data, reasonable expectations, likely impact, safeguards, opt-out), and the decision;
    # Art. 6(1)(f): "in particular where the data subject is a child".
    "lia": {
        "Assessment details": "owner, version, date, review date, data subjects",
        "1. Purpose test: are you pursuing a legitimate interest?": "purpose test",
        "2. Necessity test: is the processing necessary for that purpose?": "necessity test",
        "3. Balancing test: do the individual's interests override the legitimate interest?":
            "balancing test",
        "Nature of the personal data": "special category and sensitive data",
        "Reasonable expectations and likely impact": "expectations, impact",
        "Children as data subjects": "children's interests weighed",
        "Automated decisions": "impact: decisions about individuals",
        "Safeguards": "safeguards",
        "Opt-out": "can you offer an opt-out?",
        "Outcome": "decision, owner, review",
    },
}
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve"]


def _join_and(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _uk_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.study").joinpath("templates", name).read_text(
            encoding="utf-8"
        )
    )
    # Markdown output is not HTML; escaping happens when the Markdown is rendered to HTML.
    env = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(join_and=_join_and, number_word=_number_word, lower_first=_lower_first,
                       uk_date=_uk_date)
    return env


def render(study: StudyFile, kind: DocumentKind, fmt: DocumentFormat = "md") -> str:
    """Render one document of the study as Markdown or as a printable HTML page."""
    if kind not in TITLES:
        raise ValueError(f"unknown document {kind!r}; choose from {sorted(TITLES)}")
    env = _environment()
    special = study.special_fields

    def special_in(category: Category) -> str:
        hits = [f for f in category.fields if f in special]
        return ", ".join(hits) if hits else "No"

    markdown = env.get_template(f"{kind}.md.j2").render(
        study=study,
        special_titles=list(study.special_category.fields),
        special_in=special_in,
        deletion_window=study.retention.deletion_window,
        objection_right=next((r for r in study.rights.rights if r.id == "objection"), None),
    )
    if kind == "notice" and (study.design.power or study.design.randomisation):
        # The design section (issue 18): power statement and randomisation method, computed
        # by the design stage from the same study-file numbers `trialvault design power` uses.
        from trialvault.design.statement import design_statement

        markdown += env.get_template("design.md.j2").render(study=study,
                                                            design=design_statement(study))
    if fmt == "md":
        return markdown
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    html_env = jinja2.Environment(loader=env.loader, autoescape=True)
    return html_env.get_template("page.html.j2").render(
        title=f"{TITLES[kind]}: {study.study.title}",
        body=jinja2.utils.markupsafe.Markup(body),
        version=__version__,
        study_id=study.study.id,
        spec_version=study.study.spec_version,
    )
