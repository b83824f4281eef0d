"""The TUI's screens: Fleet, Package and Campaign (tabs of the main screen), Monitor, and the modals."""
