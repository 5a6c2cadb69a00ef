"""The click layer: options, help text and exit codes only; the work lives in plain modules.

Heavy imports (aiohttp, watchdog, jinja2) happen inside the commands so that ``polygen --help``
stays fast.

Exit codes: 0 success, 1 an expected error (``Error: …``; ``check`` found errors), 2 usage error,
130 interrupted.

Longer than 600 lines: it holds every command's options and help text (with examples) and no
work; splitting it by command group would scatter one surface for no gain in reading it.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from pathlib import Path

import click

from polygen import __version__
from polygen.errors import PolygenError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}
log = logging.getLogger("polygen.cli")


# ---------------------------------------------------------------- shared options
def _path_option(*names, envvar, default, help, **kw):
    return click.option(
        *names,
        type=click.Path(path_type=Path, file_okay=False),
        default=default,
        envvar=envvar,
        show_envvar=True,
        help=help,
        **kw,
    )


inventory_option = _path_option(
    "-i", "--inventory", envvar="POLYGEN_INVENTORY", default="inventory",
    help="Inventory directory: every *.yaml/*.yml in it is read.",
)
out_option = _path_option(
    "-o", "--out", envvar="POLYGEN_OUT", default="out",
    help="Output tree (a symlink to the current generation).",
)
templates_option = _path_option(
    "-t", "--templates", envvar="POLYGEN_TEMPLATES", default="templates",
    help="Template directory.",
)
firmware_option = _path_option(
    "--firmware", envvar="POLYGEN_FIRMWARE", default="firmware",
    help="Firmware directory: one sub-directory per release (e.g. firmware/5.9.7/sip.ld).",
)
secrets_option = click.option(
    "--secrets",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="POLYGEN_SECRETS",
    show_envvar=True,
    help="YAML file of SIP passwords kept out of git (default: <inventory>/secrets.yaml if present).",
)
class _DatabaseType(click.ParamType):
    """``--db``: a ``postgresql://`` URL stays a string; anything else is a SQLite file's Path."""

    name = "PATH|URL"
    _path = click.Path(path_type=Path, dir_okay=False)

    def convert(self, value, param, ctx):
        from polygen.logdb import is_postgres_url

        if is_postgres_url(value):
            return value
        return self._path.convert(value, param, ctx)


db_option = click.option(
    "--db",
    type=_DatabaseType(),
    default="polygen-logs.db",
    envvar="POLYGEN_DB",
    show_envvar=True,
    help="Database of uploaded phone logs: a SQLite file, or a PostgreSQL URL "
         "(postgresql://user@host/dbname) that several servers share.",
)


overrides_dir_option = click.option(
    "--overrides-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
    envvar="POLYGEN_OVERRIDES_DIR", show_envvar=True,
    help="Where the phones' override files are kept [default: polygen-overrides beside a SQLite --db, "
         "else in the working directory].",
)


def _require_db(db, hint: str = "") -> None:
    """A SQLite file must exist already (a PostgreSQL database is checked by connecting)."""
    if isinstance(db, Path) and not db.exists():
        raise PolygenError(f"no log database at {db}{hint}")


group_option = click.option(
    "--group", default=None, envvar="POLYGEN_GROUP", show_envvar=True,
    help="Group given to files holding passwords (mode 0640), e.g. www-data so nginx can read them.",
)


git_option = click.option(
    "--git", is_flag=True, envvar="POLYGEN_GIT", show_envvar=True,
    help="Build the inventory as committed (HEAD of the git repository holding it), not the files as "
         "they are; templates, firmware and the secrets file come from the working tree.",
)
branch_option = click.option(
    "--branch", default=None, metavar="NAME", envvar="POLYGEN_GIT_BRANCH", show_envvar=True,
    help="Build this branch's last commit instead of HEAD (implies --git).",
)


def git_options(f):
    return git_option(branch_option(f))


def _git_source(inventory: Path, git: bool, branch: str | None):
    """The GitSource of --git/--branch, or None."""
    if not git and branch is None:
        return None
    from polygen.gitsource import locate

    return locate(inventory, branch)


def build_options(f):
    """The options every command that builds needs."""
    for deco in reversed((inventory_option, out_option, templates_option, firmware_option, secrets_option,
                          group_option)):
        f = deco(f)
    return f


