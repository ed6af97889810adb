"""The ``licence-hub`` command line (DESIGN.md §7): init, serve, demo, worker, beat, admin."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.errors import DomainError
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="licence-hub: 政务数据共享与电子证照交换中心")
admin_app = typer.Typer(no_args_is_help=True, help="Departments, API clients and hub keys.")
app.add_typer(admin_app, name="admin")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: checkpoints, export and offline verification.")
app.add_typer(audit_app, name="audit")
licences_app = typer.Typer(no_args_is_help=True, help="E-licences (电子证照): batch import.")
app.add_typer(licences_app, name="licences")
console = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _runtime() -> Any:
    from hub.runtime import get_runtime  # noqa: PLC0415 - keep `--help` fast

    return get_runtime()


def _emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=title, show_header=False)
    for key, value in data.items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    Console().print(table)


def _fail(error: DomainError) -> None:
    # Escaped: rich would otherwise read "[invalid_uscc]" as a style tag and drop the code.
    console.print(f"[red]error[/red] {escape(f'[{error.code}] {error.detail}')}")
    raise typer.Exit(2)


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Create the data directory, master key (0600), database schema and signing keys. Idempotent."""
    from hub.bootstrap import initialise  # noqa: PLC0415

    _emit(initialise(_runtime()), as_json, "licence-hub initialised")


