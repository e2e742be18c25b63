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

