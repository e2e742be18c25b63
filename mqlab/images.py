"""Build every image the lab uses from packages, without a container registry.

Nothing is pulled. One Debian trixie (13) root file system is made with
``mmdebstrap`` from the host's own apt sources (its suite names changed to trixie) and imported as the base image;
every other image is ``FROM`` that base, and ``docker build`` runs with no
network, so all it needs is in the base or in the build context:

=================  =========================================================  ===========================
name               what                                                       built from
=================  =========================================================  ===========================
base               Debian trixie rootfs (``images/base/packages.txt``)        mmdebstrap + docker import
rabbitmq           RabbitMQ 4.0 shaped like ``rabbitmq:4.3-management``       Debian package
redis              Redis 8.0 shaped like ``redis:8.2``                        Debian package
kafka              Kafka 4.3.1 shaped like ``apache/kafka:4.3.1``             Maven Central jars
bitnami-kafka      Kafka 3.9.0 shaped like ``bitnamilegacy/kafka:3.9.0``      Maven Central jars
bitnami-zookeeper  ZooKeeper 3.9.3 like ``bitnamilegacy/zookeeper:3.9.3``     Maven Central jars
perf-test          PerfTest 2.22.1 like ``pivotalrabbitmq/perf-test:2.22.1``  Maven Central jars
services           the lab's producer/consumer (``mqlab_services``)           wheelhouse made on the host
prometheus         Prometheus 2.53 like ``prom/prometheus:v2.53.3``           Debian package
redis-exporter     redis_exporter like ``oliver006/redis_exporter:v1.69.0``   Debian package
redis-commander    redis-commander 0.9.0 on Debian's Node.js                  npm package (``npm.txt``)
=================  =========================================================  ===========================

Image tags come from ``images/offline.env`` (the same file Compose reads with
``--env-file images/offline.env``). Recipes live in ``images/<name>/``; build
contexts, Maven poms and logs go to ``images/.build/`` (git-ignored).

Usage::

    from mqlab.images import build_all, build_for_stack, ImageBuildError

    results = build_all(root)                       # everything, reusing what is up to date
    build_all(root, only="kafka")                   # one image (and the base if it is stale)
    build_all(root, only=["redis", "services"], rebuild=True)
    build_for_stack(root, "kafka-zookeeper")        # what one stack needs, services included
    for r in results:
        print(r.name, r.tag, r.action, r.seconds)   # action: "built" or "reused"

``progress`` is any ``callable(str)``; it gets one line per step, prefixed with
the seconds elapsed since the call started (default: print to stderr).

Re-runs are cheap: each image carries the label ``org.mqlab.inputs``, a hash of
everything that went into it (recipe files, package list, host apt sources, Maven
coordinates, the parent image's hash, for services the project's sources). An image
whose label matches is reused without running mmdebstrap, Maven or docker build.

Every failure (a missing ``docker``/``mmdebstrap``/``mvn``, a failing step) raises
:class:`ImageBuildError` with a one-line message that names the log file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import brokers
from .config import parse_env_file
from .errors import LabError
from .stacks import STACKS

__all__ = [
    "IMAGES",
    "stack_images",
    "BuildResult",
    "ImageBuildError",
    "build_all",
    "build_for_stack",
    "build_services_image",
    "image_tags",
]

Progress = Callable[[str], None]

LABEL = "org.mqlab.inputs"
OFFLINE_ENV = "images/offline.env"
BUILD_DIR = "images/.build"
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")
# The images' Debian release. The host's apt sources are reused with their suite names
# changed to this one (bookworm-updates -> trixie-updates, ...): same mirror, no host name.
SUITE = "trixie"
# Debian trixie's python3: the services' wheelhouse is resolved for it, not for the host.
# services/Dockerfile (for registries) uses the same minor version.
IMAGE_PYTHON = "3.13.5"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    env_key: str  # key of the tag in images/offline.env
    maven: bool = False  # jars from images/<name>/maven.txt go into the context's libs/
    npm: bool = False  # the package of images/<name>/npm.txt, with its dependencies, goes into the context's app/


# Build order: the base first, then the images FROM it.
IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("base", "MQLAB_BASE_IMAGE"),
        ImageSpec("rabbitmq", "RABBITMQ_IMAGE"),
        ImageSpec("redis", "REDIS_IMAGE"),
        ImageSpec("kafka", "KAFKA_IMAGE", maven=True),
        ImageSpec("bitnami-kafka", "ZK_KAFKA_IMAGE", maven=True),
        ImageSpec("bitnami-zookeeper", "ZOOKEEPER_IMAGE", maven=True),
        ImageSpec("perf-test", "PERFTEST_IMAGE", maven=True),
        ImageSpec("services", "MQLAB_SERVICES_IMAGE"),
        # The --metrics and --ui profiles (mqlab/stack/profiles.py).
        ImageSpec("prometheus", "PROMETHEUS_IMAGE"),
        ImageSpec("redis-exporter", "REDIS_EXPORTER_IMAGE"),
        ImageSpec("redis-commander", "REDIS_COMMANDER_IMAGE", npm=True),
    )
}

class ImageBuildError(LabError):
    """An image could not be built; ``str(err)`` is one line saying why and where to look."""


@dataclass(frozen=True)
class BuildResult:
    name: str
    tag: str
    action: str  # "built" or "reused"
    seconds: float


# --------------------------------------------------------------------------- helpers


class _Clock:
    def __init__(self, progress: Progress | None):
        self.start = time.monotonic()
        self.progress = progress or _stderr

    def step(self, message: str) -> None:
        self.progress(f"[{time.monotonic() - self.start:6.1f}s] {message}")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise ImageBuildError(f"`{tool}` not found: {hint}")
    return path


def _run(argv: Sequence[str], log: Path, *, cwd: Path | None = None, stdin: bytes | None = None,
         env: dict[str, str] | None = None) -> str:
    """Run a command with its output in ``log``; raise ImageBuildError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(list(argv), cwd=cwd, input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    except OSError as exc:
        raise ImageBuildError(f"cannot run `{argv[0]}`: {exc.strerror}") from None
    output = proc.stdout.decode(errors="replace")
    log.write_text(f"$ {' '.join(argv)}\n{output}")
    if proc.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        last = lines[-1].strip()[:200] if lines else "no output"
        raise ImageBuildError(f"`{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''}` failed "
                              f"(exit {proc.returncode}): {last} [log: {log}]")
    return output


def image_tags(root: Path | str) -> dict[str, str]:
    """Image name -> tag, from ``images/offline.env`` (the environment overrides, as in Compose)."""
    path = Path(root) / OFFLINE_ENV
    if not path.exists():
        raise ImageBuildError(f"{path} is missing: run from a checkout of the lab")
    values = parse_env_file(path)
    tags = {}
    for spec in IMAGES.values():
        tag = os.environ.get(spec.env_key) or values.get(spec.env_key)
        if not tag:
            raise ImageBuildError(f"{spec.env_key} is not set in {path}")
        tags[spec.name] = tag
    return tags


def _hash_files(h: "hashlib._Hash", base: Path, paths: Iterable[Path]) -> None:
    for path in sorted(paths):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(base)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
            h.update(str(path.stat().st_mode & 0o111).encode())


def _recipe_files(recipe: Path) -> list[Path]:
    return [p for p in recipe.rglob("*") if p.is_file()]


_SUITE_WORD = re.compile(r"\b(bookworm|bullseye|buster|trixie|forky|stable|oldstable|testing)(?=(-updates|-security|-backports)?\b)")


def with_suite(sources: str, suite: str = SUITE) -> str:
    """The host's apt sources with every Debian suite name changed to ``suite``.

    Both formats are handled: deb822 (``Suites: bookworm bookworm-updates``) and one-line
    (``deb URI bookworm main``). Only suite words change; URIs, components and keyrings stay.
    """
    out = []
    for line in sources.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("Suites:"):
            key, _, value = line.partition(":")
            line = key + ":" + _SUITE_WORD.sub(suite, value)
        elif stripped.startswith(("deb ", "deb-src ")):
            fields = line.split()
            # deb [options] URI suite components...
            index = 2 if not fields[1].startswith("[") else next(
                i for i, f in enumerate(fields) if f.endswith("]")) + 2
            if index < len(fields):
                fields[index] = _SUITE_WORD.sub(suite, fields[index])
            line = " ".join(fields)
        out.append(line)
    return "\n".join(out) + "\n"


def _apt_sources() -> bytes:
    """The host's Debian apt sources for :data:`SUITE`, fed to mmdebstrap on stdin."""
    deb822 = sorted(APT_SOURCES_DIR.glob("*.sources")) if APT_SOURCES_DIR.is_dir() else []
    if deb822:
        text = "\n".join(p.read_text().rstrip() + "\n" for p in deb822)
    else:
        one_line = [APT_SOURCES_LIST] if APT_SOURCES_LIST.exists() else []
        one_line += sorted(APT_SOURCES_DIR.glob("*.list")) if APT_SOURCES_DIR.is_dir() else []
        text = "\n".join(p.read_text().rstrip() for p in one_line if p.read_text().strip())
    if not text.strip():
        raise ImageBuildError("no apt sources on this host (/etc/apt/sources.list.d/*.sources): "
                              "the base image is built from the host's Debian mirror")
    return with_suite(text).encode()


def _packages(root: Path) -> list[str]:
    path = root / "images" / "base" / "packages.txt"
    return [line.split("#")[0].strip() for line in path.read_text().splitlines()
            if line.split("#")[0].strip()]


def _coordinates(recipe: Path) -> list[tuple[str, str, str]]:
    coords = []
    for line in (recipe / "maven.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            group, artifact, version = line.split(":")
            coords.append((group, artifact, version))
    return coords


def _tools(recipe: Path) -> list[tuple[str, str, list[str]]]:
    """(script name, main class, fixed args) from ``tools.txt``."""
    tools = []
    path = recipe / "tools.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split("#")[0].split()
            if fields:
                tools.append((fields[0], fields[1], fields[2:]))
    return tools


class _Docker:
    def __init__(self, logs: Path):
        self.exe = _require("docker", "install Docker Engine (`apt-get install docker.io`) and start dockerd")
        self.logs = logs
        probe = subprocess.run([self.exe, "info", "--format", "{{.ServerVersion}}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if probe.returncode != 0:
            raise ImageBuildError("the Docker engine is not reachable (`docker info` failed): start dockerd first")

    def image_id(self, tag: str) -> str | None:
        proc = subprocess.run([self.exe, "image", "inspect", "--format", "{{.Id}}", tag],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def remove_replaced(self, old_id: str | None, tag: str) -> None:
        """Drop the image a rebuild replaced, unless a container still uses it (then docker refuses)."""
        if old_id and old_id != self.image_id(tag):
            subprocess.run([self.exe, "image", "rm", old_id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def label(self, tag: str) -> str | None:
        proc = subprocess.run([self.exe, "image", "inspect", "--format",
                               "{{ index .Config.Labels \"" + LABEL + "\" }}", tag],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if proc.returncode != 0:
            return None
        value = proc.stdout.strip()
        return value if value and value != "<no value>" else None

    def build(self, tag: str, context: Path, inputs: str, base_tag: str, log_name: str) -> None:
        # The classic builder: it needs no buildx plugin, and FROM a local image never
        # looks for a registry. The recipes use nothing BuildKit-specific.
        _run([self.exe, "build", "--network", "none", "--tag", tag,
              "--label", f"{LABEL}={inputs}", "--build-arg", f"BASE_IMAGE={base_tag}",
              # The tag's version: recipes of packaged brokers check it against the package.
              "--build-arg", f"IMAGE_VERSION={tag.rpartition(':')[2]}", str(context)],
             self.logs / f"{log_name}.log", env={"DOCKER_BUILDKIT": "0"})


# --------------------------------------------------------------------------- inputs


def _inputs_hash(root: Path, name: str, parent_hash: str) -> str:
    h = hashlib.sha256()
    h.update(f"mqlab-images/1 {name} {parent_hash}\n".encode())
    images_dir = root / "images"
    if name == "base":
        h.update("\n".join(_packages(root)).encode())
        h.update(_apt_sources())
    else:
        _hash_files(h, images_dir, _recipe_files(images_dir / name))
    if name == "services":
        _hash_files(h, root, [root / "pyproject.toml", root / "README.md"])
        for package in ("mqlab", "services"):
            _hash_files(h, root, (root / package).rglob("*.py"))
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------- steps


def _build_base(root: Path, tag: str, inputs: str, docker: _Docker, clock: _Clock, work: Path) -> None:
    mmdebstrap = _require("mmdebstrap", "install it with `apt-get install mmdebstrap`")
    rootfs = work / "base" / "rootfs.tar"
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    packages = _packages(root)
    clock.step(f"base: Debian {SUITE} rootfs with mmdebstrap ({len(packages)} packages)")
    _run([mmdebstrap, "--variant=minbase", "--include=" + ",".join(packages),
          "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
          "--dpkgopt=path-include=/usr/share/doc/*/copyright",
          "--dpkgopt=path-exclude=/usr/share/locale/*",
          # openjdk's postinst registers man pages with update-alternatives: keep the directory.
          '--setup-hook=mkdir -p "$1/usr/share/man/man1"',
          SUITE, str(rootfs), "-"],
         work / "logs" / "base-mmdebstrap.log", stdin=_apt_sources())
    clock.step(f"base: docker import -> {tag}")
    _run([docker.exe, "import",
          "--change", f"LABEL {LABEL}={inputs}",
          "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "--change", "ENV LANG=C.UTF-8",
          "--change", 'CMD ["bash"]',
          str(rootfs), tag],
         work / "logs" / "base-import.log")
    rootfs.unlink()


def _resolve_jars(root: Path, name: str, libs: Path, clock: _Clock, work: Path) -> None:
    mvn = _require("mvn", "install Maven with `apt-get install maven`")
    coords = _coordinates(root / "images" / name)
    clock.step(f"{name}: resolving {', '.join(':'.join(c[1:]) for c in coords)} from Maven Central")
    pom_dir = work / "maven" / name
    pom_dir.mkdir(parents=True, exist_ok=True)
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in coords)
    (pom_dir / "pom.xml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by mqlab.images from images/{name}/maven.txt -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lab.mqlab.images</groupId>
  <artifactId>{name}-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
""")
    _run([mvn, "-B", "-q", "-f", str(pom_dir / "pom.xml"), "dependency:copy-dependencies",
          f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
         work / "logs" / f"{name}-maven.log")


def _write_tool_scripts(name: str, recipe: Path, context: Path) -> None:
    """Generate bin/<tool>.sh wrappers and check each main class exists in the jars."""
    tools = _tools(recipe)
    if not tools:
        return
    classes: set[str] = set()
    for jar in (context / "libs").glob("*.jar"):
        with zipfile.ZipFile(jar) as zf:
            classes.update(n[:-6].replace("/", ".") for n in zf.namelist() if n.endswith(".class"))
    launchers = sorted(p.name for p in (recipe / "bin").glob("*-run-class.sh"))
    if len(launchers) != 1:
        raise ImageBuildError(f"images/{name}/bin needs exactly one *-run-class.sh launcher")
    missing = [cls for _, cls, _ in tools if cls not in classes]
    if missing:
        raise ImageBuildError(f"{name}: main classes not found in the resolved jars: {', '.join(missing)}")
    for script, cls, args in tools:
        fixed = "".join(f" {a}" for a in args)
        path = context / "bin" / f"{script}.sh"
        path.write_text(f'#!/bin/sh\nexec "$(dirname "$0")/{launchers[0]}" {cls}{fixed} "$@"\n')
        path.chmod(0o755)


def _prepare_context(root: Path, name: str, clock: _Clock, work: Path) -> Path:
    recipe = root / "images" / name
    context = work / "context" / name
    if context.exists():
        shutil.rmtree(context)
    shutil.copytree(recipe, context)
    if IMAGES[name].maven:
        libs = context / "libs"
        libs.mkdir()
        _resolve_jars(root, name, libs, clock, work)
        _write_tool_scripts(name, recipe, context)
    if IMAGES[name].npm:
        _npm_install(root, name, context / "app", clock, work)
    if name == "services":
        _make_wheelhouse(root, context / "wheelhouse", clock, work)
    _compile_modules(name, context, clock, work)
    return context


def _compile_modules(name: str, context: Path, clock: _Clock, work: Path) -> None:
    """Compile a recipe's ``modules/*.c`` into ``modules/*.so`` (Redis's stand-in module).

    Built on the host with no C library (``-nostdlib``: the module calls only the server's
    own API), so the file does not depend on the host's glibc and runs in the image.
    """
    sources = sorted((context / "modules").glob("*.c"))
    if not sources:
        return
    cc = _require("cc", "install a C compiler (`apt-get install gcc`)")
    for source in sources:
        clock.step(f"{name}: compiling {source.name}")
        _run([cc, "-shared", "-fPIC", "-O2", "-nostdlib", "-Wall", "-Werror", "-o", str(source.with_suffix(".so")),
              str(source)], work / "logs" / f"{name}-{source.stem}-cc.log")


def _npm_package(recipe: Path) -> str:
    """The one ``name@version`` of ``npm.txt``."""
    specs = [line.split("#")[0].strip() for line in (recipe / "npm.txt").read_text().splitlines()]
    specs = [s for s in specs if s]
    if len(specs) != 1 or "@" not in specs[0].lstrip("@"):
        raise ImageBuildError(f"{recipe / 'npm.txt'} must name exactly one package as name@version")
    return specs[0]


def _npm_install(root: Path, name: str, app: Path, clock: _Clock, work: Path) -> None:
    """The package of ``npm.txt`` unpacked into ``app`` with its production dependencies, as the
    official image's ``npm install --production`` lays it out; on the host, since the build has no
    network. No install scripts run and no optional dependency is taken, so nothing native is
    compiled: a ``.node`` file (a native module, built for the host) would fail the build here."""
    npm = _require("npm", "install it with `apt-get install npm`")
    spec = _npm_package(root / "images" / name)
    packs = work / "npm" / name
    if packs.exists():
        shutil.rmtree(packs)
    packs.mkdir(parents=True)
    clock.step(f"{name}: npm pack {spec}")
    _run([npm, "pack", spec, "--pack-destination", str(packs)], work / "logs" / f"{name}-npm-pack.log", cwd=packs)
    tarballs = sorted(packs.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ImageBuildError(f"npm pack {spec} made {len(tarballs)} tarballs in {packs}, not one")
    app.mkdir(parents=True)
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/")]
        for member in members:
            member.name = member.name[len("package/"):]
        tar.extractall(app, members=members, filter="data")
    clock.step(f"{name}: npm install (production dependencies, no scripts, no optional ones)")
    _run([npm, "install", "--omit=dev", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"],
         work / "logs" / f"{name}-npm-install.log", cwd=app)
    native = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.suffix == ".node" or p.name == "binding.gyp")
    if native:
        raise ImageBuildError(f"{name}: native modules in the npm install ({', '.join(native[:3])}): "
                              "they would be built for the host, not for the image")


def _make_wheelhouse(root: Path, wheelhouse: Path, clock: _Clock, work: Path) -> None:
    """Wheels for the image's Python (Debian trixie's), so markers resolve as they will there."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    clock.step("services: building the mqlab wheel")
    _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheelhouse), str(root)],
         work / "logs" / "services-wheel.log")
    wheels = sorted(wheelhouse.glob("mqlab-*.whl"))
    if not wheels:
        raise ImageBuildError(f"pip built no mqlab wheel [log: {work / 'logs' / 'services-wheel.log'}]")
    clock.step(f"services: downloading dependency wheels for Python {IMAGE_PYTHON}")
    # Trixie has glibc 2.41: manylinux_2_28 wheels (confluent-kafka's) run there too.
    abi = "cp" + "".join(IMAGE_PYTHON.split(".")[:2])
    target = ["--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp",
              "--abi", abi, "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
              "--platform", "linux_x86_64"]
    _run([*pip, "download", "--dest", str(wheelhouse), *target, str(wheels[-1])],
         work / "logs" / "services-download.log")


# --------------------------------------------------------------------------- API


def _normalize_only(only: str | Iterable[str] | None) -> list[str]:
    if only is None:
        return list(IMAGES)
    names = [only] if isinstance(only, str) else list(only)
    names = [n.strip() for item in names for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in IMAGES]
    if unknown:
        raise ImageBuildError(f"unknown image {', '.join(map(repr, unknown))}: choose from {', '.join(IMAGES)}")
    return names


def build_all(root: Path | str, rebuild: bool = False, only: str | Iterable[str] | None = None,
              progress: Progress | None = None) -> list[BuildResult]:
    """Build (or reuse) the lab's images; return one :class:`BuildResult` per image handled.

    ``only`` names images (a name, a comma-separated string or a list); the base image
    is always brought up to date first, since every image is built on it. ``rebuild``
    forces a build of the named images (and of the base when it is named or ``only`` is
    None) even when an image with matching inputs exists.
    """
    root = Path(root).resolve()
    clock = _Clock(progress)
    names = _normalize_only(only)
    wanted = ["base"] + [n for n in IMAGES if n in names and n != "base"]
    tags = image_tags(root)
    work = root / BUILD_DIR
    docker = _Docker(work / "logs")
    results: list[BuildResult] = []
    base_id = ""
    for name in wanted:
        started = time.monotonic()
        tag = tags[name]
        # An image built on another base than the current one is stale too: its inputs
        # include the base image's id, not only the base's recipe.
        inputs = _inputs_hash(root, name, base_id)
        force = rebuild and name in names
        if not force and docker.label(tag) == inputs:
            clock.step(f"{name}: {tag} is up to date")
            results.append(BuildResult(name, tag, "reused", time.monotonic() - started))
            base_id = base_id or docker.image_id(tag) or ""
            continue
        old_id = docker.image_id(tag)
        if name == "base":
            _build_base(root, tag, inputs, docker, clock, work)
            base_id = docker.image_id(tag) or ""
        else:
            context = _prepare_context(root, name, clock, work)
            clock.step(f"{name}: docker build -> {tag}")
            docker.build(tag, context, inputs, tags["base"], f"{name}-build")
        docker.remove_replaced(old_id, tag)
        results.append(BuildResult(name, tag, "built", time.monotonic() - started))
    return _finish(results, clock)


def _finish(results: list[BuildResult], clock: _Clock) -> list[BuildResult]:
    built = sum(r.action == "built" for r in results)
    clock.step(f"done: {built} built, {len(results) - built} up to date")
    return results


def stack_images(stack: str) -> tuple[str, ...]:
    """The images (names of :data:`IMAGES`) one stack runs, from the stack registry (the base is implied)."""
    if stack not in STACKS:
        raise ImageBuildError(f"unknown stack {stack!r}: choose from {', '.join(STACKS)}")
    keys = brokers.image_keys(STACKS[stack])
    return tuple(spec.name for spec in IMAGES.values() if spec.env_key in keys)


def build_for_stack(root: Path | str, stack: str, rebuild: bool = False,
                    progress: Progress | None = None, extra: Iterable[str] = ()) -> list[BuildResult]:
    """Build (or reuse) the images one stack needs, the services image included, and those of
    the ``extra`` .env keys (the --metrics and --ui profiles' images)."""
    keys = set(extra)
    names = [*stack_images(stack), *(spec.name for spec in IMAGES.values() if spec.env_key in keys)]
    return build_all(root, rebuild=rebuild, only=names, progress=progress)


def build_services_image(root: Path | str, rebuild: bool = False,
                         progress: Progress | None = None) -> BuildResult:
    """Build (or reuse) ``MQLAB_SERVICES_IMAGE``: the base + a venv at /opt/mqlab from a wheelhouse.

    The wheelhouse is made on the host: ``pip wheel`` of the project (root pyproject),
    then its dependencies downloaded for the image's Python (:data:`IMAGE_PYTHON`, Debian
    trixie's), so environment markers resolve as they will there. ``producer`` and
    ``consumer`` are on PATH.
    """
    return [r for r in build_all(root, rebuild=rebuild, only="services", progress=progress)
            if r.name == "services"][0]