def handle_errors(f):
    """Turn PolygenError into ``Error: …``/exit 1 and hide tracebacks unless -v."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except PolygenError:
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except OSError as exc:
            if _verbose():
                raise
            raise PolygenError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from exc
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # a bug: say so plainly; the traceback is one -v away
            if _verbose():
                raise
            raise PolygenError(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback, "
                               "and please report it)") from exc

    return wrapper


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("verbose"))


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="polygen")
@click.option("-v", "--verbose", is_flag=True, envvar="POLYGEN_VERBOSE", show_envvar=True,
              help="Debug logging, and tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, envvar="POLYGEN_QUIET", show_envvar=True,
              help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Zero-touch provisioning for Polycom/Poly SIP phones.

    Validate a YAML inventory, render every file the phones fetch into out/, and run the
    sidecar that answers by User-Agent and stores the phones' log uploads.

    \b
    Example:
      polygen check && polygen build && polygen serve
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("polygen").setLevel(level)


def main() -> None:
    cli(prog_name="polygen")


# ---------------------------------------------------------------- check / build / diff
def _build_opts(inventory, out, templates, firmware, secrets, group=None):
    from polygen.build import BuildOptions

    return BuildOptions(inventory, out, templates, firmware, secrets, group)


def _echo_problems(problems, as_json: bool = False) -> None:
    for p in problems:
        click.echo(str(p), err=True)


@cli.command()
@inventory_option
@firmware_option
@secrets_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", envvar="POLYGEN_FORMAT",
              show_envvar=True, help="json prints {errors: [...], warnings: [...]} on stdout, for CI.")
@click.option("--strict", is_flag=True, envvar="POLYGEN_STRICT", show_envvar=True,
              help="Treat warnings (e.g. unknown Polycom parameters) as errors.")
@handle_errors
def check(inventory, firmware, secrets, fmt, strict):
    """Validate the inventory and report every problem at once.

    Each problem is printed as FILE:LINE: PATH: MESSAGE. Exit status: 0 clean (warnings
    allowed unless --strict), 1 errors found. With a firmware directory (or --firmware given),
    each model's files in it are checked too, as `polygen build` does; a catalog entry that
    no public source confirms (e.g. the Poly CCX models) is a warning.

    \b
    Example:
      polygen check -i inventory/
      polygen check --format json > check.json
    """
    import json

    from polygen.errors import InventoryError
    from polygen.exposure import no_auth_warning
    from polygen.inventory import load

    # the firmware is checked when there is a firmware directory, or when one was named: a CI
    # checkout of the inventory without firmware/ is not a problem
    source = click.get_current_context().get_parameter_source("firmware")
    if not Path(firmware).is_dir() and source in (None, click.core.ParameterSource.DEFAULT):
        firmware = None
    no_auth = None
    try:
        inv = load(inventory, secrets, firmware=firmware)
        order = {f: i for i, f in enumerate(inv.sources)}  # warnings and advice, in file and line order
        problems = sorted(inv.warnings + inv.advice, key=lambda p: (order.get(p.file, len(order)), p.line or 0))
        no_auth = no_auth_warning(inv.site_file) if inv.site.auth is None else None
        summary = (f"{inventory}: {len(inv.phones)} phones, {len(inv.extensions)} extensions: OK"
                   + (f" ({len(problems)} warning{'s' if len(problems) != 1 else ''})" if problems else ""))
    except InventoryError as exc:
        if not exc.problems:
            raise
        problems = exc.problems
        summary = None
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    failed = bool(errors) or (strict and bool(warnings))
    if no_auth and not failed:  # a failing check has more urgent lines to show
        click.echo(f"warning: {no_auth}", err=True)
    if fmt == "json":
        click.echo(json.dumps({"ok": not failed, "errors": [p.as_dict() for p in errors],
                               "warnings": [p.as_dict() for p in warnings]}, indent=2))
    else:
        _echo_problems(problems)
        if failed:
            n = len(errors) + (len(warnings) if strict else 0)
            click.echo(f"Error: {n} problem{'s' if n != 1 else ''} in {inventory}", err=True)
        else:
            click.echo(summary)
    sys.exit(1 if failed else 0)


@cli.command()
@build_options
@git_options
@handle_errors
def build(inventory, out, templates, firmware, secrets, group, git, branch):
    """Render every file the phones fetch into OUT, atomically.

    OUT becomes a symlink to a complete generation; unchanged files are hard-linked from the
    previous one, and a build that changes nothing writes nothing. On any error OUT is left
    exactly as it was. The summary names the generation, the commit (--git) and the digest of
    every file's path, bytes and mode: servers that build the same commit print the same one.

    \b
    Example:
      polygen build -i inventory -o out --firmware firmware
      polygen build --git       # the inventory as committed, not as it is on disk
      POLYGEN_OUT=/srv/polygen/out polygen build
    """
    from polygen.build import run
    from polygen.errors import InventoryError

    opts = _build_opts(inventory, out, templates, firmware, secrets, group)
    source = _git_source(inventory, git, branch)
    if source is not None:
        from polygen.gitsource import run as git_run

        run = functools.partial(git_run, source=source)
    bar = None
    interactive = sys.stderr.isatty()

    def on_plan(p):
        nonlocal bar
        if interactive and p.count > 2000:
            bar = click.progressbar(length=p.count, label="Building", file=sys.stderr)
            bar.__enter__()

    def progress(n):
        if bar is not None:  # small builds have no bar
            bar.update(n)

    try:
        result = run(opts, progress=progress if interactive else None, on_plan=on_plan)
        if bar is not None:
            bar.update(bar.length - bar.pos)  # progress comes in steps; the end is the end
    except InventoryError as exc:
        _echo_problems(exc.problems)
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for w in result.warnings:
        click.echo(w if ": warning: " in w else f"warning: {w}", err=True)
    click.echo(result.summary())


@cli.command()
@build_options
@click.option("--stat", is_flag=True, envvar="POLYGEN_DIFF_STAT", show_envvar=True,
              help="Only list the files, without the unified diff.")
@handle_errors
def diff(inventory, out, templates, firmware, secrets, group, stat):
    """Show what a build would add, change or remove in OUT (passwords masked).

    Compares the inventory's files as they are (committed or not) with the generation OUT
    serves, so an admin sees what a commit will do before making it. Exit status 0 whether or
    not there are changes; use it in a pull request to show the effect of an inventory change.

    \b
    Example:
      polygen diff
      polygen diff --stat
    """
    from polygen.build import diff as compute
    from polygen.errors import InventoryError
    from polygen.write import current_generation, generation_commit

    live = current_generation(out)
    try:
        changes = compute(_build_opts(inventory, out, templates, firmware, secrets, group))
    except InventoryError as exc:
        _echo_problems(exc.problems)
        raise
    marks = {"add": "A", "change": "M", "remove": "D"}
    for c in changes:
        if stat:
            click.echo(f"{marks[c.kind]} {c.path}")
        else:
            click.echo(c.diff, nl=False)
    counts = {k: sum(1 for c in changes if c.kind == k) for k in marks}
    commit = generation_commit(live)
    against = ("nothing built yet" if live is None
               else f"against generation {live.name}" + (f", commit {commit[:12]}" if commit else ""))
    click.echo(f"{counts['add']} to add, {counts['change']} to change, {counts['remove']} to remove ({against})",
               err=True)


# ================================================================ deployment: nginx / dhcp
# (section owned by the deployment work: polygen/nginx.py, polygen/dhcp.py). Env vars carry the
# command's name (POLYGEN_NGINX_LISTEN) so they cannot leak into `serve`'s or `simulate`'s options.
_file_type = click.Path(path_type=Path, dir_okay=False)


@cli.command("nginx")
@out_option
@click.option("--server-name", default="_", envvar="POLYGEN_NGINX_SERVER_NAME", show_envvar=True,
              help="nginx server_name (host names separated by spaces; _ matches any).")
@click.option("--listen", default="80", envvar="POLYGEN_NGINX_LISTEN", show_envvar=True,
              help="nginx listen address: PORT or ADDRESS:PORT.")
@click.option("--sidecar", default="127.0.0.1:8080", envvar="POLYGEN_SIDECAR", show_envvar=True,
              help="HOST:PORT of `polygen serve`, which receives the phones' log uploads.")
@click.option("--auth-file", type=_file_type, default=None, envvar="POLYGEN_NGINX_AUTH_FILE", show_envvar=True,
              help="htpasswd file for HTTP basic auth (default: OUT/.htpasswd when the build wrote one, "
                   "i.e. with site.provisioning_auth).")
@click.option("--no-auth", is_flag=True, envvar="POLYGEN_NGINX_NO_AUTH", show_envvar=True,
              help="No HTTP basic auth, even if OUT/.htpasswd exists.")
@click.option("--tls-cert", type=_file_type, default=None, envvar="POLYGEN_NGINX_TLS_CERT", show_envvar=True,
              help="TLS certificate (PEM): serve HTTPS on --listen; needs --tls-key.")
@click.option("--tls-key", type=_file_type, default=None, envvar="POLYGEN_NGINX_TLS_KEY", show_envvar=True,
              help="TLS private key (PEM) for --tls-cert.")
@click.option("--client-ca", type=_file_type, default=None, envvar="POLYGEN_NGINX_CLIENT_CA", show_envvar=True,
              help="Mutual TLS: CA file (PEM; Poly's root and intermediate CAs) that signs the phones' "
                   "factory device certificates. Each phone then gets only its own <mac>-phone.cfg, "
                   "directory and log uploads (MAC from the certificate's CN). Needs --tls-cert.")
@click.option("--client-verify", type=click.Choice(["on", "optional"]), default=None,
              envvar="POLYGEN_NGINX_CLIENT_VERIFY", show_envvar=True,
              help="With --client-ca: 'on' (default) refuses every request without a valid certificate; "
                   "'optional' still serves the bootstraps and firmware to phones without one.")
@click.option("--miss-limit", type=click.IntRange(0), default=20, envvar="POLYGEN_NGINX_MISS_LIMIT",
              show_envvar=True, help="404s and wrong passwords per client address per minute that nginx "
                                     "allows by itself while the sidecar is down (the sidecar's own "
                                     "--miss-limit holds otherwise); 0: no limit.")
@click.option("--access-log", type=_file_type, default=None, envvar="POLYGEN_NGINX_ACCESS_LOG", show_envvar=True,
              help="Also log every request of this server as JSON lines in this file, for "
                   "`polygen serve --nginx-log` (so `polygen status` sees the configs nginx served).")
@handle_errors
def nginx_cmd(out, server_name, listen, sidecar, auth_file, no_auth, tls_cert, tls_key, client_ca, client_verify,
              miss_limit, access_log):
    """Print an nginx config that serves OUT to the phones.

    Static files from OUT, 000000000000.cfg chosen by User-Agent (works while the sidecar is
    down), log uploads proxied to the sidecar, nothing else. Save it in /etc/nginx/conf.d/.
    With site.provisioning_auth, all but the bootstraps and firmware need HTTP basic auth.
    With --client-ca, phones prove their MAC with their device certificate (mutual TLS).
    Guessing (404s of phone files, wrong passwords) is counted by the sidecar's miss limiter,
    which nginx asks before each private file: phones that boot together are never refused.

    \b
    Example:
      polygen build
      polygen nginx --server-name prov.example.com > /etc/nginx/conf.d/polygen.conf
      nginx -t && systemctl reload nginx
      polygen nginx --access-log /var/log/nginx/polygen-access.log > /etc/nginx/conf.d/polygen.conf
    """
    from polygen.nginx import render_nginx

    click.echo(render_nginx(out, server_name=server_name, listen=listen, sidecar=sidecar,
                            auth_file=auth_file, auth=not no_auth, tls_cert=tls_cert, tls_key=tls_key,
                            client_ca=client_ca, client_verify=client_verify, miss_limit=miss_limit,
                            access_log=access_log),
               nl=False)


@cli.command("dhcp")
@click.option("--format", "fmt", type=click.Choice(["isc", "kea", "dnsmasq"]), required=True,
              envvar="POLYGEN_DHCP_FORMAT", show_envvar=True, help="DHCP server to write for.")
@inventory_option
@click.option("--url", default=None, envvar="POLYGEN_PROVISIONING_URL", show_envvar=True,
              help="Provisioning URL to hand out (default: site.provisioning_url from the inventory).")
@click.option("--oui", "ouis", multiple=True, default=("00:04:f2", "64:16:7f", "48:25:67"),
              envvar="POLYGEN_DHCP_OUI", show_envvar=True,
              help="MAC prefix of the phones; repeat for several (env: space-separated).")
@handle_errors
def dhcp_cmd(fmt, inventory, url, ouis):
    """Print the DHCP snippet giving the phones option 66 and 160 (the provisioning URL).

    Only clients whose MAC starts with one of the OUIs get the options, always sent.

    \b
    Example:
      polygen dhcp --format isc >> /etc/dhcp/dhcpd.conf
      polygen dhcp --format dnsmasq --url http://192.0.2.10/ > /etc/dnsmasq.d/polygen.conf
      polygen dhcp --format kea --oui 00:04:f2
    """
    from polygen.dhcp import render_dhcp

    if url is None:
        from polygen.errors import InventoryError
        from polygen.inventory import load

        try:
            url = load(inventory).site.provisioning_url
        except InventoryError as exc:
            _echo_problems(exc.problems)
            raise
    click.echo(render_dhcp(fmt, url, ouis), nl=False)


# ================================================================ sidecar: serve / watch / logs
# (section owned by the sidecar work: polygen/sidecar/, polygen/watch.py, polygen/logstore.py).
# aiohttp and watchdog are imported inside the commands. Env vars carry the command's name.
_SIZE_HELP = "Largest accepted log upload in bytes, enforced while streaming (larger: 413)."


def _input_limit_options(f):
    """serve's limits on what one upload and one slow client may cost (SECURITY.md). The defaults
    are SidecarConfig's (not imported: that would load aiohttp for every command)."""
    options = (
        click.option("--max-upload-lines", type=click.IntRange(0), default=10_000,
                     envvar="POLYGEN_SERVE_MAX_UPLOAD_LINES", show_envvar=True,
                     help="Log lines stored from one upload; the rest is not stored and a marker line "
                          "says so (the phone's next upload brings it). 0: no limit."),
        click.option("--line-limit", type=click.IntRange(0), default=20_000,
                     envvar="POLYGEN_SERVE_LINE_LIMIT", show_envvar=True,
                     help="Log lines stored per MAC per hour; with none left, uploads are 429. 0: no limit."),
        click.option("--header-timeout", type=click.FloatRange(0, min_open=True), default=15.0,
                     envvar="POLYGEN_SERVE_HEADER_TIMEOUT", show_envvar=True,
                     help="Seconds a connection may stay without a complete request head, then it is closed."),
        click.option("--body-timeout", type=click.FloatRange(0, min_open=True), default=60.0,
                     envvar="POLYGEN_SERVE_BODY_TIMEOUT", show_envvar=True,
                     help="Seconds an upload's body may take to arrive, then 408 and nothing stored."),
    )
    for option in reversed(options):
        f = option(f)
    return f


