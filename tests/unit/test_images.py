"""The offline images' apt sources: the host's own, with only the suite changed."""

from mqlab.images import with_suite

DEB822 = """Types: deb
# a comment that names bookworm stays as it is
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_change_only_the_suites():
    out = with_suite(DEB822, "trixie")
    assert "Suites: trixie trixie-updates" in out
    assert "Suites: trixie-security" in out
    assert "URIs: http://mirror.example/debian\n" in out and "# a comment that names bookworm" in out
    assert out.count("bookworm") == 1  # only the comment


def test_one_line_sources_change_only_the_suite_field():
    text = ("deb http://mirror.example/bookworm-mirror bookworm main\n"
            "deb [signed-by=/k.gpg] http://mirror.example/debian-security bookworm-security main contrib\n")
    out = with_suite(text, "trixie").splitlines()
    assert out[0] == "deb http://mirror.example/bookworm-mirror trixie main"
    assert out[1] == "deb [signed-by=/k.gpg] http://mirror.example/debian-security trixie-security main contrib"



# -- what each stack runs, and the PerfTest pin --------------------------------------------

import re
from pathlib import Path

import pytest

from mqlab.config import parse_env_file
from mqlab.images import IMAGES, ImageBuildError, stack_images
from mqlab.stacks import STACKS

ROOT = Path(__file__).resolve().parents[2]


def _image_keys_in(compose_file: Path) -> set[str]:
    return set(re.findall(r"\$\{(\w+_IMAGE)\b", compose_file.read_text()))


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_image_a_stack_file_names_is_built_for_that_stack(stack):
    """`invoke up --offline` builds what the stack's compose files run, from the stack registry."""
    named = _image_keys_in(ROOT / STACKS[stack].compose_file) | _image_keys_in(ROOT / "compose" / "services.yml")
    built = {IMAGES[name].env_key for name in stack_images(stack)}
    assert named <= built, f"{stack}: no offline image for {sorted(named - built)}"
    assert "base" not in stack_images(stack)  # implied, built first


def test_an_unknown_stack_has_no_images():
    with pytest.raises(ImageBuildError, match="unknown stack 'rabbit'"):
        stack_images("rabbit")


def test_perftest_is_pinned_to_one_version_everywhere():
    """Maven Central serves PerfTest's library jar up to a version; the official image, the
    offline tag and the jar the offline image is built from must name that same version."""
    maven = [line.split(":")[2] for line in (ROOT / "images/perf-test/maven.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    official = parse_env_file(ROOT / ".env")["PERFTEST_IMAGE"].rpartition(":")[2]
    offline = parse_env_file(ROOT / "images/offline.env")["PERFTEST_IMAGE"].rpartition(":")[2]
    default = re.search(r"\$\{PERFTEST_IMAGE:-[^:]+:([^}]+)\}", (ROOT / "compose/rabbitmq.yml").read_text()).group(1)
    assert maven == [official] == [offline] == [default]
