"""Entry point: `python -m bot` runs the bot, `python -m bot check` tests its configuration."""

from __future__ import annotations

import sys

from bot.config import ConfigError, load_settings
from bot.logs import configure_logging
from bot.runner import run_bot, run_check

USAGE = "usage: python -m bot [run | check]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command not in ("run", "check") or len(args) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        if command == "check":
            print(f"FAIL  settings: {exc}")
        else:
            print(f"suno-bot: configuration error: {exc}", file=sys.stderr)
        return 2
    secrets = (settings.discord_token.get_secret_value(), settings.suno_api_key.get_secret_value())
    configure_logging(settings.log_level, secrets)
    if command == "check":
        return run_check(settings)
    return run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