def _serve(host: str, port: int, workers: int) -> None:
    import uvicorn  # noqa: PLC0415

    settings = Settings()
    if settings.is_eager and workers > 1:
        console.print("[yellow]embedded mode runs one worker (in-process jobs and scheduler)[/yellow]")
        workers = 1
    uvicorn.run(
        "hub.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes (distributed mode)")] = 1,
) -> None:
    """Run the HTTP API (initialises first, so a fresh directory just works)."""
    from hub.bootstrap import initialise  # noqa: PLC0415

    initialise(_runtime())
    _serve(host, port, workers)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    credentials: Annotated[Path | None, typer.Option(help="Also write the demo credentials here")] = None,
    seed_only: Annotated[bool, typer.Option(help="Seed and exit without serving")] = False,
) -> None:
    """Seed the fictional city of 临江市 once, print credentials and where to go, then serve."""
    from hub.bootstrap import initialise  # noqa: PLC0415
    from hub.demo import credentials_path, seed_demo  # noqa: PLC0415

    runtime = _runtime()
    initialise(runtime)
    data, created = seed_demo(runtime)
    if credentials is not None:
        shutil.copyfile(credentials_path(runtime), credentials)
        credentials.chmod(0o600)
    base = f"http://{host}:{port}"
    out = Console() if sys.stdout.isatty() else Console(width=200)  # logs and pipes: no wrapping
    out.print(f"[bold]licence-hub demo[/bold] — {'seeded now' if created else 'reusing existing state'}")
    table = Table("department", "code", "client_id", "client_secret", "scopes")
    for d in data["departments"]:
        table.add_row(d["name"], d["code"], d["client_id"], d.get("client_secret") or "-", d["scopes"])
    out.print(table)
    holders = Table("holder", "type", "code")
    for h in data["holders"]:
        holders.add_row(h["name"], h["type"], h["code"])
    out.print(holders)
    out.print(f"credentials file: {credentials_path(runtime)}")
    out.print(f"API docs:      {base}/docs")
    out.print(f"token:         curl -u CLIENT_ID:SECRET -d grant_type=client_credentials {base}/oauth/token")
    out.print(
        f'sign in:       curl -H \'content-type: application/json\' -d \'{{"holder_type":"111",'
        f'"holder_code":"<code>","name":"<name>"}}\' {base}/dev/idp/token'
    )
    if not seed_only:
        _serve(host, port, 1)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run a Celery worker (distributed mode: HUB_BROKER_URL=redis://...)."""
    from hub.jobs import celery_app  # noqa: PLC0415

    celery_app.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"])


@app.command()
def beat(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Run Celery beat for the periodic jobs (distributed mode)."""
    from hub.jobs import celery_app  # noqa: PLC0415

    celery_app.start(["beat", f"--loglevel={loglevel}", "--schedule=/tmp/licence-hub-beat-schedule"])


@admin_app.command("create-department")
def create_department(
    code: Annotated[str, typer.Option(help="Unified social credit code (GB 32100)")],
    name: Annotated[str, typer.Option(help="Department name, e.g. 临江市市场监督管理局")],
    level: Annotated[str, typer.Option(help="national|provincial|municipal|county|township")] = "municipal",
    area: Annotated[str, typer.Option(help="GB/T 2260 area code")] = "330100",
    as_json: JsonOpt = False,
) -> None:
    """Register a department."""
    from hub.identity import service as identity  # noqa: PLC0415

    try:
        with _runtime().session_scope() as session:
            d = identity.create_department(session, code=code, name=name, level=level, area_code=area)
            data = {"code": d.code, "name": d.name, "level": d.level, "area_code": d.area_code}
    except DomainError as exc:
        _fail(exc)
    _emit(data, as_json, "department created")


@admin_app.command("create-client")
def create_client(
    department: Annotated[str, typer.Option(help="Department USCC")],
    scopes: Annotated[str, typer.Option(help='Space-separated, e.g. "licence:issue licence:read"')],
    jwks: Annotated[Path | None, typer.Option(help="JWK set file: the client uses private_key_jwt")] = None,
    name: Annotated[str | None, typer.Option(help="Client name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an API client; a client_secret_basic secret is printed once and never again."""
    from hub.identity import service as identity  # noqa: PLC0415

    try:
        key_set = json.loads(jwks.read_text()) if jwks else None
    except (OSError, ValueError) as exc:
        console.print(f"[red]error[/red] cannot read the JWK set: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    try:
        with _runtime().session_scope() as session:
            client, secret = identity.create_client(
                session, department_code=department, scopes=scopes, jwks=key_set, name=name
            )
            data: dict[str, Any] = {
                "client_id": client.client_id,
                "scopes": client.scopes,
                "token_endpoint_auth_method": client.auth_method,
            }
            if secret is not None:
                data["client_secret"] = secret
    except DomainError as exc:
        _fail(exc)
    _emit(data, as_json, "client created")


@admin_app.command("rotate-key")
def rotate_key(
    purpose: Annotated[str, typer.Option(help="access-token | dev-idp")] = "access-token",
    as_json: JsonOpt = False,
) -> None:
    """Rotate a hub signing key; the old key stays published until its tokens have expired."""
    from hub.keys import service as keys  # noqa: PLC0415

    if purpose not in keys.ROTATABLE:
        console.print(f"[red]error[/red] purpose must be one of {', '.join(keys.ROTATABLE)}")
        raise typer.Exit(2)
    runtime = _runtime()
    with runtime.session_scope() as session:
        key = keys.rotate_key(session, runtime.master_keys, purpose)
        data = {"purpose": purpose, "kid": key.kid}
    _emit(data, as_json, "key rotated")


@admin_app.command("rewrap")
def rewrap(as_json: JsonOpt = False) -> None:
    """Re-encrypt everything under the current master key (the first in HUB_MASTER_KEY).

    Hub keys, seal keys and webhook secrets, in one transaction. Rotation without downtime: docs/operations.md.
    """
    from hub.keys.service import rewrap_keys  # noqa: PLC0415
    from hub.webhooks.service import rewrap_secrets  # noqa: PLC0415
    from seals.keystore import rewrap_software_keys  # noqa: PLC0415

    runtime = _runtime()
    try:
        with runtime.session_scope() as session:
            ring = runtime.master_keys
            counts = {
                "hub_keys": rewrap_keys(session, ring),
                "seal_keys": rewrap_software_keys(session, ring),
                "webhook_secrets": rewrap_secrets(session, ring),
            }
    except DomainError as exc:
        _fail(exc)
    _emit({"rewrapped": counts, "master_key_id": runtime.master_keys.current_id}, as_json, "rewrapped")


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: JsonOpt = False) -> None:
    """Integrate every committed entry now and publish signed checkpoints; print the latest."""
    from audit import tree  # noqa: PLC0415
    from hub.audited import integrate_pending  # noqa: PLC0415

    runtime = _runtime()
    published = 0
    try:
        published = integrate_pending(runtime)
    except DomainError as exc:
        _fail(exc)
    with runtime.session_scope() as session:
        latest = tree.latest_checkpoint(session)
        if latest is None:  # pragma: no cover - integrate always publishes the first checkpoint
            console.print("[red]error[/red] no checkpoint was published")
            raise typer.Exit(2)
        data: dict[str, Any] = {
            "origin": runtime.audit_signer.origin,
            "tree_size": latest.tree_size,
            "root_hash": base64.b64encode(latest.root_hash).decode(),
            "published": published,
            "signed_note": latest.signed_note,
        }
    _emit(data, as_json, "audit checkpoint")


@audit_app.command("redact")
def audit_redact(
    older_than_days: Annotated[int, typer.Option(min=1, help="Redact bodies of entries older than this")],
    as_json: JsonOpt = False,
) -> None:
    """Retention: drop bodies of old entries, keep their leaf hashes (the tree and every proof still verify)."""
    from datetime import timedelta  # noqa: PLC0415

    from audit import service as audit  # noqa: PLC0415
    from hub.clock import utcnow  # noqa: PLC0415

    now = utcnow()
    with _runtime().session_scope() as session:
        count = audit.redact(session, before=now - timedelta(days=older_than_days), now=now)
    _emit({"redacted": count, "older_than_days": older_than_days}, as_json, "audit entries redacted")


@audit_app.command("verifier-key")
def audit_verifier_key() -> None:
    """Print the note verifier key of audit checkpoints (publish it; auditors pass it to `audit verify --key`)."""
    from audit.note import Signer  # noqa: PLC0415

    signer = _runtime().audit_signer
    typer.echo(Signer(signer.origin, signer.private_key).verifier_key())


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="Write the JSON Lines export here")],
    checkpoint_out: Annotated[Path | None, typer.Option(help="Also write the signed checkpoint it ends at")] = None,
    tree_size: Annotated[
        int | None, typer.Option(help="Export up to this published checkpoint (default: the latest)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the log up to a checkpoint as JSON Lines, for `licence-hub audit verify` anywhere."""
    from audit import tree  # noqa: PLC0415
    from audit.export import export_log  # noqa: PLC0415

    try:
        with _runtime().session_scope() as session:
            found = tree.checkpoint_at(session, tree_size) if tree_size is not None else tree.latest_checkpoint(session)
            if found is None:
                console.print("[red]error[/red] no checkpoint yet: run `licence-hub audit checkpoint` first")
                raise typer.Exit(2)
            with out.open("w", encoding="utf-8", newline="\n") as fh:
                written = export_log(session, fh, upto=found.tree_size)
            if checkpoint_out is not None:
                checkpoint_out.write_text(found.signed_note, encoding="utf-8", newline="\n")
            size = found.tree_size
    except DomainError as exc:
        _fail(exc)
    if written != size:
        console.print(f"[yellow]warning[/yellow] the stored log holds {written} of {size} entries: it is damaged")
    data: dict[str, Any] = {"out": str(out), "tree_size": size, "entries": written}
    if checkpoint_out is not None:
        data["checkpoint_out"] = str(checkpoint_out)
    _emit(data, as_json, "audit log exported")


def _verifier_key_arg(key: str) -> str:
    """KEY is the verifier key itself or a file holding it."""
    path = Path(key)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a key longer than a file name may be
        is_file = False
    if not is_file:
        return key
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]error[/red] cannot read the key file: {escape(str(exc))}")
        raise typer.Exit(2) from exc


@audit_app.command("verify")
def audit_verify(
    export: Annotated[Path, typer.Option(help="JSON Lines export (`licence-hub audit export`)")],
    checkpoint: Annotated[list[Path], typer.Option(help="Signed checkpoint note; repeat for several")],
    key: Annotated[str, typer.Option(help="Note verifier key, or a file holding it")],
    as_json: JsonOpt = False,
) -> None:
    """Verify an export offline: entry hashes, Merkle roots, checkpoint signatures and consistency.

    Exit 0 when it verifies, 1 with the first bad entry and the reason when it does not. Needs no hub.
    """
    from audit.verify import AuditVerificationError, verify_export  # noqa: PLC0415 - offline: nothing else

    verifier_key = _verifier_key_arg(key)
    try:
        notes = [path.read_text(encoding="utf-8") for path in checkpoint]
        with export.open(encoding="utf-8", errors="replace") as fh:
            report = verify_export(fh, notes, verifier_key)
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except AuditVerificationError as exc:
        if exc.reason == "bad_key":  # a usage error, not a verdict on the log
            console.print(
                f"[red]error[/red] --key is neither a readable file nor a verifier key: {escape(exc.message)}"
            )
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(exc.to_json(), ensure_ascii=False, indent=2))
        else:
            where = f" at entry {exc.leaf_index}" if exc.leaf_index is not None else ""
            console.print(f"[red]NOT VERIFIED[/red]{where} {escape(f'[{exc.reason}]')} {escape(exc.message)}")
        raise typer.Exit(1) from exc
    _emit(report.to_json(), as_json, "audit log verified")


