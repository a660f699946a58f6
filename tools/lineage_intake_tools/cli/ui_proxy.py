"""``lineage-intake ui-proxy``: the token-adding proxy for Marquez's web UI (``lineage_intake_tools.ui_proxy``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, env_file_values
from lineage_intake_tools.ui_proxy import LISTEN_HOST, resolve_config, serve

#: Read when neither ``--env-file`` nor the variables are given: what ``make run`` writes.
DEFAULT_ENV_FILE = Path(".local") / "openlineage.env"


def add_commands(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "ui-proxy",
        run_proxy,
        help="serve 127.0.0.1:PORT for Marquez's web UI: /api/v1/* to the stack with the read token added",
    )
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: any free)")
    parser.add_argument("--api-url", help="the stack's API URL (default: OPENLINEAGE_URL)")
    parser.add_argument("--token", help="a token with the read scope (default: LINEAGE_READ_TOKEN)")
    parser.add_argument(
        "--upstream", help="where other paths go, unchanged (the UI's own server); default: a 404 JSON answer"
    )


def run_proxy(ctx: Context) -> Result:
    args: argparse.Namespace = ctx.args
    env = dict(ctx.env)
    if getattr(args, "env_file", None) is None and DEFAULT_ENV_FILE.is_file():
        env = {**env_file_values(DEFAULT_ENV_FILE), **env}
    try:
        config = resolve_config(args.api_url, args.token, args.upstream, env)
        server = serve(config, args.port, ctx.stderr)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc), reason="configuration") from exc
    port = server.server_address[1]
    ctx.stderr.write(f"ui-proxy on http://{LISTEN_HOST}:{port}: /api/v1/* -> {config.api.scheme}://{config.api.netloc}")
    ctx.stderr.write(f" (read token added); other paths -> {config.upstream.netloc if config.upstream else '404'}\n")
    ctx.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return Result(data={"stopped": True}, lines=["ui-proxy stopped"])
