"""The image and the compose file, without a Docker engine: the Dockerfile and docker-compose.yml
are read and held to their promises (a non-root user that can write only /data, no development
dependencies, no .env in the image, a health check), and the runtime stage is rebuilt by hand
(its locked runtime packages only, code read-only to an unprivileged user, a writable data
directory) to run `python -m bot check` against the fake relay."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker

from bot.runner import CLOSE_SECONDS
from tests.kit.fake_relay import FakeRelay

REPO = Path(__file__).resolve().parent.parent
DEV_ONLY = {"pytest", "pytest-asyncio", "ruff", "mypy", "vulture", "pyyaml", "types-pyyaml"}
NOBODY = 65534
# `uv export` options for a bare list of pinned names.
EXPORT_PLAIN = ("--no-hashes", "--no-header", "--no-annotate")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.arguments)


def dockerfile_stages() -> dict[str, list[Instruction]]:
    """The Dockerfile's instructions by stage name (continuation lines joined, comments out)."""
    lines: list[str] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    stages: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            words = arguments.split()
            current = stages.setdefault(words[-1] if "AS" in words else str(len(stages)), [])
        current.append(Instruction(keyword.upper(), arguments.strip()))
    return stages


def runtime_stage() -> list[Instruction]:
    return list(dockerfile_stages().values())[-1]


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage if instruction.keyword == keyword]


def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service: dict[str, Any] = compose["services"]["bot"]
    return service


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]


# -- the Dockerfile ------------------------------------------------------------------------


def test_the_image_runs_as_a_non_root_user_who_owns_only_data() -> None:
    stage = runtime_stage()
    [user] = of(stage, "USER")
    name = user.arguments.split(":")[0]
    assert name not in ("root", "0")
    setup = " ".join(run.arguments for run in of(stage, "RUN"))
    uid = re.search(rf"useradd [^&]*--uid (\d+)[^&]* {name}\b", setup)
    assert uid and int(uid[1]) != 0
    assert f"chown {name}:{name} /data" in setup
    # The code arrives owned by root (no --chown): the bot's user cannot change it.
    copies = of(stage, "COPY")
    assert copies and all("--chown" not in copy.arguments for copy in copies)
    assert [copy.words[-1] for copy in copies] == ["/app/.venv"]
    assert stage.index(user) > max(stage.index(copy) for copy in copies)


def test_the_image_installs_the_locked_runtime_dependencies_only() -> None:
    build = dockerfile_stages()["build"]
    syncs = [run for run in of(build, "RUN") if "uv sync" in run.arguments]
    assert len(syncs) == 2
    for sync in syncs:
        assert {"--frozen", "--no-dev"} <= set(sync.words)
        assert "--mount=type=cache,target=/root/.cache/uv" in sync.words
    # uv pinned to one release, and the environment compiled to bytecode.
    [uv] = [copy for copy in of(build, "COPY") if "astral-sh/uv" in copy.arguments]
    assert re.search(r"--from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ ", uv.arguments)
    env = " ".join(instruction.arguments for instruction in of(build, "ENV"))
    assert "UV_COMPILE_BYTECODE=1" in env
    # The runtime stage has no uv and no sources: only the environment built above.
    assert not any("uv" in run.arguments.split() for run in of(runtime_stage(), "RUN"))


def test_dependencies_are_a_layer_cached_apart_from_the_readme_and_the_sources() -> None:
    build = dockerfile_stages()["build"]
    first_sync = next(run for run in of(build, "RUN") if "uv sync" in run.arguments)
    first_copy = next(c for c in of(build, "COPY") if "astral-sh/uv" not in c.arguments)
    assert build.index(first_sync) < build.index(first_copy)
    assert "--no-install-project" in first_sync.words
    bound = re.findall(r"--mount=type=bind,source=([^,]+),", first_sync.arguments)
    assert sorted(bound) == ["pyproject.toml", "uv.lock"]


def test_no_env_file_nor_local_state_reaches_the_image() -> None:
    for stage in dockerfile_stages().values():
        for copy in of(stage, "COPY"):
            if any(word.startswith("--from=") for word in copy.words):
                continue
            sources = [word for word in copy.words if not word.startswith("--")][:-1]
            assert "." not in sources and not any(s.startswith(".env") for s in sources), copy
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", "data/", ".pytest_cache", ".mypy_cache", ".ruff_cache"} <= ignored
    assert {"**/__pycache__", "*.sqlite3", "bench/", "tests/"} <= ignored


