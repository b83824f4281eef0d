"""Widgets of the cmspatch TUI: each one draws from the view model, none of them decides anything."""
