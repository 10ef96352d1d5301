"""The one hook between nodes and what runs on them.

`node_available` is sent when a node can take work it could not take a moment ago: it came
online, was enabled, or stopped draining. The jobs app places queued jobs when it hears it;
nodes never import jobs.
"""

from django.dispatch import Signal

node_available = Signal()  # sender: Node class; node=<Node>
