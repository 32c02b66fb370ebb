"""Built-in tools: one module per tool family, a Tool protocol and the catalog."""
