"""The kernel sandbox for commands (bubblewrap, sandbox-exec) and the session's egress proxies."""
