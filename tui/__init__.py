"""The Textual terminal UI: a thin view over the orchestrator's engine and its event stream."""
