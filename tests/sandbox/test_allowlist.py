"""The egress allowlist: the default list, pattern checks, and host matching."""

from __future__ import annotations

import pytest

from koda.sandbox.allowlist import (
    DEFAULT_DEV_ALLOWLIST,
    Allowlist,
    PatternError,
    check_pattern,
    is_ip_literal,
)


def test_default_list_is_the_reference_list_in_order() -> None:
    assert DEFAULT_DEV_ALLOWLIST == (
        "github.com",
        "*.githubusercontent.com",
        "api.github.com",
        "codeload.github.com",
        "*.npmjs.org",
        "registry.npmjs.org",
        "*.pypi.org",
        "pypi.org",
        "files.pythonhosted.org",
        "crates.io",
        "static.crates.io",
        "index.crates.io",
        "*.docker.io",
        "registry-1.docker.io",
        "auth.docker.io",
    )
    assert Allowlist.default().patterns == DEFAULT_DEV_ALLOWLIST


@pytest.mark.parametrize(
    "host",
    [
        "github.com",
        "api.github.com",
        "raw.githubusercontent.com",
        "objects.githubusercontent.com",
        "registry.npmjs.org",
        "pypi.org",
        "upload.pypi.org",
        "files.pythonhosted.org",
        "static.crates.io",
        "registry-1.docker.io",
        "hub.docker.io",
    ],
)
def test_default_allowlist_allows_code_hosts_and_registries(host: str) -> None:
    assert Allowlist.default().allows(host)


@pytest.mark.parametrize(
    "host",
    ["example.com", "gitlab.com", "npmjs.org", "docker.io", "pythonhosted.org", "evil.crates.io"],
)
def test_default_allowlist_refuses_other_hosts(host: str) -> None:
    assert not Allowlist.default().allows(host)


def test_exact_match_is_case_insensitive_both_ways() -> None:
    allowlist = Allowlist(["GitHub.COM"])
    assert allowlist.patterns == ("github.com",)
    assert allowlist.allows("github.com")
    assert allowlist.allows("GITHUB.com")


def test_trailing_dot_on_the_host_is_ignored() -> None:
    allowlist = Allowlist(["github.com", "*.npmjs.org"])
    assert allowlist.allows("github.com.")
    assert allowlist.allows("registry.npmjs.org.")
    assert not allowlist.allows("github.com..")


def test_port_is_stripped_from_the_host() -> None:
    allowlist = Allowlist(["github.com", "*.npmjs.org"])
    assert allowlist.allows("github.com:443")
    assert allowlist.allows("registry.npmjs.org:8443")
    assert allowlist.allows("github.com.:22")
    assert not allowlist.allows("github.com:")
    assert not allowlist.allows("github.com:https")
    assert not allowlist.allows("github.com:1:2")


def test_wildcard_matches_one_label_only() -> None:
    allowlist = Allowlist(["*.githubusercontent.com"])
    assert allowlist.allows("raw.githubusercontent.com")
    assert not allowlist.allows("githubusercontent.com")  # not the apex
    assert not allowlist.allows("a.b.githubusercontent.com")  # not two labels
    assert not allowlist.allows(".githubusercontent.com")  # not an empty label


@pytest.mark.parametrize(
    "host",
    [
        "evilgithub.com",
        "github.com.evil.com",
        "github.comx",
        "xgithub.com",
        "evilgithubusercontent.com",
        "raw.evilgithubusercontent.com",
        "raw.githubusercontent.com.evil.com",
        "github-com",
    ],
)
def test_suffix_trick_is_not_allowed(host: str) -> None:
    assert not Allowlist(["github.com", "*.githubusercontent.com"]).allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:443",
        "127.1",
        "0x7f.1",
        "0x7f000001",
        "2130706433",
        "017700000001",
        "::1",
        "[::1]",
        "[::1]:443",
        "::ffff:127.0.0.1",
        "[fe80::1%25eth0]",
        "140.82.112.3",
    ],
)
def test_ip_literal_hosts_are_never_allowed(host: str) -> None:
    # Even an allowlist that somehow named them would not let them through.
    assert not Allowlist(["github.com"]).allows(host)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "::1", "[::1]", "fe80::1%eth0", "1.2.3"],
)
def test_is_ip_literal_recognizes_every_address_form(text: str) -> None:
    assert is_ip_literal(text)


