"""Model providers: one module per wire format, all behind the LlmProvider protocol."""
