"""`koda auth login|logout|status`: API keys kept outside the database, shown masked."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from koda.cli.args import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from koda.providers import keys
from koda.providers.hosts import HOSTS, Host, find_host


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="koda auth", description="API keys for model providers.")
    sub = p.add_subparsers(dest="action", required=True, metavar="{login,logout,status}")
    login = sub.add_parser("login", help="store a provider's key (read from stdin or a prompt)")
    login.add_argument("provider")
    login.add_argument("--keyring", action="store_true", help="keep the key in the OS keyring")
    logout = sub.add_parser("logout", help="forget a stored key")
    logout.add_argument("provider")
    sub.add_parser("status", help="which providers have a key, and where it comes from")
    return p


def run_auth(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    if ns.action == "status":
        return _status()
    host = find_host(ns.provider)
    if host is None or host.key_env is None:
        known = ", ".join(h.name for h in HOSTS.values() if h.key_env)
        print(f"koda: '{ns.provider}' takes no API key here. Providers with keys: {known}.",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    return _login(host, ns.keyring) if ns.action == "login" else _logout(host)


def _read_key(host: Host) -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        return sys.stdin.read().strip()
    return getpass.getpass(f"{host.name} API key (input hidden): ").strip()


def _login(host: Host, use_keyring: bool) -> int:
    try:
        key = _read_key(host)
    except (EOFError, KeyboardInterrupt):
        print("\nkoda: no key given; nothing stored.", file=sys.stderr)
        return EXIT_ERROR
    if not key or any(c.isspace() for c in key):
        print("koda: that does not look like an API key (empty, or has spaces); nothing stored.",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        if use_keyring:
            keys.save_key_in_keyring(host.name, key)
            where = "the OS keyring"
        else:
            where = str(keys.save_key(host.name, key))
    except (keys.KeyringUnavailable, OSError) as exc:
        print(f"koda: could not store the key: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Stored the {host.name} key {keys.mask(key)} in {where}.")
    if host.key_env and os.environ.get(host.key_env):
        print(f"Note: {host.key_env} is set in your environment and will be used instead.")
    return EXIT_OK


def _logout(host: Host) -> int:
    if keys.delete_key(host.name):
        print(f"Forgot the stored {host.name} key.")
    else:
        print(f"No stored {host.name} key.")
    return EXIT_OK


def _status() -> int:
    for host in HOSTS.values():
        if host.wire == "scripted":
            continue
        print(f"{host.name:<11} {_describe(host)}")
    return EXIT_OK


def _describe(host: Host) -> str:
    if host.key_env is None:
        return f"local server, no key needed ({host.base_url})"
    from_env = os.environ.get(host.key_env)
    if from_env:
        return f"{keys.mask(from_env)} from {host.key_env}"
    stored = keys.stored_key(host.name)
    if stored:
        return f"{keys.mask(stored)} stored by `koda auth login`"
    return f"not configured (set {host.key_env} or run `koda auth login {host.name}`)"