@cli.command("serve")
@click.option("--host", default="127.0.0.1", envvar="POLYGEN_SERVE_HOST", show_envvar=True,
              help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, envvar="POLYGEN_SERVE_PORT",
              show_envvar=True, help="TCP port to listen on.")
@build_options
@db_option
@click.option("--watch/--no-watch", default=False, envvar="POLYGEN_SERVE_WATCH", show_envvar=True,
              help="Rebuild OUT when the inventory, templates or firmware change (with --git: on each "
                   "new commit).")
@git_options
@click.option("--static/--no-static", default=True, envvar="POLYGEN_SERVE_STATIC", show_envvar=True,
              help="Also serve OUT read-only (GET/HEAD): no web server needed in front.")
@click.option("--retention", default=None, metavar="DURATION", envvar="POLYGEN_SERVE_RETENTION",
              show_envvar=True, help="Prune log lines older than this (e.g. 30d), hourly.")
@click.option("--max-upload", type=click.IntRange(1), default=1024 * 1024, envvar="POLYGEN_SERVE_MAX_UPLOAD",
              show_envvar=True, help=_SIZE_HELP)
@click.option("--unknown-mac", type=click.Choice(["404", "accept"]), default="404",
              envvar="POLYGEN_SERVE_UNKNOWN_MAC", show_envvar=True,
              help="Uploads from MACs the build does not know: refuse (404) or accept.")
@click.option("--miss-limit", type=click.IntRange(0), default=20, envvar="POLYGEN_SERVE_MISS_LIMIT",
              show_envvar=True, help="404s (and wrong passwords) per client address per minute, then 429 "
                                     "(slows MAC guessing); 0: no limit.")
@click.option("--upload-limit", type=click.IntRange(0), default=30, envvar="POLYGEN_SERVE_UPLOAD_LIMIT",
              show_envvar=True, help="Log uploads per MAC per minute, then 429; 0: no limit.")
@_input_limit_options
@click.option("--poll", is_flag=True, envvar="POLYGEN_SERVE_POLL", show_envvar=True,
              help="With --watch: poll for changes (Docker, network mounts) instead of inotify.")
@click.option("--shutdown-timeout", type=click.FloatRange(0), default=30.0,
              envvar="POLYGEN_SERVE_SHUTDOWN_TIMEOUT", show_envvar=True,
              help="Seconds uploads in flight get to finish on SIGTERM.")
@click.option("--insecure-no-auth", is_flag=True, envvar="POLYGEN_SERVE_INSECURE_NO_AUTH", show_envvar=True,
              help="Listen on a --host other than loopback even without site.provisioning_auth, "
                   "letting anyone who knows a MAC read that phone's SIP passwords.")
@click.option("--nginx-log", type=click.Path(path_type=Path, dir_okay=False), default=None,
              envvar="POLYGEN_SERVE_NGINX_LOG", show_envvar=True,
              help="nginx's JSON access log (`polygen nginx --access-log`): read as it grows, so "
                   "`polygen status` sees the requests nginx answered itself.")
