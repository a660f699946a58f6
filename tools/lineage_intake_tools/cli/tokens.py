"""``lineage-intake tokens ...``: create, list and revoke API tokens (docs/auth.md)."""

from __future__ import annotations

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, add_group, admin, table


def tokens_create(ctx: Context) -> Result:
    issued = admin(ctx).create_token(
        ctx.args.connection or [], ctx.args.name, ctx.args.expires_in_days, scopes=ctx.args.scope
    )
    record = issued.record
    expiry = f"expires {record.public_dict(record.created_at)['expiresAt']}" if record.expires_at else "never expires"
    writes = f"writes connection(s) {', '.join(sorted(record.connections))}" if "write" in record.scopes else ""
    reads = "reads all lineage of the deployment" if "read" in record.scopes else ""
    lines = [
        f"Created token {record.token_id} ({record.name!r}) with scope(s) {', '.join(sorted(record.scopes))}: "
        f"it {' and '.join(x for x in (writes, reads) if x)}; it {expiry}.",
        "Store the token now: it is shown once and cannot be recovered. It is the last line below.",
        issued.token,
    ]
    return Result({**record.public_dict(record.created_at), "token": issued.token}, lines)


def tokens_list(ctx: Context) -> Result:
    from lineage_intake.tokens import utc_now

    now = utc_now()
    records = admin(ctx).list_tokens(ctx.args.connection)
    shown = [r.public_dict(now) for r in records]
    rows = [
        (
            str(d["tokenId"]),
            str(d["name"]),
            ", ".join(sorted(r.scopes)),
            ", ".join(sorted(r.connections)) or "-",
            str(d["status"]),
            str(d["createdAt"]),
            str(d["expiresAt"] or "-"),
            str(d["lastUsedAt"] or "-"),
        )
        for r, d in zip(records, shown, strict=True)
    ]
    header = ("TOKEN ID", "NAME", "SCOPES", "CONNECTIONS", "STATUS", "CREATED", "EXPIRES", "LAST USED")
    return Result(shown, table(rows, header) if rows else ["No tokens."])


def tokens_revoke(ctx: Context) -> Result:
    from lineage_intake.tokens import looks_like_token, utc_now

    if looks_like_token(ctx.args.token_id):
        # Never echo it back: it is a secret that should not be on a command line in the first place.
        raise CliError("pass the token id (the 16 hex characters after 'li_'), not the whole token", "invalid_argument")
    record = admin(ctx).revoke_token(ctx.args.token_id)
    data = record.public_dict(utc_now())
    return Result(data, [f"Revoked token {record.token_id} ({record.name!r}) at {data['revokedAt']}."])


def tokens_scope(ctx: Context) -> Result:
    from lineage_intake.tokens import utc_now

    record = admin(ctx).change_scope(ctx.args.token_id, ctx.args.add or (), ctx.args.remove or ())
    data = record.public_dict(utc_now())
    return Result(
        data,
        [
            f"Token {record.token_id} ({record.name!r}) may now write to: "
            f"{', '.join(data['connections']) or 'nothing'}.",
            "A request sees the change once API Gateway's cached decision expires (AuthorizerCacheTtlSeconds).",
        ],
    )


def add_commands(sub: Subparsers) -> None:
    commands = add_group(sub, "tokens", "manage API tokens")
    create = add_command(commands, "create", tokens_create, "create a token; it is printed once, on the last line")
    create.add_argument(
        "--connection", action="append", metavar="NAME", help="a connection it may write (repeatable; needed for write)"
    )
    create.add_argument(
        "--scope",
        action="append",
        choices=["read", "write"],
        help="write: send events to its connections (default); read: the read API, whole deployment (repeatable)",
    )
    create.add_argument("--name", help="a human name (default: the connection names)")
    create.add_argument("--expires-in-days", type=int, metavar="N", help="expiry in days (default: never)")
    listing = add_command(commands, "list", tokens_list, "list tokens (never secrets)")
    listing.add_argument("--connection", metavar="NAME", help="only tokens scoped to this connection")
    scope = add_command(commands, "scope", tokens_scope, "change the connections a token may write")
    scope.add_argument("token_id", metavar="TOKEN_ID")
    scope.add_argument("--add", action="append", metavar="NAME", help="a connection to add (repeatable)")
    scope.add_argument("--remove", action="append", metavar="NAME", help="a connection to remove (repeatable)")
    revoke = add_command(commands, "revoke", tokens_revoke, "revoke a token")
    revoke.add_argument("token_id", metavar="TOKEN_ID")
