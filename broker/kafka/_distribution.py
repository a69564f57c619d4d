"""Fetch and verify the official Apache Kafka jars from Maven Central.

The recipe is ``deploy/kafka/pom.xml`` (the one place the Kafka version is recorded). Maven
resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies into a per-user cache,
``~/.cache/fusionbus/kafka-<version>/libs``. A manifest of every jar's size and SHA-256 is
written last, so a failed or partial download never looks complete, and a cache whose jars no
longer match the manifest is detected and fetched again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from broker.errors import KafkaFetchError, PrerequisiteError

__all__ = [
    "KafkaDistribution",
    "cache_root",
    "ensure_distribution",
    "find_java",
    "kafka_version",
    "recipe_dir",
]

log = structlog.get_logger(__name__)

MIN_JAVA = 17
_MANIFEST = "MANIFEST.json"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}

#: Progress callback: (artifacts downloaded so far, bytes so far, name of the last artifact).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class KafkaDistribution:
    """A verified set of Kafka jars and the Java that runs them."""

    version: str
    libs: Path
    java: Path
    log4j_config: Path

    @property
    def classpath(self) -> str:
        return f"{self.libs}{os.sep}*"


def recipe_dir() -> Path:
    """Where ``pom.xml`` and ``log4j2.properties`` live: the source tree or the installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_recipe", here.parents[1] / "deploy" / "kafka"):
        if (candidate / "pom.xml").is_file():
            return candidate
    raise KafkaFetchError(
        f"the Kafka recipe (deploy/kafka/pom.xml) is missing next to {here}; reinstall "
        "fusionbus from a complete checkout (`pip install -e .`)."
    )


def kafka_version(recipe: Path | None = None) -> str:
    """The pinned Kafka version, read from the recipe's ``kafka.version`` property."""
    pom = (recipe or recipe_dir()) / "pom.xml"
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _POM_NS)  # noqa: S314 - our own file
    if node is None or not (node.text or "").strip():
        raise KafkaFetchError(f"{pom} has no <kafka.version> property; restore the file from git.")
    return (node.text or "").strip()