@app.command("verify")
def verify_file(
    file: Annotated[Path, typer.Argument(help="A sealed PDF")],
    roots: Annotated[
        Path | None, typer.Option(help="PEM roots to trust instead of this hub's (offline, no hub needed)")
    ] = None,
    crl: Annotated[
        list[Path] | None, typer.Option(help="DER CRL file for revocation checks; repeat for several")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every seal in FILE: intact, trusted, unrevoked at signing time, unchanged since (ETSI verdict).

    Exit 0 for TOTAL-PASSED, 1 for TOTAL-FAILED or INDETERMINATE. With --roots (and --crl) it needs
    no hub: give it the roots from GET /v1/pki/roots.pem and the CRLs from /v1/pki/crl/{ca}.crl.
    """
    from seals.verify import PASSED, TrustSettings, Verifier  # noqa: PLC0415

    try:
        data = file.read_bytes()
        if roots is not None:
            from seals.trust import load_roots  # noqa: PLC0415

            trust = TrustSettings(roots=load_roots(roots), crls=tuple(p.read_bytes() for p in crl or ()))
        else:
            from seals.trust import trust_settings  # noqa: PLC0415

            runtime = _runtime()
            with runtime.session_scope() as session:
                trust = trust_settings(session, runtime.extra_trust_roots)
    except OSError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except DomainError as exc:
        _fail(exc)
    report = Verifier(trust).verify(data)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        colour = "green" if report.verdict == PASSED else "red"
        sub = f" / {report.sub_indication}" if report.sub_indication else ""
        Console().print(f"[{colour}]{report.verdict}{escape(sub)}[/{colour}] {escape(report.detail)}")
        for sig in report.signatures:
            who = f"{sig.signer.organization} ({sig.signer.organization_identifier})" if sig.signer else "?"
            Console().print(
                f"  {escape(sig.field_name)}: {sig.indication} {escape(sig.sub_indication or '')} — {escape(who)}, "
                f"revocation {sig.revocation}, coverage {sig.coverage}, changes after: {sig.modifications_after}"
            )
    raise typer.Exit(0 if report.verdict == PASSED else 1)


@licences_app.command("import")
def licences_import(
    file: Annotated[Path, typer.Argument(help="JSON Lines: one POST /v1/licences body per line")],
    department: Annotated[str, typer.Option(help="USCC of the issuing department")],
    as_json: JsonOpt = False,
) -> None:
    """Issue every licence in FILE as one batch, with a progress bar; bad lines are reported per row.

    Embedded mode issues in this process; with a broker the chunks go to the Celery workers and
    this command follows their progress. Re-running on the same batch never issues a row twice.
    """
    import time  # noqa: PLC0415

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn  # noqa: PLC0415

    from hub import audited  # noqa: PLC0415
    from hub.codes import validate_uscc  # noqa: PLC0415
    from hub.jobs import dispatch  # noqa: PLC0415
    from licences import batches  # noqa: PLC0415

    runtime = _runtime()
    settings = runtime.settings
    try:
        code = validate_uscc(department)
        with file.open("rb") as fh, runtime.session_scope() as session:
            batch = batches.create_batch(
                session, department_code=code, client_id=None, body=iter(lambda: fh.read(1 << 16), b""),
                max_rows=settings.batch_max_rows,
            )  # fmt: skip
            event = audited.event(
                action="licence.batch.created", outcome="ok", actor_type="admin", actor=code,
                extra={"batch_id": batch.id, "rows": str(batch.total), "source": "cli"},
            )  # fmt: skip
            audited.record(session, runtime, event)
            batch_id, total = batch.id, batch.total
            ranges = batches.dispatch_ranges(session, batch_id, settings.batch_chunk_rows)
            pending = batches.progress(session, batch_id)["pending"]
    except OSError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except DomainError as exc:
        _fail(exc)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=as_json) as bar:
        task = bar.add_task(f"batch {batch_id}", total=pending)
        if settings.is_eager:
            for first, last in ranges:
                batches.issue_chunk(
                    runtime.session_scope, runtime.licence_context, batch_id, first, last,
                    on_row=lambda _line: bar.advance(task),
                )  # fmt: skip
        else:
            for first, last in ranges:
                dispatch(settings, "licences.batch.issue_chunk", batch_id=batch_id, first=first, last=last)
            while True:
                with runtime.session_scope() as session:
                    left = batches.progress(session, batch_id)["pending"]
                bar.update(task, completed=pending - left)
                if not left:
                    break
                time.sleep(0.5)
    with runtime.session_scope() as session:
        counts = batches.progress(session, batch_id)
        state = batches.get_batch_or_raise(session, batch_id, None).status
        errors = [batches.row_error(r) for r in batches.failed_rows(session, batch_id, after=0, limit=20)]
    report = {"batch_id": batch_id, "status": state, "total": total, **counts, "first_errors": errors}
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        _emit(report, as_json=False, title="licence batch")


def main() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(app())


if __name__ == "__main__":  # `python -m hub.cli`
    main()
