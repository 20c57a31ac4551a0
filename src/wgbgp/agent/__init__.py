"""The agent: a reconciler on every machine (`wgbgp agent`), above apply and observe.

It keeps the machine running its part of the topology with apply's own code (loop.py),
follows a topology kept in a file or a git repository (source.py), follows hub endpoints
given as DNS names (dns.py), and starts BGP sessions as soon as a tunnel handshakes
(kick.py). Where it is installed and what state it reports: apply/agentinstall.py and
apply/agentstate.py.
"""

from .kick import Kicker
from .loop import Agent, Options
from .source import FileSource, GitSource, Refused, Snapshot, SourceError

__all__ = ["Agent", "FileSource", "GitSource", "Kicker", "Options", "Refused", "Snapshot",
           "SourceError"]
