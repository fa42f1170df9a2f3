"""`trialvault demo`: the whole walk on synthetic data, into a fresh folder.

documents → synth (the five LAs' statutory files, with planted effects and faults) → vault
init (five users: every role, two output checkers) → each LA's signing key → prepare, seal and sign per LA →
ingest → one rights request of each type → evaluate → release request → signed reviews by two
output checkers → write the release (report).

Everything uses data the project generates; no real data is involved. The demo vault's
passwords are random and written to `demo-credentials.txt` beside it so a newcomer can open the
console on it — acceptable for synthetic data only, never for a real vault.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trialvault.cli_common import StudyOption, console, guarded
from trialvault.errors import PolicyRefusal
from trialvault.study import StudyFile, load_study
from trialvault.study.documents import render
from trialvault.trust import KdfParams

if TYPE_CHECKING:
    from trialvault.seal import LaPublicKey, LaSigningKey

# Who does what in the demo: one user per role, as the two-person rule needs.
# Two output checkers: the study asks for two approvals besides the requester's.
DEMO_USERS = {"dana": "data-manager", "ana": "analyst", "oli": "output-checker",
              "ola": "output-checker", "dpo": "dpo"}
# True effects planted for the demo (absolute risk differences / rate ratios, see docs).
DEMO_EFFECTS = {"entered_care_12m": -0.04, "residential_placement_12m": -0.01,
                "unauthorised_absence_rate": 0.9, "missing_episodes_12m": 0.8}
DEMO_SEED = 20201918


@dataclass
class DemoRun:
    """What the demo made: the folder, named artefacts, and one line per stage."""

    folder: Path
    artefacts: dict[str, Path] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    la_public_keys: dict[int, LaPublicKey] = field(default_factory=dict)


def fresh_folder(parent: Path, now: dt.datetime) -> Path:
    folder = parent / f"demo-{now:%Y%m%d-%H%M%S}"
    n = 1
    while folder.exists():
        n += 1
        folder = parent / f"demo-{now:%Y%m%d-%H%M%S}-{n}"
    return folder


def write_documents(study: StudyFile, folder: Path) -> dict[str, Path]:
    docs_dir = folder / "documents"
    docs_dir.mkdir(parents=True)
    made: dict[str, Path] = {}
    for kind in ("notice", "ropa", "lia"):
        for fmt in ("md", "html"):
            path = docs_dir / f"{kind}.{fmt}"
            path.write_text(render(study, kind, fmt), encoding="utf-8")
            made[f"{kind}.{fmt}"] = path
    return made


def _la_inputs(la_dir: Path) -> dict[str, object]:
    return {"ssda903": la_dir / "ssda903",
            "cin": sorted((la_dir / "cin_census").glob("*.xml")),
            "education": la_dir / "education.csv", "neet": la_dir / "neet.csv"}


def _children_for_requests(study: StudyFile, vault: Path, user: str, password: str,
                           la_code: int, n: int) -> list[str]:
    """Child codes the LA would name in requests: the demo plays the LA, which knows them.

    Picks children who are in the vault but not in the evaluation cohort's first rows, read
    inside an audited session; the codes are passed on, never printed.
    """
    from trialvault.vault import open_vault

    with open_vault(vault, user, password, command="demo pick children",
                    args={"la": la_code, "n": n}, write=False) as session:
        rows = session.con.execute(
            "SELECT child_id FROM harmonised.children WHERE la_code = ? "
            "ORDER BY hash(child_id) LIMIT ?", [la_code, n]).fetchall()
    return [str(r[0]) for r in rows]


def make_la_keys(la_codes: Sequence[int], folder: Path, credentials: Path, *,
                 kdf_params: KdfParams | None = None) -> dict[int, LaSigningKey]:
    """Each LA's signing key, as `la keygen` makes it (a key file under a passphrase); the
    passphrases go to the demo credentials file (synthetic demo only). The keys stay unlocked
    in memory to sign the packages."""
    from trialvault.seal import LaSigningKey, write_key_file

    folder.mkdir(parents=True)
    keys: dict[int, LaSigningKey] = {}
    lines = []
    for la_code in la_codes:
        keys[la_code] = LaSigningKey.generate(la_code)
        passphrase = secrets.token_urlsafe(16)
        write_key_file(folder / f"la-{la_code}.key", keys[la_code], passphrase,
                       **({"kdf": kdf_params} if kdf_params else {}))
        lines.append(f"la-{la_code}.key\tLA signing key\t{passphrase}\n")
    with credentials.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
    return keys


def run_demo(study: StudyFile, folder: Path, *, scale: float = 0.5, seed: int = DEMO_SEED,
             say: Callable[[str], None] = lambda _: None,
             kdf_params: KdfParams | None = None) -> DemoRun:
    """Run the pipeline's stages in order into `folder` (which must not exist yet).

    `kdf_params` is for tests only (a cheaper Argon2id); the command uses the default.
    """
    from trialvault.disclose.release import request_release, review_release, write_release
    from trialvault.evaluate.run import evaluate_vault
    from trialvault.prepare.pipeline import prepare_la
    from trialvault.rights.demo import demo_requests
    from trialvault.synth import generate_files
    from trialvault.vault.admin import add_user, init_vault
    from trialvault.vault.ingest import ingest_packages

    if folder.exists():
        raise PolicyRefusal(f"{folder} already exists: the demo writes only into a fresh folder")
    folder.mkdir(parents=True)
    run = DemoRun(folder)

    def step(text: str) -> None:
        run.steps.append(text)
        say(text)

    run.artefacts.update(write_documents(study, folder))
    step("documents: privacy notice, Article 30 record and LIA (md + html)")

    la_data = folder / "la-side" / "returns"
    summary = generate_files(study, la_data, seed=seed, scale=scale, effects=DEMO_EFFECTS,
                             error_rate=0.002)
    run.artefacts["truth.json"] = la_data / "truth.json"
    step(f"synth: {summary.children:,} children, {summary.rows:,} rows in "
         f"{len(summary.la_codes)} LAs, {summary.faults} planted faults")

    passwords = {user: secrets.token_urlsafe(12) for user in DEMO_USERS}
    vault = folder / "vault"
    recipient = init_vault(vault, "dana", passwords["dana"], study_id=study.study.id,
                           kdf_params=kdf_params)
    for user, role in DEMO_USERS.items():
        if user != "dana":
            add_user(vault, "dana", passwords["dana"], user, passwords[user], role,
                     kdf_params=kdf_params)
    credentials = folder / "demo-credentials.txt"
    credentials.write_text(
        "SYNTHETIC DEMO VAULT ONLY - never keep passwords in a file for a real vault.\n"
        + "".join(f"{u}\t{DEMO_USERS[u]}\t{p}\n" for u, p in passwords.items()),
        encoding="utf-8")
    credentials.chmod(0o600)
    run.artefacts["demo-credentials.txt"] = credentials
    step(f"vault: initialised with {len(DEMO_USERS)} users (every role; two output checkers)")

    la_keys = make_la_keys(summary.la_codes, folder / "la-side" / "keys", credentials,
                           kdf_params=kdf_params)
    run.la_public_keys = {la: key.public for la, key in la_keys.items()}
    step(f"LA keys: {len(la_keys)} signing keys made at the LAs (public keys to the evaluator)")

    packages = []
    (folder / "packages").mkdir()
    for la_code in summary.la_codes:
        inputs = _la_inputs(la_data / str(la_code))
        result = prepare_la(study, la_code, recipient=recipient,
                            out=folder / "packages" / f"la-{la_code}.tvpkg",
                            report_dir=folder / "la-side" / "reports" / str(la_code),
                            sign_key=la_keys[la_code],
                            **inputs)  # type: ignore[arg-type]
        if result.package is None:
            raise PolicyRefusal(f"prepare wrote no package for LA {la_code}")
        packages.append(result.package)
        rate = result.linkage.rate
        step(f"prepare LA {la_code}: {sum(result.tables.values()):,} rows sealed, "
             f"{result.rows_rejected} rejected, education/NEET linkage "
             f"{'n/a' if rate is None else f'{rate:.1%}'}")

    from trialvault.vault.la_keys import trust_la_key

    for la_code, key in la_keys.items():  # after checking each fingerprint with the LA
        trust_la_key(vault, "dana", passwords["dana"], la_code, key.public.line(), study=study)
    step(f"LA keys: {len(la_keys)} public keys registered in the vault (`la trust`)")
    report = ingest_packages(vault, "dana", passwords["dana"], packages, study=study)
    step(f"ingest: {len(report.ingested)} packages, "
         f"{sum(report.harmonised_rows.values()):,} harmonised rows")

    la_code = summary.la_codes[0]
    children = _children_for_requests(study, vault, "dpo", passwords["dpo"], la_code, 5)
    requests = demo_requests(vault, "dpo", passwords["dpo"], study, la_code, children,
                             recipient, folder / "rights")
    for r in requests:
        for f in r.files:
            run.artefacts[f.name] = f
    step("rights: " + ", ".join(f"{r.type} → {r.state}" for r in requests))

    results = evaluate_vault(vault, "ana", passwords["ana"], study)
    step(f"evaluate: cohort {results.cohort_size:,}, excluded {results.excluded_children}")

    # The rules are those of the study file stored with the evaluation run.
    release_id = request_release(vault, "ana", passwords["ana"],
                                 note="Demo: primary and secondary results")
    for checker in ("oli", "ola"):
        review_release(vault, checker, passwords[checker], release_id, "approve",
                       "Checked every table against the checking report; safe to release.")
    report_path = write_release(vault, "ana", passwords["ana"], release_id,
                                folder / "release")
    run.artefacts["report.html"] = report_path
    step(f"release {release_id}: requested by ana, approved (signed) by oli and ola, "
         "signatures verified, written")
    return run


@guarded
def demo(
    study: StudyOption,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to create (must not exist). "
                                             "Default: ./demo-<timestamp>")] = None,
    scale: Annotated[float, typer.Option("--scale", help="Synthetic volume (1 = the five LAs' "
                                         "real size)")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data")] = DEMO_SEED,
) -> None:
    """Run every stage on synthetic data into a fresh folder and say where the report is.

    Example: trialvault demo
    """
    folder = out or fresh_folder(Path.cwd(), dt.datetime.now())
    with console.status("running the demo…"):
        run = run_demo(load_study(study), folder, scale=scale, seed=seed,
                       say=lambda line: console.print(f"[green]✓[/] {line}"))
    console.print(f"[bold green]demo finished[/] in {run.folder}")
    console.print(f"  report:      {run.artefacts['report.html']}")
    console.print(f"  notice:      {run.artefacts['notice.html']}")
    console.print(f"  credentials: {run.artefacts['demo-credentials.txt']} "
                  f"(try: trialvault console --vault {run.folder / 'vault'})")


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command("demo")(demo)