def test_the_image_keeps_its_state_on_a_data_volume_and_stops_on_sigterm() -> None:
    stage = runtime_stage()
    assert [volume.arguments for volume in of(stage, "VOLUME")] == ['["/data"]']
    env = " ".join(instruction.arguments for instruction in of(stage, "ENV"))
    assert "DATABASE_URL=sqlite:////data/suno-bot.sqlite3" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # the code directory is not writable
    assert [s.arguments for s in of(stage, "STOPSIGNAL")] == ["SIGTERM"]
    assert [c.arguments for c in of(stage, "CMD")] == ['["python", "-m", "bot"]']


def test_the_image_health_check_asks_healthz_through_the_bot() -> None:
    [check] = of(runtime_stage(), "HEALTHCHECK")
    assert check.arguments.endswith('CMD ["python", "-m", "bot", "health"]')


# -- the compose file ----------------------------------------------------------------------


def test_the_compose_service_is_hardened_and_checks_its_health() -> None:
    service = compose_service()
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["logging"]["driver"] == "json-file"
    assert {"max-size", "max-file"} <= set(service["logging"]["options"])
    assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "bot", "health"]
    # The health check needs the endpoint; it is on for the container, not published.
    assert service["environment"]["METRICS_ADDRESS"] == "${METRICS_ADDRESS:-0.0.0.0:9108}"
    assert "ports" not in service


def test_the_compose_service_keeps_state_on_its_volume_and_stops_in_time() -> None:
    service = compose_service()
    assert service["volumes"] == ["bot-data:/data"]
    assert service["environment"]["DATABASE_URL"] == "sqlite:////data/suno-bot.sqlite3"
    assert service["env_file"] == ".env"
    assert service["restart"] == "unless-stopped"
    # The bot closes its Discord session within CLOSE_SECONDS, then its store: Docker waits
    # longer than that before it kills, but not minutes.
    assert CLOSE_SECONDS + 2 <= seconds(service["stop_grace_period"]) <= 30


def test_the_compose_service_also_runs_one_off_commands() -> None:
    service = compose_service()
    # `docker compose run --rm bot python -m bot check` needs the image's own entry point
    # and no fixed container name (a second container of the service must be allowed).
    assert "entrypoint" not in service and "container_name" not in service
    assert "docker compose run --rm bot python -m bot check" in (REPO / "README.md").read_text()


# -- the runtime stage, simulated ----------------------------------------------------------


def uv_binary() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    return uv