def cache_root() -> Path:
    """``$FUSIONBUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/fusionbus``, else ``~/.cache/fusionbus``."""
    if explicit := os.environ.get("FUSIONBUS_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fusionbus"


def find_java() -> Path:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java`` first), checked to be 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.is_file():
        found = shutil.which("java")
        candidate = Path(found) if found else None
    if candidate is None:
        raise PrerequisiteError(
            "Java was not found (no $JAVA_HOME/bin/java and no `java` on PATH). Apache Kafka "
            f"{kafka_version()} needs Java {MIN_JAVA} or newer: install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    try:
        done = subprocess.run(
            [str(candidate), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrerequisiteError(f"could not run `{candidate} -version`: {exc}") from exc
    major = _java_major(done.stderr + done.stdout)
    if major is None or major < MIN_JAVA:
        seen = (done.stderr or done.stdout).strip().splitlines()[:1]
        raise PrerequisiteError(
            f"{candidate} is Java {major if major is not None else '(unknown)'} "
            f"({seen[0] if seen else 'no version output'}); Apache Kafka needs Java {MIN_JAVA} "
            "or newer. Install a newer JDK or point JAVA_HOME at one."
        )
    return candidate


def _java_major(version_output: str) -> int | None:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    first = int(match.group(1))
    # Java 8 and older report "1.8.0_x"; 9+ report "17.0.15".
    return int(match.group(2) or 0) if first == 1 else first


def ensure_distribution(progress: Progress | None = None) -> KafkaDistribution:
    """Return the verified Kafka jars, fetching them with Maven if missing or corrupt."""
    java = find_java()
    recipe = recipe_dir()
    version = kafka_version(recipe)
    home = cache_root() / f"kafka-{version}"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KafkaFetchError(
            f"cannot create the Kafka jar cache {home}: {exc}. Make it writable or set "
            "FUSIONBUS_CACHE_DIR to a writable directory."
        ) from exc
    libs = home / "libs"
    recipe_digest = _sha256(recipe / "pom.xml")
    with _locked(home / ".lock"):
        problem = _verify(libs, recipe_digest)
        if problem is not None:
            if libs.exists():
                log.warning("kafka.cache_invalid", path=str(libs), problem=problem)
            _fetch(recipe, home, recipe_digest, progress)
            problem = _verify(libs, recipe_digest)
            if problem is not None:
                raise KafkaFetchError(
                    f"the Kafka jars just fetched into {libs} fail checks: {problem}"
                )
    return KafkaDistribution(version, libs, java, recipe / "log4j2.properties")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise fetches between processes (parallel test workers, two terminals)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verify(libs: Path, recipe_digest: str) -> str | None:
    """``None`` if ``libs`` holds exactly the manifest's jars, else what is wrong."""
    manifest_path = libs / _MANIFEST
    if not manifest_path.is_file():
        return "no manifest (never fetched, or the fetch did not finish)"
    try:
        manifest = json.loads(manifest_path.read_text())
        jars: dict[str, dict[str, object]] = manifest["jars"]
        if manifest["recipe_sha256"] != recipe_digest:
            return "deploy/kafka/pom.xml changed since the jars were fetched"
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest: {exc}"
    present = {p.name for p in libs.glob("*.jar")}
    if present != set(jars):
        missing, extra = sorted(set(jars) - present), sorted(present - set(jars))
        return f"jar set differs from manifest (missing {missing}, unexpected {extra})"
    for name, meta in jars.items():
        path = libs / name
        if path.stat().st_size != meta.get("size") or _sha256(path) != meta.get("sha256"):
            return f"{name} does not match its recorded size and SHA-256"
    return None


def _fetch(recipe: Path, home: Path, recipe_digest: str, progress: Progress | None) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteError(
            "Maven (`mvn`) is not on PATH; it is needed once to fetch Apache Kafka from Maven "
            "Central. Install it (Debian/Ubuntu: `apt-get install maven`) and run again."
        )
    staging = home / f"libs.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        mvn, "-B", "--strict-checksums",
        "-f", str(recipe / "pom.xml"),
        f"-Dmaven.repo.local={home / 'm2'}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]  # fmt: skip
    log.info("kafka.fetch_start", version=kafka_version(recipe), cache=str(home))
    output_tail: list[str] = []
    count, size = 0, 0
    try:
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=home
        ) as proc:
            assert proc.stdout is not None  # noqa: S101 - guaranteed by stdout=PIPE
            for line in proc.stdout:
                output_tail = [*output_tail[-39:], line.rstrip()]
                done = _DOWNLOADED.search(line)
                if done:
                    count += 1
                    size += _to_bytes(float(done.group("n")), done.group("unit"))
                    if progress is not None:
                        progress(count, size, done.group("name"))
            returncode = proc.wait()
    except OSError as exc:
        raise KafkaFetchError(f"could not run Maven ({mvn}): {exc}") from exc
    if returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(line for line in output_tail if line.strip())
        raise KafkaFetchError(
            f"Maven could not fetch Apache Kafka (exit {returncode}). Check that Maven Central "
            f"is reachable (a proxy in ~/.m2/settings.xml?), then run again. Maven said:\n{tail}"
        )
    jars = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in staging.glob("*.jar")}
    if not any(name.startswith("kafka_2.13-") for name in jars):
        raise KafkaFetchError(f"Maven finished but {staging} holds no kafka_2.13 jar")
    (staging / _MANIFEST).write_text(
        json.dumps({"recipe_sha256": recipe_digest, "jars": jars}, indent=1, sort_keys=True)
    )
    libs = home / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    log.info("kafka.fetch_done", jars=len(jars), downloaded_files=count, libs=str(libs))


_DOWNLOADED = re.compile(
    r"Downloaded from \S+: \S+/(?P<name>[^/\s]+) \((?P<n>[\d.]+) (?P<unit>[kMG]?B)"
)


def _to_bytes(number: float, unit: str) -> int:
    return int(number * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
