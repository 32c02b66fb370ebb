"""Tests of the `koda` command line, run as a real subprocess."""