@pytest.mark.parametrize("text", ["github.com", "1.2.3.4.nip.io", "123.com", "0x7f.com", "", "[]"])
def test_is_ip_literal_is_false_for_names(text: str) -> None:
    assert not is_ip_literal(text)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "empty"),
        ("*", "every host"),
        ("*foo.com", "first label"),
        ("foo.*", "first label"),
        ("foo.*.com", "first label"),
        ("*.*.com", "first label"),
        ("*.com", "two labels"),
        ("https://github.com", "scheme"),
        ("github.com/org/repo", "path"),
        ("github.com:443", "port"),
        ("git hub.com", "white space"),
        (" github.com", "white space"),
        ("127.0.0.1", "IP address"),
        ("10.0.0.0/8", "IP address"),
        ("[::1]", "IP address"),
        ("2130706433", "IP address"),
        ("bücher.de", "xn--"),
        ("git!hub.com", "not a valid host name"),
        ("-github.com", "not a valid host name"),
        ("github..com", "not a valid host name"),
        ("a" * 64 + ".com", "not a valid host name"),
        ("a." * 130 + "com", "not a valid host name"),
    ],
)
def test_invalid_pattern_is_rejected_with_what_is_wrong(pattern: str, says: str) -> None:
    with pytest.raises(PatternError) as info:
        check_pattern(pattern)
    message = str(info.value)
    assert says in message
    assert repr(pattern) in message
    assert "*.npmjs.org" in message  # says what is allowed


def test_allowlist_refuses_an_invalid_pattern_among_valid_ones() -> None:
    with pytest.raises(PatternError, match=r"'\*\.com'"):
        Allowlist(["github.com", "*.com"])


def test_pattern_error_is_a_value_error() -> None:
    assert issubclass(PatternError, ValueError)


@pytest.mark.parametrize(
    ("pattern", "checked"),
    [
        ("GitHub.com", "github.com"),
        ("github.com.", "github.com"),
        ("*.Example.org", "*.example.org"),
        ("localhost", "localhost"),
        ("my_host.internal.example", "my_host.internal.example"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ],
)
def test_valid_pattern_is_lower_cased(pattern: str, checked: str) -> None:
    assert check_pattern(pattern) == checked


def test_empty_allowlist_denies_everything() -> None:
    allowlist = Allowlist([])
    assert allowlist.patterns == ()
    assert not allowlist.allows("github.com")
    assert not allowlist.allows("localhost")


@pytest.mark.parametrize(
    "host",
    [
        "",
        ".",
        "github..com",
        ".github.com",
        "git hub.com",
        "github.com/",
        "git\x00hub.com",
        "gith\u00fcb.com",
        "github.c\u043em",  # a Cyrillic o
        "a" * 64 + ".github.com",
        ("a." * 126) + "github.com",
    ],
)
def test_malformed_host_is_not_allowed(host: str) -> None:
    allowlist = Allowlist(["github.com", "*.github.com"])
    assert not allowlist.allows(host)


def test_host_names_longer_than_253_characters_are_not_allowed() -> None:
    parent = "b" * 63 + "." + "c" * 63 + "." + "d" * 62  # 190 characters
    allowlist = Allowlist([f"*.{parent}"])
    assert allowlist.allows("a" * 62 + "." + parent)  # 253
    assert not allowlist.allows("a" * 63 + "." + parent)  # 254


def test_no_idn_normalization_non_ascii_never_matches_its_punycode() -> None:
    allowlist = Allowlist(["xn--bcher-kva.de"])
    assert allowlist.allows("xn--bcher-kva.de")
    assert not allowlist.allows("b\u00fccher.de")


def test_default_adds_extra_patterns_after_the_defaults() -> None:
    allowlist = Allowlist.default(["*.internal.example", "github.com"])
    assert allowlist.patterns == (*DEFAULT_DEV_ALLOWLIST, "*.internal.example")
    assert allowlist.allows("pkg.internal.example")
    assert allowlist.allows("github.com")


def test_a_single_string_is_not_taken_as_a_list_of_patterns() -> None:
    with pytest.raises(TypeError, match="list of patterns"):
        Allowlist("github.com")
