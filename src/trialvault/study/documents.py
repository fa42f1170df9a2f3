"""Documents generated from the study file alone: privacy notice, Article 30 record, LIA.

Templates are Markdown (Jinja2, package data); HTML is the same Markdown rendered by
markdown-it with raw HTML disabled, so text from a study file can never inject markup.
"""

from __future__ import annotations

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
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve"]


def _join_and(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.study").joinpath("templates", name).read_text(
            encoding="utf-8"
        )
    )
    # Markdown output is not HTML; escaping happens when the Markdown is rendered to HTML.
    env = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(join_and=_join_and, number_word=_number_word, lower_first=_lower_first)
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
    )
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