@click.option("--sightings-flush", type=click.FloatRange(0, min_open=True), default=5.0,
              envvar="POLYGEN_SERVE_SIGHTINGS_FLUSH", show_envvar=True,
              help="Seconds between writes of what the servers saw of the phones (one batch each).")
@overrides_dir_option
@handle_errors
def serve_cmd(host, port, inventory, out, templates, firmware, secrets, group, git, branch, db, watch, static, retention,
              max_upload, unknown_mac, miss_limit, upload_limit, poll, shutdown_timeout, insecure_no_auth,
              nginx_log, sightings_flush, overrides_dir, **limits):
    """Run the sidecar: bootstrap by User-Agent, log uploads into a database, static OUT.

    GET /000000000000.cfg answers the bootstrap for the phone's model; PUT <mac>-boot.log and
    <mac>-app.log are stored in --db, a SQLite file or a PostgreSQL URL several servers share
    (query them with `polygen logs`); the phones' override files (PUT and GET
    overrides/<mac>-phone.cfg, -web.cfg) are kept in --overrides-dir and answered as
    site.overrides says (`polygen overrides` shows them); with --static every
    other file of OUT is served too, so this alone is a complete provisioning server. Log lines
    go to stdout as key=value. SIGTERM stops it cleanly. Without site.provisioning_auth it
    listens on loopback only, unless --insecure-no-auth.

    \b
    Example:
      polygen build && polygen serve --host 0.0.0.0 --port 8080 --watch
      polygen serve --watch --git    # serve each commit of the inventory, not its edits
      curl -A 'FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477' http://127.0.0.1:8080/000000000000.cfg
      polygen serve --db postgresql://polygen@db1.example.com/polygen   # logs shared by servers
      polygen serve --no-static --nginx-log /var/log/nginx/polygen-access.log   # nginx in front
    """
    from polygen.build import load_inventory
    from polygen.exposure import serve_check
    from polygen.logquery import parse_duration
    from polygen.sidecar.app import SidecarConfig, run
    from polygen.watch import git_probe, make_build, watch_paths

    opts = _build_opts(inventory, out, templates, firmware, secrets, group)
    for warning in serve_check(opts, host, watch, insecure_no_auth, load_inventory):
        click.echo(f"warning: {warning}", err=True)
    source = _git_source(inventory, git, branch) if watch else None  # --git is about rebuilds
    paths, ignore = watch_paths(opts, git=source is not None)
    config = SidecarConfig(
        out=out, db=db, inventory=inventory, static=static, max_upload_bytes=max_upload,
        unknown_mac=unknown_mac, miss_limit=miss_limit, upload_limit=upload_limit,
        retention=parse_duration(retention) if retention else None,
        rebuild=make_build(opts, source) if watch else None, watch_paths=tuple(paths),
        watch_ignore=tuple(ignore), poll=poll, nginx_log=nginx_log, sightings_flush=sightings_flush,
        watch_probe=git_probe(opts, source) if source is not None else None, overrides_dir=overrides_dir,
        **limits,
    )
    level = logging.getLogger("polygen").getEffectiveLevel()
    on_listening = None
    if static and level <= logging.INFO:  # serving out/ itself: say how to try it (not with -q)
        from polygen.nextsteps import next_steps

        steps = next_steps(host=host, port=port, out=out, db=db, inventory=inventory, watch=watch)
        on_listening = functools.partial(click.echo, steps)

    run(config, host=host, port=port, shutdown_timeout=shutdown_timeout, log_level=level,
        on_listening=on_listening)


@cli.command("watch")
@build_options
@git_options
@click.option("--poll", is_flag=True, envvar="POLYGEN_WATCH_POLL", show_envvar=True,
              help="Poll for changes (Docker, network mounts) instead of inotify.")
@handle_errors
def watch_cmd(inventory, out, templates, firmware, secrets, group, git, branch, poll):
    """Build now, then rebuild OUT whenever the inventory, templates or firmware change.

    A broken inventory logs every problem and keeps the last good build in OUT. With --git
    the inventory is built as committed, a second or so after each commit: edits not yet
    committed never go live. A rebuild never undoes `polygen rollback` by itself: it leaves
    the rolled-back build served until the inventory (with --git: the commit) changes.
    Stop with Ctrl-C or SIGTERM.

    \b
    Example:
      polygen watch -i inventory -o out
      polygen watch --git       # build each commit of the inventory's repository
      polygen watch --poll      # in Docker or on a network mount
    """
    from polygen.watch import run

    opts = _build_opts(inventory, out, templates, firmware, secrets, group)
    run(opts, poll=poll, source=_git_source(inventory, git, branch))


@cli.command("rollback")
@out_option
@handle_errors
def rollback_cmd(out):
    """Serve the generation OUT served before the current one, atomically.

    OUT is swapped back the way a build swaps it in (polygen keeps the current build and the
    one it replaced). Unattended rebuilds (watch, serve --watch, a restart of the service) do
    not put the build taken down back on their own: they leave the rollback in place until the
    inventory (with --git: the commit) changes. `polygen build` by hand serves the inventory again.

    \b
    Example:
      polygen rollback
      polygen rollback -o /srv/polygen/out
    """
    from polygen.write import rollback

    done = rollback(out)

    def named(generation: str, commit: str | None) -> str:
        return f"{generation} (commit {commit[:12]})" if commit else generation

    click.echo(f"rolled back: {out} serves {named(done.generation, done.commit)} again, "
               f"instead of {named(done.undone, done.undone_commit)}")
    if done.undone_commit:
        click.echo("watch --git and serve --watch --git leave it so until a new commit; "
                   "`polygen build --git` serves the last commit again")
    else:
        click.echo("watch and serve --watch leave it so until the inventory, templates or firmware change; "
                   "`polygen build` serves the inventory again")


_LOG_FORMATS = click.Choice(["text", "json"])


@cli.group("logs", invoke_without_command=True)
@db_option
@click.option("--mac", "macs", multiple=True, metavar="MAC", envvar="POLYGEN_LOGS_MAC", show_envvar=True,
              help="Only this phone (repeat for several; any spelling, 00:04:f2:… or 0004f2…).")
@click.option("--ext", "exts", multiple=True, metavar="EXT", envvar="POLYGEN_LOGS_EXT", show_envvar=True,
              help="Only what phones uploaded while they carried this extension (repeatable); a phone "
                   "since replaced still counts.")
@inventory_option
@click.option("--since", default=None, metavar="WHEN", envvar="POLYGEN_LOGS_SINCE", show_envvar=True,
              help="Received since a duration ago (1h, 30m, 2d) or a local date/time (2026-11-01, 2026-11-01T10:00).")
@click.option("--level", type=click.IntRange(0, 6), default=None, envvar="POLYGEN_LOGS_LEVEL",
              show_envvar=True, help="Only lines of this event class or above (0 debug … 6 fatal).")
@click.option("--grep", default=None, metavar="TEXT", envvar="POLYGEN_LOGS_GREP", show_envvar=True,
              help="Only lines whose text contains TEXT (case-insensitive).")
@click.option("--limit", type=click.IntRange(0), default=100, envvar="POLYGEN_LOGS_LIMIT", show_envvar=True,
              help="The newest N lines, printed oldest first (0: all).")
@click.option("--format", "fmt", type=_LOG_FORMATS, default="text", envvar="POLYGEN_LOGS_FORMAT",
              show_envvar=True, help="text: one line each; json: an array of objects (one object a line "
                                     "with --follow).")
