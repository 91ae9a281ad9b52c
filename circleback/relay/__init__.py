"""The three calls of the circleback pattern, built only on the client.

``trigger`` (A starts B), ``approve`` (B releases A's hold), ``status`` (A waits for B's
result). Usable as a library; the CLI is a thin layer over these.
"""

from circleback.relay.approve import ApproveResult, Outcome, approve, project_allowed
from circleback.relay.records import Downstream, read_state, record_downstream
from circleback.relay.status import PollPolicy, StatusReport, wait_for_downstream
from circleback.relay.trigger import TriggerRequest, parse_parameter, trigger

__all__ = [
    "ApproveResult",
    "Downstream",
    "Outcome",
    "PollPolicy",
    "StatusReport",
    "TriggerRequest",
    "approve",
    "parse_parameter",
    "project_allowed",
    "read_state",
    "record_downstream",
    "trigger",
    "wait_for_downstream",
]