def runtime_requirements() -> list[str]:
    """The distributions `uv sync --frozen --no-dev` installs, from the lock file alone."""
    exported = subprocess.run(  # noqa: S603
        [
            uv_binary(),
            "export",
            "--frozen",
            "--offline",
            "--no-dev",
            "--no-emit-project",
            *EXPORT_PLAIN,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names = []
    for line in exported.splitlines():
        requirement, _, marker = line.partition(";")
        if requirement.strip() and (not marker.strip() or Marker(marker.strip()).evaluate()):
            names.append(requirement.split("==")[0].strip().lower())
    return names


def unprivileged_python() -> tuple[str, dict[str, Any]]:
    """An interpreter of this Python version that an unprivileged user can run, and how to run
    a process as that user; without root, the current user and this interpreter."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix) / "bin" / f"python{version}"
    if os.geteuid() != 0:
        return str(base), {}
    as_nobody: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    for candidate in (
        base,
        Path(f"/usr/bin/python{version}"),
        Path(f"/usr/local/bin/python{version}"),
    ):
        if not candidate.exists():
            continue
        try:
            probe = subprocess.run(  # noqa: S603
                [str(candidate), "-c", "import ssl, sqlite3, ctypes"],
                capture_output=True,
                timeout=30,
                check=False,
                **as_nobody,
            )
        except OSError:  # not even allowed to run it (its directory is private)
            continue
        if probe.returncode == 0:
            return str(candidate), as_nobody
    pytest.skip(f"no python{version} that user nobody can run")


def copy_distribution(name: str, site: Path) -> None:
    distribution = importlib.metadata.distribution(name)
    for file in distribution.files or []:
        if ".." in file.parts:
            continue  # console scripts outside site-packages
        source = Path(str(distribution.locate_file(file)))
        if not source.is_file():
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if source.suffix == ".py":  # the bytecode the image compiles at build time
            cached = (
                source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
            )
            if cached.is_file():
                (target.parent / "__pycache__").mkdir(exist_ok=True)
                shutil.copy2(cached, target.parent / "__pycache__" / cached.name)


def read_only(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def listing(tree: Path) -> set[str]:
    return {str(path.relative_to(tree)) for path in tree.rglob("*")}


@pytest.fixture
def runtime_root() -> Iterator[Path]:
    """A directory every user may enter (pytest's own temporary directories are private)."""
    root = Path(tempfile.mkdtemp(prefix="suno-runtime-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(root)


def build_runtime(root: Path, python: str) -> Path:
    """/app/.venv as the image's runtime stage has it: the locked runtime distributions and the
    bot, without pip, uv or anything of the dev group; returns the venv's python."""
    venv = root / "app" / ".venv"
    (venv / "bin").mkdir(parents=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(
        f"home = {Path(python).parent}\ninclude-system-site-packages = false\nversion = {version}\n"
    )
    (venv / "bin" / "python").symlink_to(python)
    for name in runtime_requirements():
        copy_distribution(name, site)
    # The bot as `uv sync --no-editable` installs it: its wheel, unpacked.
    wheels = root / "wheels"
    subprocess.run(  # noqa: S603
        [uv_binary(), "build", "--wheel", "--offline", "--out-dir", str(wheels)],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=120,
    )
    [wheel] = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as unpacked:
        unpacked.extractall(site)
    shutil.rmtree(wheels)
    read_only(root / "app")
    return venv / "bin" / "python"


async def run_as(
    user: dict[str, Any], *args: str, cwd: Path, env: dict[str, str]
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **user,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode()


def test_the_runtime_packages_leave_out_every_development_tool() -> None:
    names = runtime_requirements()
    assert {"discord-py", "aiohttp", "pydantic", "aiosqlite", "prometheus-client"} <= set(names)
    assert not DEV_ONLY & set(names)


async def test_the_runtime_stage_passes_the_check_as_an_unprivileged_user_on_read_only_code(
    runtime_root: Path,
) -> None:
    python, user = unprivileged_python()
    venv_python = await asyncio.to_thread(build_runtime, runtime_root, python)
    app, data = runtime_root / "app", runtime_root / "data"
    data.mkdir(mode=0o700)
    if user:
        os.chown(data, NOBODY, NOBODY)
    before = listing(app)
    async with FakeRelay(api_key="sk-runtime-key") as relay:
        env = {
            "PATH": f"{venv_python.parent}:/usr/bin:/bin",
            "HOME": str(data),
            "PYTHONDONTWRITEBYTECODE": "1",
            "DISCORD_TOKEN": "runtime-discord-token",
            "SUNO_API_BASE_URL": relay.base_url,
            "SUNO_API_KEY": "sk-runtime-key",
            "DATABASE_URL": f"sqlite:///{data}/suno-bot.sqlite3",
        }
        code, out = await run_as(user, str(venv_python), "-m", "bot", "check", cwd=app, env=env)
        backup = await run_as(
            user, str(venv_python), "-m", "bot", "backup", str(data), cwd=app, env=env
        )
    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()] == ["ok"] * 4, out
    assert f"database opens ({data}/suno-bot.sqlite3)" in out
    assert backup[0] == 0, backup[1]
    if user:
        assert (data / "suno-bot.sqlite3").stat().st_uid == NOBODY
    # Nothing was written where the code is, and the user could not have written there.
    assert listing(app) == before
    denied, _ = await run_as(
        user, str(venv_python), "-c", f"open({str(app / 'x')!r}, 'w')", cwd=app, env=env
    )
    assert denied != 0
    # The wheel carries what is not Python: every language's catalog.
    catalogs, out = await run_as(
        user,
        str(venv_python),
        "-c",
        "import bot.i18n; bot.i18n.default_catalog()",
        cwd=app,
        env=env,
    )
    assert catalogs == 0, out
    # No development tool came along.
    for module in ("pytest", "mypy", "yaml"):
        missing, _ = await run_as(
            user, str(venv_python), "-c", f"import {module}", cwd=app, env=env
        )
        assert missing != 0, module


def test_the_cluster_profile_runs_postgres_and_one_process_per_shard() -> None:
    services: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    single = services["bot"]
    shards = {name: s for name, s in services.items() if name.startswith("shard-")}

    assert "profiles" not in single  # `docker compose up` runs the single bot, as before
    assert services["postgres"]["profiles"] == ["cluster"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    counts = {s["environment"]["SHARD_COUNT"] for s in shards.values()}
    assert counts == {str(len(shards))} and len(shards) >= 2
    assert sorted(s["environment"]["SHARD_IDS"] for s in shards.values()) == [
        str(n) for n in range(len(shards))
    ]
    for service in shards.values():
        assert service["profiles"] == ["cluster"]
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        # The same hardening as the single bot.
        for key in ("read_only", "cap_drop", "security_opt", "healthcheck", "logging", "tmpfs"):
            assert service[key] == single[key], key
    assert "docker compose --profile cluster up" in (REPO / "README.md").read_text()