@click.option("-f", "--follow", is_flag=True, envvar="POLYGEN_LOGS_FOLLOW", show_envvar=True,
              help="Then print new lines as they are stored, until Ctrl-C.")
@click.pass_context
@handle_errors
def logs_cmd(ctx, db, macs, exts, inventory, since, level, grep, limit, fmt, follow):
    """Show the log lines phones uploaded (newest LIMIT, oldest first).

    \b
    Example:
      polygen logs --mac 0004f2abcdef --since 1h
      polygen logs --db postgresql://polygen@db1.example.com/polygen --mac 0004f2abcdef
      polygen logs --ext 1001 --level 4 --grep register
      polygen logs --since 2026-11-01 --format json | jq .
      polygen logs --follow --level 4
      polygen logs prune --older-than 30d
    """
    if ctx.invoked_subcommand is not None:
        return
    from polygen.logdb import open_store
    from polygen.logquery import format_json, format_text, macs_for_extensions, normalise_macs, parse_since

    selected = normalise_macs(macs) if macs else None
    # for uploads stored before polygen recorded the phone's lines: the phones carrying it now
    carried = macs_for_extensions(inventory, exts) if exts and inventory.is_dir() else {}
    ext_macs = sorted({mac for found in carried.values() for mac in found})
    since_ts = parse_since(since) if since else None
    _require_db(db, f": start `polygen serve --db {db}` first")
    filters = {"mac": selected, "ext": list(exts) or None, "ext_macs": ext_macs, "level": level, "grep": grep}
    with open_store(db) as store:
        for ext in exts:
            if not carried.get(ext.strip()) and not store.has_extension(ext):
                raise PolygenError(f"no phone carries extension {ext}, in {inventory} or in the uploads "
                                   f"stored in {store.name}")
        rows = store.query(since=since_ts, limit=limit or None, **filters)
        if fmt == "json" and not follow:
            click.echo(format_json(rows))
            return
        show = (lambda row: click.echo(format_json([row], indent=None)[1:-1])) if fmt == "json" else \
            (lambda row: click.echo(format_text(row)))
        for row in rows:
            show(row)
        if follow:
            from polygen.logquery import follow as follow_rows

            try:
                for row in follow_rows(store, rows, since=since_ts, **filters):
                    show(row)
            except KeyboardInterrupt:  # how --follow ends: no "Interrupted.", exit 0
                return


@logs_cmd.command("prune")
@db_option
@click.option("--older-than", required=True, metavar="DURATION", envvar="POLYGEN_LOGS_OLDER_THAN",
              show_envvar=True, help="Delete uploads and lines received longer ago than this (30d, 12h, 2w).")
@handle_errors
def logs_prune_cmd(db, older_than):
    """Delete stored log lines older than a duration.

    \b
    Example:
      polygen logs prune --older-than 30d
      polygen logs prune --db /var/lib/polygen/logs.db --older-than 2w
      polygen logs prune --db postgresql://polygen@db1.example.com/polygen --older-than 90d
    """
    from polygen.logdb import open_store
    from polygen.logquery import parse_duration

    seconds = parse_duration(older_than)
    _require_db(db)
    with open_store(db) as store:
        deleted = store.prune(seconds)
        click.echo(f"pruned {deleted} rows older than {older_than} from {store.name}")


# ---------------------------------------------------------------- status (polygen/status.py)
_STATES = ("ok", "never-seen", "stale", "unknown", "mismatch", "errors")


def _state_list(ctx, param, value) -> tuple[str, ...]:
    """``stale,unknown`` or repeated options -> the states, each checked."""
    states = tuple(s.strip() for v in value for s in v.split(",") if s.strip())
    for state in states:
        if state not in _STATES:
            raise click.BadParameter(f"'{state}' is not a state; use {', '.join(_STATES)}")
    return states


@cli.command("status")
@out_option
@db_option
@click.option("--stale", default="2d", metavar="DURATION", envvar="POLYGEN_STATUS_STALE", show_envvar=True,
              help="A phone not seen for this long is stale; its logs of this period tell its errors.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              envvar="POLYGEN_STATUS_FORMAT", show_envvar=True, help="table for people; json or csv for programs.")
@click.option("--mac", "macs", multiple=True, metavar="MAC", envvar="POLYGEN_STATUS_MAC", show_envvar=True,
              help="Only this phone (repeatable; any spelling).")
@click.option("--ext", "exts", multiple=True, metavar="EXT", envvar="POLYGEN_STATUS_EXT", show_envvar=True,
              help="Only the phones carrying this extension (repeatable).")
@click.option("--state", "states", multiple=True, callback=_state_list, metavar="STATE[,STATE]",
              envvar="POLYGEN_STATUS_STATE", show_envvar=True,
              help=f"Only phones in these states: {', '.join(_STATES)}.")
@click.option("--fail-on", multiple=True, callback=_state_list, metavar="STATE[,STATE]",
              envvar="POLYGEN_STATUS_FAIL_ON", show_envvar=True,
              help="Exit 1 when a phone shown is in one of these states (for monitoring), e.g. stale,unknown,mismatch.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
              envvar="POLYGEN_STATUS_HTML", show_envvar=True,
              help="Write the status as one self-contained HTML page to FILE instead of printing it.")
@handle_errors
def status_cmd(out, db, stale, fmt, macs, exts, states, fail_on, html):
    """One line per phone: its state, models, lines, firmware, when and where it was last seen.

    Phones come from the build served in OUT and from what the servers saw (the log
    database). A phone is unknown (seen, not in the inventory), mismatch (its User-Agent
    reports another model than the inventory's), errors (an error-level line or a
    registration failure in its logs within --stale), stale (not seen within --stale),
    never-seen, or ok. Times are UTC.

    \b
    Example:
      polygen status
      polygen status --state unknown,mismatch --format json
      polygen status --fail-on stale,unknown,mismatch > /dev/null   # a monitoring check
      polygen status --html /var/www/status.html
    """
    import time

    from polygen.logdb import open_store
    from polygen.logquery import normalise_macs, parse_duration
    from polygen.status import fleet, format_csv, format_json, format_table, read_served, select, summary

    stale_after = parse_duration(stale)
    wanted = normalise_macs(macs)
    served = read_served(out)
    _require_db(db, f": start `polygen serve --db {db}` first")
    now = time.time()
    with open_store(db) as store:
        rows = fleet(served, store.sightings(), store.problems(now - stale_after), now=now, stale_after=stale_after)
    rows = select(rows, macs=wanted, exts=exts, states=states)
    if html is not None:
        from polygen.status import iso
        from polygen.statuspage import render_status_html

        page = render_status_html(rows, generation=served.generation, commit=served.commit, generated_at=iso(now),
                                  site_name=served.site_name)
        _write_file(html, page)
        click.echo(f"{html}: {summary(rows)}")
    elif fmt == "json":
        click.echo(format_json(rows))
    elif fmt == "csv":
        click.echo(format_csv(rows), nl=False)
    else:
        click.echo(format_table(rows))
    failing = [row for row in rows if row["state"] in fail_on]
    if failing:
        raise PolygenError(f"{summary(failing)} (--fail-on {','.join(fail_on)})")


def _write_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a reader never sees half a page)."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---------------------------------------------------------------- overrides (polygen/overrides.py)
def _override_store(db, overrides_dir):
    from polygen.overrides import OverrideStore, default_dir

    return OverrideStore(overrides_dir or default_dir(db))


