"""What a benchmark run records besides its trials: the environment it ran in, and the
files it is saved to (``.mqlab/bench/<run>.json``, ``.md`` and the PNG plots)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from .. import brokers
from ..config import LabConfig
from ..stacks import Stack
from . import report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def environment(config: LabConfig, stack: Stack, on, batch: int, prefetch: int) -> dict:
    """The host, Docker, the images (with their ids), the knobs and the CPU pinning of a run;
    ``on`` is the run's :class:`.stack.BenchStack`."""
    images = {}
    for key in brokers.image_keys(stack):
        name = config.get(key)
        if name:
            try:
                images[name] = on.client.images.get(name).short_id
            except Exception:  # not there: recorded as such
                images[name] = None
    try:
        info = on.client.info()
    except Exception:
        info = {}
    return {
        "host": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "memory_gib": info.get("MemTotal", 0) / 2**30,
                 "kernel": platform.release(), "python": platform.python_version()},
        "docker": info.get("ServerVersion"),
        "images": images,
        "offline_images": config.offline,
        "knobs": {"MQLAB_BATCH": batch, "MQLAB_PREFETCH": prefetch},
        "pinning": (f"broker on CPU {on.pinning[0]}, clients on CPU {on.pinning[1]}" if on.pinning
                    else "no pinning (one CPU)"),
    }


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def save(run: dict, directory: Path) -> None:
    """Write the run's JSON, its Markdown report and its plots into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / f"{run['id']}.json", run)
    (directory / f"{run['id']}.md").write_text(report.markdown(run))
    if any(t.get("profile") for t in run["trials"]):
        (directory / f"{run['id']}-profile.md").write_text(report.profile_markdown(run))
    report.plot_run(run, directory)
