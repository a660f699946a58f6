"""``lineage-intake connections ...``: create, list and delete connections (docs/auth.md)."""

from __future__ import annotations

from lineage_intake_tools.cli.base import Context, Result, Subparsers, add_command, add_group, admin, table


def connections_create(ctx: Context) -> Result:
    conn = admin(ctx).create_connection(ctx.args.name, ctx.args.description, ctx.args.admin or [])
    return Result(conn.public_dict(), [f"Created connection {conn.name!r}."])


def connections_list(ctx: Context) -> Result:
    conns = admin(ctx).list_connections()
    rows = [(c.name, c.public_dict()["createdAt"], ", ".join(c.admins), c.description or "") for c in conns]
    lines = table(rows, ("NAME", "CREATED", "ADMINS", "DESCRIPTION")) if conns else ["No connections."]
    return Result([c.public_dict() for c in conns], lines)


def connections_delete(ctx: Context) -> Result:
    deleted = admin(ctx).delete_connection(ctx.args.name, detach_tokens=ctx.args.detach_tokens)
    lines = [f"Deleted connection {deleted.connection.name!r}."]
    if deleted.detached_tokens:
        lines.append(f"Removed it from the scope of token(s): {', '.join(deleted.detached_tokens)}.")
    data = {**deleted.connection.public_dict(), "detachedTokens": list(deleted.detached_tokens)}
    return Result(data, lines)


def add_commands(sub: Subparsers) -> None:
    commands = add_group(sub, "connections", "manage connections (the job namespaces that tokens may write)")
    create = add_command(commands, "create", connections_create, "create a connection")
    create.add_argument("name", metavar="NAME", help="the job.namespace that events must carry, e.g. production")
    create.add_argument("--description", help="free text")
    create.add_argument("--admin", action="append", metavar="NAME", help="a user or group (repeatable)")
    add_command(commands, "list", connections_list, "list connections")
    delete = add_command(commands, "delete", connections_delete, "delete a connection")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument(
        "--detach-tokens",
        action="store_true",
        help="remove the connection from the scope of the tokens that list it (else: refused while they are active)",
    )