@cli.group("overrides", invoke_without_command=True)
@db_option
@overrides_dir_option
@out_option
@click.option("--mac", "macs", multiple=True, metavar="MAC", envvar="POLYGEN_OVERRIDES_MAC", show_envvar=True,
              help="Only this phone (repeat for several; any spelling, 00:04:f2:… or 0004f2…).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              envvar="POLYGEN_OVERRIDES_FORMAT", show_envvar=True,
              help="text: each file and its parameters; json: an array of objects.")
@click.pass_context
@handle_errors
def overrides_cmd(ctx, db, overrides_dir, out, macs, fmt):
    """Show the settings phones changed themselves, parameter by parameter.

    A phone uploads <mac>-phone.cfg when its user changes a setting on its menus and
    <mac>-web.cfg for a change in its web interface; `polygen serve` keeps them in
    --overrides-dir. With site.overrides: keep (the default) the phone gets them back at boot,
    where they beat the inventory; with discard it gets an empty file. Credentials are masked.

    
    Example:
      polygen overrides
      polygen overrides --mac 64:16:7f:00:04:10 --format json
      polygen overrides clear --mac 64167f000410
    """
    if ctx.invoked_subcommand is not None:
        return
    from polygen.logquery import normalise_macs
    from polygen.overrides import DEFAULT_POLICY, format_entries, read_policy

    store = _override_store(db, overrides_dir)
    entries = store.entries(normalise_macs(macs) if macs else None)
    gen = out.resolve() if out.is_dir() else None
    policy = read_policy(gen) if gen is not None else DEFAULT_POLICY
    click.echo(format_entries(entries, fmt), nl=False)
    if fmt == "text" and policy == "discard" and entries:
        click.echo("note: site.overrides is discard: the phones get an empty override file at boot, "
                   "not these", err=True)


@overrides_cmd.command("clear")
@db_option
@overrides_dir_option
@click.option("--mac", "macs", multiple=True, required=True, metavar="MAC", envvar="POLYGEN_OVERRIDES_MAC",
              show_envvar=True, help="The phone whose local changes to drop (repeat for several).")
@click.option("--kind", type=click.Choice(["phone", "web", "both"]), default="both",
              envvar="POLYGEN_OVERRIDES_KIND", show_envvar=True,
              help="phone: changes made on its menus; web: in its web interface.")
@handle_errors
def overrides_clear_cmd(db, overrides_dir, macs, kind):
    """Drop a phone's own changes: its override file becomes an empty one.

    At its next boot the phone gets a file that sets nothing, and the inventory's values apply
    again (until its user changes a setting once more).

    
    Example:
      polygen overrides clear --mac 64:16:7f:00:04:10
      polygen overrides clear --mac 64167f000410 --kind web
    """
    from polygen.logquery import normalise_macs
    from polygen.overrides import EMPTY, KINDS, file_name

    store = _override_store(db, overrides_dir)
    store.prepare()
    kinds = KINDS if kind == "both" else (kind,)
    for mac in normalise_macs(macs):
        for k in kinds:
            store.write(mac, k, EMPTY)
            click.echo(f"cleared {store.root / file_name(mac, k)}")


# ---------------------------------------------------------------- simulate (lead)
@cli.command("simulate")
@click.option("--url", required=True, envvar="POLYGEN_SIMULATE_URL", show_envvar=True,
              help="Provisioning server as the phone gets it from DHCP, e.g. http://prov.example.com/ "
                   "(user:password@ for HTTP auth).")
@click.option("--mac", required=True, envvar="POLYGEN_SIMULATE_MAC", show_envvar=True,
              help="The phone's MAC address, any spelling.")
@click.option("--model", default=None, envvar="POLYGEN_SIMULATE_MODEL", show_envvar=True,
              help="Catalog model (IP330, VVX410, ...); builds a realistic User-Agent.")
@click.option("--ua", default=None, envvar="POLYGEN_SIMULATE_UA", show_envvar=True,
              help="An exact User-Agent to send instead of --model.")
@click.option("--allow-missing-firmware", is_flag=True, envvar="POLYGEN_SIMULATE_ALLOW_MISSING_FIRMWARE",
              show_envvar=True, help="Report a missing firmware image as a warning, not a failure.")
@click.option("--timeout", type=click.FloatRange(0.1), default=10.0, envvar="POLYGEN_SIMULATE_TIMEOUT",
              show_envvar=True, help="Seconds to wait for each request.")
@click.option("--change", "changes", multiple=True, metavar="NAME=VALUE", envvar="POLYGEN_SIMULATE_CHANGE",
              show_envvar=True, help="After the boot, a user changes this setting on the phone's menus: the "
                                     "phone uploads its override file (repeatable).")
@handle_errors
def simulate_cmd(url, mac, model, ua, allow_missing_firmware, timeout, changes):
    """Play a phone's boot against a server and print what it would get.

    Requests <mac>.cfg, 000000000000.cfg with the User-Agent, the firmware (the model's split
    image <part>.sip.ld first, then sip.ld, as a phone does), every CONFIG_FILES
    entry in order, the override and directory files, and PUTs a boot log; then prints each
    request with its status and the effective registration (passwords masked). Exit status 1
    if any step fails: run it before plugging a phone in. With --change, a user then changes
    settings on the phone, which uploads them as its override file; the next simulated boot
    fetches it back.

    \b
    Example:
      polygen simulate --url http://127.0.0.1:8080/ --mac 00:04:f2:00:03:30 --model IP330
      polygen simulate --url http://prov.example.com/ --mac 0004f2000330 \\
          --ua 'FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247'
      polygen simulate --url http://127.0.0.1:8080/ --mac 64167f000410 --model VVX410 \\
          --change up.backlight.idleIntensity=3
    """
    from polygen.catalog import Catalog
    from polygen.errors import PolygenError
    from polygen.inventory import normalise_mac
    from polygen.simulate import HttpTransport, boot, format_report, local_change

    wanted = {}
    for change in changes:
        name, eq, value = change.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name.strip(), re.ASCII):
            raise click.BadParameter(f"{change!r}: expected NAME=VALUE, e.g. up.backlight.idleIntensity=3",
                                     param_hint="--change")
        wanted[name.strip()] = value
    norm = normalise_mac(mac)
    if norm is None:
        raise PolygenError(f"'{mac}' is not a MAC address (12 hex digits)")
    if (model is None) == (ua is None):
        raise click.UsageError("give exactly one of --model or --ua")
    if model is not None:
        m = Catalog().find(model)
        if m is None:
            raise PolygenError(f"unknown model '{model}'")
        ua = m.user_agent
    transport = HttpTransport(url, timeout)
    report = boot(transport, norm, ua, firmware_required=not allow_missing_firmware)
    if wanted:
        local_change(transport, report, wanted)
    click.echo(format_report(report))
    if not report.ok:
        sys.exit(1)


# ================================================================ editing: phone / ext
# (polygen/edit.py). Each edit changes only its own lines, checks the whole inventory as it
# would be, and writes nothing when that check fails. Env vars carry the command's name.
def _file_option(envvar: str, section: str, default: str):
    return click.option(
        "--file", default=None, metavar="NAME", envvar=envvar, show_envvar=True,
        help=f"Inventory file (inside --inventory) for the new entry [default: the file holding the most "
             f"{section}:, else {default}].")


