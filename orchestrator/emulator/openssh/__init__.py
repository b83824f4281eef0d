"""Real OpenSSH ``sshd`` monitors in BusyBox chroots on loopback: the second kind of test monitor.

See ``fleet`` for what it emulates and what it does not. Used by tests and ``bench/`` only (product code
never imports ``orchestrator.emulator``).
"""

from __future__ import annotations

from orchestrator.emulator.openssh.fleet import OpenSshFleet, missing_tools
from orchestrator.emulator.openssh.monitor import FAULTS_SUPPORTED, OpenSshMonitor

__all__ = ["FAULTS_SUPPORTED", "OpenSshFleet", "OpenSshMonitor", "missing_tools"]
