"""The environment a command gets: an allowlist of names, never a secret by the look of it.

Reference C12: only names a command plausibly needs pass; API keys, tokens and passwords stay
in Koda's own process. Tools that need a credential read it from their own config file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

BASE = frozenset({
    "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "COLORTERM", "PATH",
    "TMPDIR", "TMP", "TEMP", "PWD", "TZ", "NO_COLOR", "FORCE_COLOR",
})  # fmt: skip
# What common toolchains read for their own settings (none of it secret).
TOOLCHAINS = frozenset({
    "CARGO_HOME", "RUSTUP_HOME", "RUST_LOG", "RUST_BACKTRACE", "RUSTC_WRAPPER",
    "CARGO_TARGET_DIR",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
    "GIT_PAGER", "PAGER",
    "NODE_PATH", "NPM_CONFIG_USERCONFIG", "NODE_ENV",
    "PYTHONPATH", "VIRTUAL_ENV", "PYENV_ROOT", "PYENV_VERSION", "PIPX_HOME", "PIPX_BIN_DIR",
    "UV_CACHE_DIR", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
    "GOPATH", "GOROOT", "GOFLAGS", "GOCACHE", "GOMODCACHE", "JAVA_HOME", "GRADLE_USER_HOME",
    "KUBECONFIG", "DOCKER_HOST", "DOCKER_CONFIG", "CLOUDSDK_CONFIG",
    "CLOUDSDK_ACTIVE_CONFIG_NAME", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "MAKEFLAGS", "MAKELEVEL", "CC", "CXX", "CFLAGS", "LDFLAGS",
    "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING",
    # Certificate bundles (a company's own CA behind its proxy): paths, not secrets.
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "PIP_CERT",
})  # fmt: skip
# Whatever the lists say, a name like these never passes.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)


def passes(name: str) -> bool:
    if SECRET_NAME.search(name):
        return False
    return name in BASE or name in TOOLCHAINS or name.startswith("LC_")


def command_env(
    parent: Mapping[str, str], extra: Mapping[str, str] | None = None, *, sandboxed: bool = False
) -> dict[str, str]:
    """`parent` reduced to the allowlist, then `extra` (proxy settings) on top.

    Inside the sandbox /tmp is the session's own folder, so the temp variables point there.
    """
    env = {name: value for name, value in parent.items() if passes(name)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if sandboxed:
        env.update(TMPDIR="/tmp", TMP="/tmp", TEMP="/tmp")
    env.update(extra or {})
    return env