def _edit(fn, *args, **kwargs) -> None:
    """Run an edit from polygen.edit; print its problems, warnings and summary."""
    from polygen.errors import InventoryError

    try:
        result = fn(*args, **kwargs)
    except InventoryError as exc:
        _echo_problems(exc.problems)
        raise
    _echo_problems(result.warnings)
    click.echo(result.summary)


@cli.group("phone")
def phone_cmd():
    """Add, replace or remove a phone in the inventory, keeping the files as written.

    Only the phone's own lines change; comments, order and quoting elsewhere stay. The whole
    inventory is checked as it would be first: if it would fail `polygen check`, every
    problem is printed and nothing is written.

    \b
    Example:
      polygen phone add 64:16:7f:00:02:01 --model VVX410 --line 2001
      polygen phone replace 64:16:7f:00:02:01 64:16:7f:00:02:02
      polygen phone remove 64:16:7f:00:02:02
    """


@phone_cmd.command("add")
@click.argument("mac")
@click.option("--line", "lines", multiple=True, required=True, metavar="EXT", envvar="POLYGEN_PHONE_LINE",
              show_envvar=True, help="An extension on the phone, in key order; repeat for more lines "
                                     "(env: space-separated).")
@click.option("--model", default=None, envvar="POLYGEN_PHONE_MODEL", show_envvar=True,
              help="Catalog model or alias (IP330, VVX410, SPIP_331, ...) [default: the model the phone "
                   "reported when it asked the server for its files, from --db].")
@inventory_option
@secrets_option
@_file_option("POLYGEN_PHONE_FILE", "phones", "phones.yaml")
@click.option("--db", type=_DatabaseType(), default="polygen-logs.db", envvar="POLYGEN_DB", show_envvar=True,
              help="Log database whose sightings give the model a phone reported (`polygen status`).")
@handle_errors
def phone_add_cmd(mac, lines, model, inventory, secrets, file, db):
    """Add the phone MAC with its lines to the inventory.

    The entry is written like the phones before it (indentation, [..] or - lists, quoting)
    at the end of the phones: list of the file holding the most phones, or of --file.
    Without --model, a phone that already asked the server for its files (shown as unknown
    by `polygen status`) gets the model its User-Agent reported.

    \b
    Example:
      polygen phone add 64:16:7f:00:02:01 --model VVX410 --line 2001 --line 1003
      polygen phone add 0004f2000201 --model IP331 --line 2002 --file floor2.yaml
      polygen status --state unknown && polygen phone add 64:16:7f:00:02:01 --line 2001
    """
    from polygen.edit import add_phone

    _edit(add_phone, inventory, mac, lines, model, file=file, secrets=secrets,
          lookup_reported_model=None if model else functools.partial(_reported_model, db))


def _reported_model(db, mac: str) -> str | None:
    """The model token a phone's User-Agent reported, from the sightings in ``db`` (None: the
    database does not exist, or never saw the phone)."""
    from polygen.logdb import open_store

    if isinstance(db, Path) and not db.exists():
        return None
    with open_store(db) as store:
        return store.reported_model(mac)


@phone_cmd.command("replace")
@click.argument("old_mac")
@click.argument("new_mac")
@inventory_option
@secrets_option
@handle_errors
def phone_replace_cmd(old_mac, new_mac, inventory, secrets):
    """Give the phone OLD_MAC the MAC NEW_MAC (a swapped handset): only that line changes.

    \b
    Example:
      polygen phone replace 00:04:f2:00:03:30 00:04:f2:00:03:99
    """
    from polygen.edit import replace_phone

    _edit(replace_phone, inventory, old_mac, new_mac, secrets=secrets)


@phone_cmd.command("remove")
@click.argument("mac")
@inventory_option
@secrets_option
@handle_errors
def phone_remove_cmd(mac, inventory, secrets):
    """Remove the phone MAC (its entry, and the comments right above it) from the inventory.

    \b
    Example:
      polygen phone remove 00-04-F2-00-03-31
    """
    from polygen.edit import remove_phone

    _edit(remove_phone, inventory, mac, secrets=secrets)


@cli.group("ext")
def ext_cmd():
    """Add or remove an extension, keeping the files as written.

    A new extension gets a random SIP password in the secrets file (never printed); an
    extension still on a phone cannot be removed. Nothing is written if the inventory
    would then fail `polygen check`.

    \b
    Example:
      polygen ext add 2001 --first-name Alan --last-name Turing
      polygen ext remove 2001
    """


@ext_cmd.command("add")
@click.argument("ext")
@click.option("--first-name", required=True, envvar="POLYGEN_EXT_FIRST_NAME", show_envvar=True,
              help="First name, shown on the phone and in the company directory.")
@click.option("--last-name", default=None, envvar="POLYGEN_EXT_LAST_NAME", show_envvar=True,
              help="Last name.")
@click.option("--mailbox", default=None, envvar="POLYGEN_EXT_MAILBOX", show_envvar=True,
              help="The number listed in the company directory [default: EXT].")
@inventory_option
@secrets_option
@_file_option("POLYGEN_EXT_FILE", "extensions", "extensions.yaml")
@handle_errors
def ext_add_cmd(ext, first_name, last_name, mailbox, inventory, secrets, file):
    """Add the extension EXT; its new random password goes to the secrets file.

    The password (24 random letters, digits, - and _) is written to --secrets, by default
    <inventory>/secrets.yaml, which is created with mode 0600 if missing. It is never printed.

    \b
    Example:
      polygen ext add 2001 --first-name Alan --last-name Turing
      polygen ext add 0100 --first-name Lobby --mailbox 100 --file lobby.yaml
    """
    from polygen.edit import add_extension

    _edit(add_extension, inventory, ext, first_name, last_name, mailbox=mailbox, file=file, secrets=secrets)


@ext_cmd.command("remove")
@click.argument("ext")
@inventory_option
@secrets_option
@handle_errors
def ext_remove_cmd(ext, inventory, secrets):
    """Remove the extension EXT and its password in the secrets file.

    Refused while a phone has the extension on a line: the error names the phone and where.

    \b
    Example:
      polygen ext remove 2001
    """
    from polygen.edit import remove_extension

    _edit(remove_extension, inventory, ext, secrets=secrets)

# ================================================================ moving a site in: import / export
# (polygen/importing/). Env vars carry the command's name: POLYGEN_IMPORT_*, POLYGEN_EXPORT_*.
def _import_problems(exc) -> None:
    """Every problem of a failed import on stderr; the caller re-raises for ``Error: …``."""
    _echo_problems(exc.problems)


def _echo_written(header: str, written) -> None:
    from polygen.importing.report import written_lines

    click.echo(header)
    for line in written_lines(written):
        click.echo(line)


_into_option = click.option(
    "--into", type=click.Path(path_type=Path, file_okay=False), default="inventory", envvar="POLYGEN_IMPORT_INTO",
    show_envvar=True, help="Inventory directory to write (created if missing).")
_dry_run_option = click.option(
    "--dry-run", is_flag=True, envvar="POLYGEN_IMPORT_DRY_RUN", show_envvar=True,
    help="Check everything and report, but write nothing.")
_provisioning_url_option = click.option(
    "--provisioning-url", default=None, envvar="POLYGEN_IMPORT_PROVISIONING_URL", show_envvar=True,
    help="site.provisioning_url of a new site (the URL DHCP gives the phones).")


@cli.group("import", context_settings=CONTEXT_SETTINGS)
def import_group() -> None:
    """Make an inventory from a spreadsheet or another system's provisioning tree.

    \b
    Example:
      polygen import csv phones.csv --into inventory --merge
      polygen import tree /srv/tftp --into inventory --default-model VVX410
    """


