"""The harbormaster command's group, its context (the client, --json anywhere on the line)
and what every command shares (following a request's job included); cli.commands,
cli.resources, cli.nodes and cli.scaling add commands to it, and ``run_cli`` runs it with
one clear line on stderr for every expected failure."""
from __future__ import annotations

import sys
from urllib.parse import quote

import click

from cli import output
from cli.client import CliError, Client, default_token, default_url
from cli.parse import ParseError

#: where --json is recorded: Context.meta is one dict shared by every context of a line
JSON_FLAG = "harbormaster.json"


class Context:
    def __init__(self, client: Client):
        self.client = client

    @property
    def json(self) -> bool:
        """--json was given, wherever it stood on the line."""
        return click.get_current_context().meta.get(JSON_FLAG, False)


pass_ctx = click.make_pass_decorator(Context)


def _record_json(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta[JSON_FLAG] = True


def _with_json(command: click.Command) -> None:
    command.params.append(click.Option(["--json"], is_flag=True, expose_value=False,
                                       callback=_record_json,
                                       help="print the API's JSON answer"))


class Command(click.Command):
    """A subcommand that takes --json too (`harbormaster ps --json`), as docker and kubectl
    take their output flags after the subcommand."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _with_json(self)


class Group(click.Group):
    """The main command and its groups (deploy, node, tokens, scaling): --json before or after
    them, and every command under them a Command."""
    command_class = Command
    group_class = type  # subgroups are of this class too

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _with_json(self)


def ref_path(ref: str) -> str:
    return quote(ref, safe="")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", default=None, help="API address [HARBORMASTER_URL; default: local config]")
@click.option("--token", default=None,
              help="bearer token [HARBORMASTER_TOKEN; default: the local admin token file]")
@click.pass_context
def main(ctx, url, token):
    """Harbormaster: desired state, self-healing, scaling and discovery on Docker hosts."""
    ctx.obj = Context(Client(url or default_url(), token or default_token()))


def show_job_result(c: Context, job: dict, line: str) -> None:
    if c.json:
        output.emit_json(job)
    else:
        output.OUT.print(line)


def submit(c: Context, method: str, path: str, **kwargs) -> dict:
    """Send a job-making request and follow the job to its end."""
    job = c.client.request(method, path, **kwargs).json()
    return c.client.follow(job, quiet=c.json)


def waiting(until: str):
    """--wait/--no-wait and --timeout on a command whose request makes a job: whether to
    follow the job until ``until`` (its end), and for how long at most."""
    def add(command):
        command = click.option("--timeout", type=float, default=None,
                               help="stop following after this many seconds (exit 1; the "
                                    "job goes on) [default: until the job ends]")(command)
        return click.option("--wait/--no-wait", default=True, show_default=True,
                            help=f"follow the job until {until}")(command)
    return add


def followed(c: Context, job: dict, wait: bool, timeout: float | None,
             line: str) -> dict | None:
    """With ``wait``, the job once it has ended (CliError when it failed or ``timeout``
    passed); without, print ``line`` with the job and how to follow it, and None."""
    if not wait:
        show_job_result(c, job, f"{line}: job {job['id'][:8]} {job['status']} "
                                f"(`harbormaster job {job['id'][:8]} --wait` follows it)")
        return None
    return c.client.follow(job, quiet=c.json, timeout=timeout)



def run_cli() -> None:
    """Run the command line: one line on stderr and exit 1 for every expected failure.
    (cli.__main__ imports the modules that add the commands first.)"""
    try:
        main(prog_name="harbormaster", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (CliError, ParseError) as exc:
        click.echo(f"harbormaster: {exc}", err=True)
        sys.exit(1)
