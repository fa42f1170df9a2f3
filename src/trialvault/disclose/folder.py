"""The release folder: only public outputs, written all or nothing, with a manifest.

What leaves: the HTML report, the privacy notice, each published table as CSV, and the
disclosure-control note (the rules in words, the outputs, "c = suppressed", who approved).
The reviewers' checking report — per-cell reasons, true values, which cell protects which —
stays in the vault.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialvault.disclose.outputs import CheckedRelease
from trialvault.errors import PolicyRefusal
from trialvault.study.model import StudyFile

if TYPE_CHECKING:
    from trialvault.disclose.release import ReleaseRecord


def release_files(record: ReleaseRecord, checked: CheckedRelease, study: StudyFile,
                  approvals: list[dict[str, Any]]) -> dict[str, bytes]:
    """Every file of the release folder except the manifest, by relative path."""
    from trialvault.disclose.checking import render_public_html, render_public_markdown
    from trialvault.report import render_report
    from trialvault.study.documents import render

    meta = {**record.meta(), "approvals": [{"reviewer": a["reviewer"],
                                            "reviewed_at": a["reviewed_at"]}
                                           for a in approvals]}
    files: dict[str, bytes] = {}
    files["report.html"] = render_report(checked, study, meta, notice_href="privacy-notice.html"
                                         ).encode("utf-8")
    files["privacy-notice.html"] = render(study, "notice", "html").encode("utf-8")
    for out in checked.outputs:
        if out.withheld:
            continue
        files[f"tables/{out.name}.csv"] = out.table.to_csv(lineterminator="\n").encode("utf-8")
    files["disclosure-control.md"] = render_public_markdown(checked, meta).encode("utf-8")
    files["disclosure-control.html"] = render_public_html(checked, meta).encode("utf-8")
    return files


def write_folder(out_dir: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> bytes:
    """Write `files` and `manifest.json` into a new folder, all or nothing. Returns the
    manifest's bytes."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PolicyRefusal(f"{out_dir} exists and is not empty: a release goes to a new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        entries = []
        for rel, data in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            entries.append({"path": rel, "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
        body = json.dumps({**manifest, "files": entries}, indent=2, sort_keys=True).encode()
        (staging / "manifest.json").write_bytes(body)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return body