@import_group.command("csv")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_into_option
@click.option("--merge", is_flag=True, envvar="POLYGEN_IMPORT_MERGE", show_envvar=True,
              help="Add to the inventory in --into (its files keep their comments) instead of refusing "
                   "to write where phones or extensions exist.")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD", envvar="POLYGEN_IMPORT_MAP",
              show_envvar=True, help="Read a column as a field: mac, model, ext, first_name, last_name, name, "
                                     "display_name, secret, mailbox, label, directory, shared, or 'ignore' (repeatable).")
@secrets_option
@click.option("--site-name", default=None, envvar="POLYGEN_IMPORT_SITE_NAME", show_envvar=True,
              help="site.name of a new site, for an inventory that has none yet.")
@_provisioning_url_option
@click.option("--sip-server", default=None, envvar="POLYGEN_IMPORT_SIP_SERVER", show_envvar=True,
              help="site.sip_server of a new site (host or host:port).")
@click.option("--timezone", default=None, envvar="POLYGEN_IMPORT_TIMEZONE", show_envvar=True,
              help="site.timezone of a new site (IANA name, e.g. America/New_York).")
@_dry_run_option
@handle_errors
def import_csv_cmd(file, into, merge, maps, secrets, site_name, provisioning_url, sip_server, timezone, dry_run):
    """Read phones and extensions from a CSV or TSV file into the inventory.

    One row per line of a phone (rows with the same MAC give it several lines, in order),
    or per extension without a phone. Columns are found by name (mac/MAC Address, model,
    ext/extension, first_name/First Name, last_name, name, secret/password, mailbox, label,
    display_name, directory, shared). Passwords go only into the secrets file (mode 0600). Every bad
    row is reported with its line and column, and nothing is written until all are good.

    \b
    Example:
      polygen import csv phones.csv --into newsite --site-name "Example Corp" \\
          --provisioning-url http://prov.example.com/ --sip-server pbx.example.com --timezone America/New_York
      polygen import csv more-phones.csv --merge --map 'Phone Number=ext' --map 'Dept=ignore'
    """
    from polygen.errors import InventoryError
    from polygen.importing.csvin import import_csv, parse_map

    site = {"name": site_name, "provisioning_url": provisioning_url, "sip_server": sip_server, "timezone": timezone}
    try:
        draft, written = import_csv(file, into, merge=merge, mapping=parse_map(maps), secrets=secrets, site=site,
                             dry_run=dry_run)
    except InventoryError as exc:
        _import_problems(exc)
        raise
    for w in written.warnings:
        click.echo(str(w), err=True)
    _echo_written(f"{file}: {draft.count('phones')} phones, {draft.count('extensions')} extensions into {into}",
                  None if dry_run else written)


@import_group.command("tree")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@_into_option
@click.option("--model", "models", multiple=True, metavar="MAC=MODEL", envvar="POLYGEN_IMPORT_MODEL",
              show_envvar=True, help="The model of a phone the tree does not tell (repeatable).")
@click.option("--default-model", default=None, metavar="MODEL", envvar="POLYGEN_IMPORT_DEFAULT_MODEL",
              show_envvar=True, help="The model of every phone whose model neither the tree nor --model tells.")
@click.option("--site-name", default="Imported site", envvar="POLYGEN_IMPORT_SITE_NAME", show_envvar=True,
              help="site.name of the new inventory.")
@_provisioning_url_option
@firmware_option
@secrets_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              envvar="POLYGEN_IMPORT_FORMAT", show_envvar=True, help="The report as text or JSON.")
@_dry_run_option
@handle_errors
def import_tree_cmd(directory, into, models, default_model, site_name, provisioning_url, firmware, secrets, fmt,
                    dry_run):
    """Make an inventory from an existing provisioning directory.

    Plays each phone's boot over DIRECTORY (its master, CONFIG_FILES in order, override
    files; SIP 3.x and UC files alike) and writes an inventory whose build gives every phone
    the same effective parameters: registrations become extensions, shared values the site
    (with its voicemail number, dial plan and the phones' admin password), the directory
    names and contacts, busy lamp fields and speed dials the phones' keys, and whatever has
    no first-class key settings. The report lists every such parameter and where it went, and
    every file not used and why. --firmware is where the build will find Polycom's releases
    (the sip.cfg/phone1.cfg of SIP 3.2 and older).

    \b
    Example:
      polygen import tree /srv/tftp --into inventory --provisioning-url http://prov.example.com/ \\
          --model 0004f2000330=IP330 --default-model VVX410
      polygen import tree old-out/ --into /tmp/check --dry-run --format json
    """
    from polygen.errors import InventoryError
    from polygen.importing.infer import import_tree
    from polygen.importing.report import tree_json, tree_text

    pairs = {}
    for item in models:
        mac, sep, model = item.partition("=")
        if not sep or not mac.strip() or not model.strip():
            raise click.BadParameter(f"'{item}': write it as MAC=MODEL, e.g. 0004f2000330=IP330",
                                     param_hint="--model")
        pairs[mac.strip()] = model.strip()
    bar = None

    def progress(done, total):  # a bar on a terminal for large trees; nothing when piped
        nonlocal bar
        if bar is None and total >= 500 and sys.stderr.isatty():
            bar = click.progressbar(length=total, label="Reading phones", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(1)

    try:
        inferred, written = import_tree(directory, into, models=pairs, default_model=default_model,
                                        site_name=site_name, provisioning_url=provisioning_url,
                                        firmware=firmware, secrets=secrets, dry_run=dry_run, progress=progress)
    except InventoryError as exc:
        _import_problems(exc)
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if fmt == "json":
        click.echo(tree_json(inferred, written, into))
        return
    for w in inferred.problems:
        click.echo(str(w), err=True)
    click.echo(tree_text(inferred, written, into))


@cli.group("export", context_settings=CONTEXT_SETTINGS)
def export_group() -> None:
    """Write the inventory out in other shapes.

    \b
    Example:
      polygen export csv > phones.csv
    """


@export_group.command("csv")
@inventory_option
@secrets_option
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-",
              envvar="POLYGEN_EXPORT_OUTPUT", show_envvar=True, help="File to write ('-': standard output).")
@click.option("--with-secrets", is_flag=True, envvar="POLYGEN_EXPORT_WITH_SECRETS", show_envvar=True,
              help="Add the SIP passwords (a 'secret' column); a file written with them is mode 0600.")
@handle_errors
def export_csv_cmd(inventory, secrets, output, with_secrets):
    """Write the phones and extensions as CSV, in the shape `polygen import csv` reads.

    One row per line of each phone, then the extensions on no phone. Passwords only with
    --with-secrets. Phone settings, time zones and keys, the site and contacts are not in the
    CSV (listed on stderr).

    \b
    Example:
      polygen export csv -o phones.csv
      polygen export csv --with-secrets -o /root/phones-with-passwords.csv
    """
    import os

    from polygen.errors import InventoryError
    from polygen.importing.csvout import export_csv, left_out
    from polygen.inventory import load

    try:
        inv = load(inventory, secrets)
    except InventoryError as exc:
        _echo_problems(exc.problems)
        raise
    text = export_csv(inv, with_secrets=with_secrets)
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if with_secrets else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if with_secrets:
                os.fchmod(fh.fileno(), 0o600)
            fh.write(text)
    click.echo(f"not in the CSV: {', '.join(left_out(inv))}", err=True)
