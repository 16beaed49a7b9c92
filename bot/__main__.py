"""Entry point: `python -m bot` runs the bot, `check` tests its configuration, `backup PATH`
copies its store, `health` asks the running bot's /healthz, `new-secret` prints a fresh
KEY_ENCRYPTION_SECRET."""

from __future__ import annotations

import sys

from bot.config import ConfigError, ProbeSettings, StoreSettings, load, load_settings

USAGE = "usage: python -m bot [run | check | backup PATH | health | new-secret]"
# Each command and how many operands it takes.
COMMANDS = {"run": 0, "check": 0, "backup": 1, "health": 0, "new-secret": 0}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command, operands = (args[0], args[1:]) if args else ("run", [])
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if COMMANDS.get(command) != len(operands):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return _run(command, operands)
    except ConfigError as exc:
        if command == "run":
            print(f"suno-bot: configuration error: {exc}", file=sys.stderr)
        else:
            print(f"FAIL  settings: {exc}")
        return 2


def _run(command: str, operands: list[str]) -> int:
    # Each command imports what it needs: `health` runs every half minute in a container and
    # `backup` needs neither Discord nor the relay (nor their secrets).
    if command == "backup":
        from bot.backup import run_backup

        return run_backup(load(StoreSettings), operands[0])
    if command == "new-secret":
        from bot.keys import new_secret

        print(new_secret())
        return 0
    if command == "health":
        from bot.healthcheck import run_health

        return run_health(load(ProbeSettings))
    settings = load_settings()
    from bot.logs import configure_logging
    from bot.runner import run_bot, run_check

    secrets = (
        settings.discord_token.get_secret_value(),
        settings.suno_api_key.get_secret_value(),
        *(secret.get_secret_value() for secret in settings.key_encryption_secrets),
    )
    configure_logging(settings.log_level, secrets)
    if command == "check":
        return run_check(settings)
    return run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
