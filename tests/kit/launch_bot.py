"""Runs `python -m bot` in its own process, pointed at a fake Discord given on the command line."""

from __future__ import annotations

import sys

import discord
import yarl
from discord.gateway import DiscordWebSocket


def main() -> int:
    api_base, gateway_url, *args = sys.argv[1:]
    discord.http.Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    from bot.__main__ import main as run_bot

    return run_bot(args)


if __name__ == "__main__":
    sys.exit(main())
