"""The ``shingan`` command.

Exit codes: 0 every file was analysed; 1 some file could not be (a one-line message on stderr
for each); 2 usage or configuration errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from service.config import Config, ConfigError, load_config, parse_setting
from service.messages import CLI_TEXT, LANGUAGES
from service.rules import BANK_LABELS

# The analysis (numpy, OpenCV, c2pa, the detectors), the database and the web layer are imported
# by the commands that use them, so that `shingan --help` and `shingan config` start quickly.
if TYPE_CHECKING:
    from detectors.registry import Registry
    from service.app.banks import Banks
    from service.banks import BankSource
    from service.store import BankRecord, Store

log = logging.getLogger(__name__)


_UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _clean(text: Any) -> str:
    """Make a string taken from a file safe for a terminal: no control or escape characters."""
    return "".join(
        "\N{REPLACEMENT CHARACTER}" if unicodedata.category(ch) in _UNSAFE else ch
        for ch in str(text)
    )


def _overrides(ctx_obj: dict[str, Any], **explicit: Any) -> dict[str, Any]:
    """``--set`` values, then a command's own options (which win when given)."""
    return {**ctx_obj.get("settings", {}), **{k: v for k, v in explicit.items() if v is not None}}


def _load(ctx_obj: dict[str, Any], **overrides: Any) -> Config:
    try:
        return load_config(ctx_obj.get("config_file"), overrides=_overrides(ctx_obj, **overrides))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _parse_settings(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Any]:
    try:
        return dict(parse_setting(v) for v in values)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``, as click's ``version_option`` prints it; the package metadata is read only
    when asked for."""
    if not value or ctx.resilient_parsing:
        return
    from service.version import shingan_version

    click.echo(f"shingan, version {shingan_version()}", color=ctx.color)
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (default: $SHINGAN_CONFIG).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_settings,
    help=(
        "Override one setting (a file key of the README's settings table; lists as in the "
        "SHINGAN_* variables). Repeatable; wins over the file and the environment."
    ),
)
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.pass_context
def main(
    ctx: click.Context, config_file: Path | None, settings: dict[str, Any], verbose: int
) -> None:
    """Shingan (真贋): provenance triage of suspect media."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from service.memory import tune_malloc

    tune_malloc()  # before any large allocation: freed image memory goes back to the system
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    ctx.obj["settings"] = settings


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON, one per line.")
@click.option(
    "--trust-anchors",
    multiple=True,
    type=click.Path(path_type=Path),
    help="PEM/DER file or directory of trust anchors (repeatable; replaces configured ones).",
)
@click.option(
    "--allowed-ekus",
    help="Allowed signer EKUs: comma-separated OIDs, a store.cfg file, or 'sdk'.",
)
@click.option("--thumbnails", is_flag=True, help="Include C2PA thumbnails (JSON output).")
@click.option("--forensics", is_flag=True, help="Include error-level and noise maps (JSON).")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the summary and reasons.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A sidecar C2PA manifest (.c2pa) to validate FILE against (one FILE only).",
)
@click.option(
    "--provenance-only",
    is_flag=True,
    help="No pixel detectors: C2PA, metadata, watermarks and known media only (faster).",
)
@click.pass_context
def verify(
    ctx: click.Context,
    files: Sequence[Path],
    as_json: bool,
    trust_anchors: Sequence[Path],
    allowed_ekus: str | None,
    thumbnails: bool,
    forensics: bool,
    lang: str,
    manifest: Path | None,
    provenance_only: bool,
) -> None:
    """Analyse FILES and print a verdict for each.

    A file with no embedded C2PA manifest is checked against a sidecar beside it (photo.c2pa
    or photo.jpg.c2pa), as C2PA tools do; --manifest names one explicitly."""
    sidecar: bytes | None = None
    if manifest is not None:
        if len(files) != 1:
            raise click.UsageError("--manifest goes with exactly one FILE")
        from provenance.c2pa import SidecarError, read_sidecar

        try:
            sidecar = read_sidecar(manifest)
        except SidecarError as exc:
            raise click.UsageError(f"{_clean(manifest)}: {exc.message}") from exc
    overrides: dict[str, Any] = {}
    if trust_anchors:
        overrides["trust_anchors"] = [str(p) for p in trust_anchors]
    if allowed_ekus:
        overrides["allowed_ekus"] = allowed_ekus
    if provenance_only:
        overrides["detectors"] = ()
    config = _load(ctx.obj, **overrides)
    try:
        options = config.analyze_options(
            bank_source=_database_banks(config),
            include_thumbnails=thumbnails,
            include_forensics=forensics,
            language=lang,
            find_sidecars=True,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    from provenance.media import MediaError
    from service.pipeline import analyze

    failed = 0
    for path in files:
        try:
            report = analyze(path, options, filename=path.name, manifest=sidecar)
        except MediaError as exc:
            failed += 1
            click.echo(f"shingan: {_clean(path)}: {exc.message}", err=True)
            continue
        except OSError as exc:
            failed += 1
            click.echo(f"shingan: {_clean(path)}: {exc.strerror or exc}", err=True)
            continue
        except Exception as exc:  # a bug must cost this file, not the files after it
            failed += 1
            log.debug("analysis of %s failed", path, exc_info=True)
            click.echo(
                f"shingan: {_clean(path)}: internal error ({type(exc).__name__}); "
                "run with -vv for details",
                err=True,
            )
            continue
        data = report.to_dict()
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        else:
            click.echo(render_text(data, str(path), lang))
    if failed:
        ctx.exit(1)


def _columns(text: str) -> int:
    """Terminal columns: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_text(report: dict[str, Any], name: str, lang: str = "en") -> str:
    """A readable summary of one report in ``lang`` (field names and phrases from the
    catalogue's ``[cli]`` table). Strings from the file are cleaned for the terminal."""
    text = CLI_TEXT.get(lang, CLI_TEXT["en"])

    def t(key: str, **params: Any) -> str:
        return text[key].format(**params)

    def line(field: str, value: str) -> str:
        label = text["field." + field]
        return f"  {label}{' ' * max(0, 10 - _columns(label))} {value}"

    v = report["verdict"]
    c = report["provenance"]["c2pa"]
    lines = [_clean(name)]
    basis = ", ".join(v["basis"]) or t("none")
    lines.append(
        line("verdict", t("verdict", label=v["label"], confidence=v["confidence"], basis=basis))
    )
    lines.append(line("summary", _clean(v["summary"])))
    c2pa_line = c["state"]
    signer = c.get("signer")
    if signer:
        who = signer.get("common_name") or "?"
        if signer.get("organization"):
            who += f", {signer['organization']}"
        c2pa_line += "; " + t("signed_by", who=who)
        if signer.get("issuer"):
            c2pa_line += "; " + t("issued_by", issuer=signer["issuer"])
    if c.get("error"):
        c2pa_line += f"; {c['error']}"
    lines.append(line("c2pa", _clean(c2pa_line)))
    if c.get("title"):
        lines.append(line("title", _clean(c["title"])))
    if c["state"] not in ("absent", "error"):
        ai = t("ai.yes", type=c["digital_source_type"]) if c["ai_declared"] else t("ai.no")
        lines.append(line("ai", _clean(ai)))
        recorded = [f"ingr:{code}" for code in c["ingredient_failures"]]
        failures = ", ".join(dict.fromkeys([*c["codes"]["failure"], *recorded])) or t("none")
        lines.append(line("failures", _clean(failures)))
    meta = report["provenance"]["metadata"]
    meta_parts = []
    if meta.get("generator"):
        sig = meta["signatures"][0] if meta["signatures"] else {}
        meta_parts.append(t("generator", name=meta["generator"], field=sig.get("field", "?")))
    if meta.get("camera"):
        cam = meta["camera"]
        camera = " ".join(x for x in (cam.get("make"), cam.get("model")) if x)
        meta_parts.append(t("camera", camera=camera))
    if meta.get("software"):
        meta_parts.append(t("software", chain=" > ".join(meta["software"])))
    if meta_parts:
        lines.append(line("metadata", _clean("; ".join(meta_parts))))
    marks = report["provenance"]["watermarks"]
    if marks:
        found = [w for w in marks if w["detected"]]
        if found:
            value = ", ".join(
                t(
                    "watermark.bits",
                    scheme=w["scheme"],
                    matched=w["bits_matched"],
                    total=w["bits_total"],
                )
                for w in found
            )
        else:
            value = t("watermark.none")
        lines.append(line("watermark", value))
    for det in report["detectors"]:
        if det["applicable"] and det["score"] is not None:
            value = t(
                "detector.score",
                name=det["name"],
                score=f"{det['score']:.2f}",
                side=t("detector.above" if det["above_threshold"] else "detector.below"),
                threshold=f"{det['threshold']:.2f}",
                fpr=f"{det['threshold_fpr']:.0%}",
            )
        else:
            value = f"{det['name']}: {det['notes'] or t('detector.not_applicable')}"
        lines.append(line("detector", _clean(value)))
    for reason in v["reasons"]:
        lines.append(f"  - [{reason['effect']}] {_clean(reason['detail'])}")
    for warning in report["warnings"]:
        lines.append(line("warning", _clean(warning)))
    lines.append(line("sha256", report["media"]["sha256"]))
    return "\n".join(lines)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="results.csv or results.jsonl"
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--resume", is_flag=True, help="Continue an existing output; skip files already done."
)
@click.option("--trust-anchors", multiple=True, type=click.Path(path_type=Path))
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True)
@click.option(
    "--strict",
    is_flag=True,
    help="Analyse files of no media type too (each an error) instead of skipping them.",
)
@click.option(
    "--provenance-only",
    is_flag=True,
    help="No pixel detectors: C2PA, metadata, watermarks and known media only (faster).",
)
@click.pass_context
def batch(
    ctx: click.Context,
    paths: Sequence[Path],
    out: Path,
    workers: int,
    resume: bool,
    trust_anchors: Sequence[Path],
    lang: str,
    strict: bool,
    provenance_only: bool,
) -> None:
    """Analyse every file under PATHS into a CSV or JSON Lines file, resumably.

    Files that are not images, videos or audio (keys, scripts, JSON beside the media) are
    skipped and counted; --strict records them as errors."""
    from service import batch as batch_mod

    overrides: dict[str, Any] = {}
    if trust_anchors:
        overrides["trust_anchors"] = [str(p) for p in trust_anchors]
    if provenance_only:
        overrides["detectors"] = ()
    _load(ctx.obj, **overrides)  # configuration errors are usage errors, before any work
    try:
        summary = batch_mod.run(
            list(paths),
            out,
            workers=workers,
            resume=resume,
            config_file=ctx.obj.get("config_file") and str(ctx.obj["config_file"]),
            overrides=_overrides(ctx.obj, **overrides),
            extra={"language": lang},
            progress=batch_mod.progress_printer(),
            strict=strict,
        )
    except (batch_mod.BatchError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from exc
    labels = ", ".join(f"{k} {n}" for k, n in sorted(summary.labels.items())) or "none"
    click.echo(
        f"{summary.analysed} analysed ({summary.identical} of them identical copies), "
        f"{summary.skipped} already done ({summary.failed_before} of them failed), "
        f"{summary.errors} errors, {summary.not_media} not media (skipped) in "
        f"{summary.seconds:.1f} s ({summary.rate:.2f} files/s); {labels}. Results: {out}",
        err=True,
    )
    if summary.errors or summary.failed_before:
        ctx.exit(1)


@main.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the settings in effect (file, environment and --set applied), as TOML.

    The first lines say where state is kept: the data folder and the database."""
    config = _load(ctx.obj)
    click.echo(f"# data folder: {config.data_dir}")
    click.echo(f"# database:    {config.store_url}")
    click.echo("[shingan]")
    for key in Config.model_fields:
        value = getattr(config, key)
        if value is None:
            continue
        click.echo(f"{key} = {_toml(value)}")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


@main.group()
def banks() -> None:
    """Known-media banks: in the database (used by every verification) or as CSV files."""


def _database_banks(config: Config) -> BankSource | None:
    """The database's banks for a one-off ``verify`` (:func:`service.banks_sqlite.database_banks`);
    a database that cannot be opened is a usage error."""
    from service.banks_sqlite import database_banks

    try:
        return database_banks(config, one_off=True)
    except Exception as exc:  # SQLAlchemy, Alembic or file-system errors opening the database
        raise click.UsageError(f"database {config.store_url}: {exc}") from exc


def _store(ctx: click.Context) -> Store:
    config = _load(ctx.obj)
    try:
        return config.open_store()
    except Exception as exc:  # SQLAlchemy, Alembic or file-system errors opening the database
        raise click.UsageError(f"database {config.store_url}: {exc}") from exc


def _banks(ctx: click.Context) -> Banks:
    """The application layer's banks over the configured database; the CLI is the operator."""
    from service.app.banks import Banks

    config = _load(ctx.obj)
    return Banks(_store(ctx), config.limits, Path(tempfile.gettempdir()))


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """The application layer's refusals (and store conflicts) as usage errors."""
    from service.app.errors import Refused
    from service.store import StoreConflict, StoreNotFound

    try:
        yield
    except (Refused, StoreConflict, StoreNotFound) as exc:
        raise click.UsageError(exc.message) from exc


def _operator_bank(banks: Banks, name: str, hint: str = "") -> BankRecord:
    """The bank (the operator sees every bank); a usage error naming it when there is none."""
    from service.app.errors import NotFound

    try:
        return banks.visible(name, None)
    except NotFound:
        raise click.UsageError(f"no bank named {name!r}{hint}") from None


_LABEL = click.Choice(BANK_LABELS)


@banks.command("create")
@click.argument("name")
@click.option("--label", type=_LABEL, required=True, help="what the bank's items are")
@click.option("--note", default="", help="what the bank is for")
@click.option("--source", default="", help="who maintains it")
@click.option(
    "--private",
    is_flag=True,
    help="only admin keys see it (default: shared, used by every caller's verifications)",
)
@click.pass_context
def banks_create(
    ctx: click.Context, name: str, label: str, note: str, source: str, private: bool
) -> None:
    """Create a bank in the database (an operator's bank: shared unless --private)."""
    from service.banks import BANK_NAME

    if not BANK_NAME.match(name):  # before opening the database
        raise click.UsageError("a bank name is 1-64 letters, digits, '.', '_' or '-'")
    with _refused():
        _banks(ctx).create_bank(
            name, label, note=note, source=source, owner=None, shared=not private, caller="cli"
        )
    click.echo(f"bank {name} created", err=True)


@banks.command("list")
@click.pass_context
def banks_list(ctx: click.Context) -> None:
    """Banks in the database with their entry counts."""
    for b in _banks(ctx).list(None):
        click.echo(f"{_clean(b.name)}\t{b.label}\t{b.entries}\t{_clean(b.note)}")


@banks.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--bank", "bank_name", required=True, help="the bank's name")
@click.option("--out", type=click.Path(path_type=Path), help="append to this CSV file instead")
@click.option("--label", type=_LABEL, help="default: the bank's label (required with --out)")
@click.option("--note", default="", help="why these items are in the bank")
@click.option("--source", default="", help="where they came from")
@click.pass_context
def banks_add(
    ctx: click.Context,
    files: Sequence[Path],
    bank_name: str,
    out: Path | None,
    label: str | None,
    note: str,
    source: str,
) -> None:
    """Hash FILES (images; every sampled frame of videos) into a bank."""
    from provenance.media import MediaError
    from service.banks import BankEntry, entries_from_media, write_bank_csv

    config = _load(ctx.obj)
    banks = None
    if out is None:
        banks = _banks(ctx)
        bank = _operator_bank(banks, bank_name, "; create it with 'banks create'")
        label = label or bank.label
    elif label is None:
        raise click.UsageError("--label is required with --out")
    assert label is not None
    added: list[BankEntry] = []
    failed = 0
    for path in files:
        try:
            added.extend(
                entries_from_media(path, path.name, bank_name, label, config.limits, note, source)
            )
        except (MediaError, OSError) as exc:
            failed += 1
            message = exc.message if isinstance(exc, MediaError) else (exc.strerror or str(exc))
            click.echo(f"shingan: {_clean(path)}: {message}", err=True)
    if banks is None:
        assert out is not None
        write_bank_csv(out, added, append=True)
        click.echo(f"{len(added)} entries added to {out}", err=True)
    else:
        with _refused():
            n = banks.add(bank_name, added, "cli")
        click.echo(f"{n} entries added to bank {bank_name}", err=True)
    if failed:
        ctx.exit(1)


@banks.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bank", "bank_name", help="import into this bank (default: the CSV's bank column)")
@click.option("--label", type=_LABEL, help="label for banks created by the import")
@click.pass_context
def banks_import(
    ctx: click.Context, csv_file: Path, bank_name: str | None, label: str | None
) -> None:
    """Import a bank CSV (as exchanged between organisations) into the database."""
    from collections import defaultdict

    from service.banks import BANK_NAME, BankEntry, BankError, read_bank_csv

    try:
        rows = read_bank_csv(csv_file)
    except BankError as exc:
        raise click.UsageError(str(exc)) from exc
    groups: dict[str, list[BankEntry]] = defaultdict(list)
    for e in rows:
        groups[bank_name or e.bank].append(e)
    from service.app.errors import NotFound

    banks = _banks(ctx)
    for name, entries in groups.items():
        if not BANK_NAME.match(name):
            raise click.UsageError(f"{csv_file}: bank name {_clean(name)!r} is not usable")
        try:
            banks.visible(name, None)
        except NotFound:
            labels = {e.label for e in entries}
            bank_label = label or (labels.pop() if len(labels) == 1 else None)
            if bank_label is None:
                raise click.UsageError(
                    f"bank {name} does not exist; give --label to create it"
                ) from None
            with _refused():
                banks.create_bank(name, bank_label, owner=None, shared=True, caller="cli")
        with _refused():
            n = banks.import_entries(name, entries, "cli")
        click.echo(f"{n} entries imported into bank {name}", err=True)


@banks.command("export")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="CSV file to write")
@click.pass_context
def banks_export(ctx: click.Context, name: str, out: Path) -> None:
    """Write a bank as CSV, to share it."""
    from service.banks import write_bank_csv

    banks = _banks(ctx)
    _operator_bank(banks, name)
    write_bank_csv(out, banks.entries(name))
    click.echo(f"bank {name} written to {out}", err=True)


@main.group()
def keys() -> None:
    """API keys (required whenever the service listens beyond loopback)."""


@keys.command("create")
@click.option("--name", required=True, help="who the key is for (shown in the audit log)")
@click.option("--rate-limit", type=click.IntRange(1), help="requests a minute (default: config)")
@click.option(
    "--admin",
    is_flag=True,
    help="an admin key: manages every bank, reads every report, may create shared banks",
)
@click.pass_context
def keys_create(ctx: click.Context, name: str, rate_limit: int | None, admin: bool) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from service.app.errors import Refused
    from service.app.keys import Keys, check_name

    try:
        check_name(name)  # before the database is opened
        key = Keys(_store(ctx)).create(name, "cli", rate_per_minute=rate_limit, admin=admin)
    except Refused as exc:
        raise click.UsageError(exc.message) from exc
    click.echo(key)
    click.echo(f"key {name} created; it is shown only now", err=True)


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """Keys by name, with their prefix and state (never the key)."""
    from service.app.keys import Keys

    for k in Keys(_store(ctx)).list():
        state = "revoked" if k.revoked_at else "active"
        rate = k.rate_per_minute or "default"
        click.echo(f"{_clean(k.name)}\t{k.prefix}…\t{state}\t{rate}/min\t{k.role}")


@keys.command("revoke")
@click.argument("name")
@click.pass_context
def keys_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a key at once."""
    from service.app.errors import Refused
    from service.app.keys import Keys

    keys = Keys(_store(ctx))
    try:
        keys.revoke(name, "cli")
    except Refused as exc:
        raise click.UsageError(exc.message) from exc
    click.echo(f"key {name} revoked", err=True)


@main.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--name", "node", help="worker name (default: shingan-<pid>@<host>)")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, node: str | None) -> None:
    """Run batch items from the broker (SHINGAN_BROKER_URL) until stopped."""
    import os

    from service.jobs import celery_app
    from service.memory import tune_malloc

    tune_malloc(worker=True)  # its processes analyse one file at a time (service.memory)
    config = _load(ctx.obj)
    if not config.broker_url:
        raise click.UsageError("set SHINGAN_BROKER_URL (redis://...) to run workers")
    try:
        config.open_store().close()  # migrate once before any task runs
        config.analyze_options()  # fail now, not on the first task, if the config is unusable
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    app = celery_app(config)
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--hostname={node or f'shingan-{os.getpid()}@%h'}",
        "--queues=shingan",
        "--without-gossip",
        "--without-mingle",
    ]
    # One process (solo) per worker by default: killing it kills its work; more with prefork.
    argv += (
        ["--pool=solo"] if concurrency == 1 else ["--pool=prefork", f"--concurrency={concurrency}"]
    )
    app.worker_main(argv)


@main.group()
def models() -> None:
    """Detector models: list them, verify them."""


@models.command("list")
@click.pass_context
def models_list(ctx: click.Context) -> None:
    """List the detector models found in the configured folders."""
    registry = _registry(ctx)
    for status in registry.list():
        card = status.card
        if card is None:
            click.echo(f"{_clean(status.name):28s} INVALID  {_clean(status.problem or '')}")
            continue
        state = "ok" if status.ok else f"unusable: {status.problem}"
        if status.ok and not card.default:
            state = "ok, not run unless named in 'detectors'"
        click.echo(
            f"{card.name:28s} {card.version:8s} {card.task:18s} {card.implementation:18s} "
            f"{card.sha256[:12]}  {_clean(state)}"
        )
        click.echo(f"{'':28s} {_clean(card.summary)}  [{card.directory}]")


@models.command("verify")
@click.pass_context
def models_verify(ctx: click.Context) -> None:
    """Check every model's sha256 and run one smoke inference; exit 1 if any fails."""
    from detectors.registry import DetectorUnavailable

    registry = _registry(ctx)
    failed = 0
    for status in registry.list():
        try:
            detector = registry.create(status.name)
            result = detector.analyze_image(detector.smoke_input())
        except (DetectorUnavailable, Exception) as exc:  # report every failure, keep going
            failed += 1
            click.echo(f"FAIL {_clean(status.name)}: {_clean(exc)}")
            continue
        outcome = f"score {result.score:.3f}" if result.score is not None else result.notes
        click.echo(f"ok   {status.name}: sha256 verified, smoke inference {outcome}")
    if failed:
        ctx.exit(1)


def _registry(ctx: click.Context) -> Registry:
    try:
        return _load(ctx.obj).build_registry()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@main.command()
@click.option("--host", help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8080).")
@click.option("--threads", type=int, help="Request threads (default 32).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, threads: int | None) -> None:
    """Run the HTTP service (waitress) with the configured settings."""
    config = _load(ctx.obj, host=host, port=port, threads=threads)
    from service.web import create_app
    from service.web.server import make_server

    try:
        app = create_app(config)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:
        raise click.UsageError(f"data dir {config.data_dir}: {exc.strerror or exc}") from exc
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    st = app.extensions["shingan"]
    if st.keys_required and not st.store.keys.has_keys():
        click.echo(
            f"shingan: listening on {config.host} needs API keys and there are none; "
            "create one with 'shingan keys create --name NAME'",
            err=True,
        )
    from service.version import shingan_version

    click.echo(
        f"shingan {shingan_version()} listening on http://{config.host}:{config.port} "
        f"(data dir {config.data_dir})",
        err=True,
    )
    proxy: dict[str, object] = {}
    if config.trusted_proxy:
        # the client's address (rate limits, audit) from the proxy's X-Forwarded-For
        proxy = {
            "trusted_proxy": config.trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "trusted_proxy_count": 1,
        }
    try:
        make_server(app, host=config.host, port=config.port, threads=config.threads, **proxy).run()
    finally:
        st.runner.stop()  # its worker processes end; unfinished items are resumed next time


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name="shingan"))
