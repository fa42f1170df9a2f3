"""The report stage: the release's HTML report with embedded figures.

`render_report(release, study, meta, notice_href=...) -> str` turns a disclosure-checked release
(`trialvault.disclose.CheckedRelease`) and the study file into one self-contained, printable
HTML page. It reads nothing else: every number shown has passed disclosure control.
"""

from trialvault.report.render import render_report

__all__ = ["render_report"]
