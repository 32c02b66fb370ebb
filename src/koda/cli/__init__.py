"""Front ends: argument parsing, headless output, and the session commands."""
