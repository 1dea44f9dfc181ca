"""Calling the reward node's services from a client node that another thread spins: topreward-replay and
RewardClient start episodes through an ``EpisodeStarter``; ``ask`` calls any service on a client kept for it."""

from __future__ import annotations

import threading

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_srvs.srv import Trigger

from ..errors import TopRewardError

SERVICE_TIMEOUT = 30.0  # seconds for a service to appear and answer
# What the node's ~/reset answers (the new episode's id); EpisodeStarter reads the id back from it.
RESET_MESSAGE = "episode {} started"


def ask(client, request, timeout: float = SERVICE_TIMEOUT):
    """``request``'s response once the service is there; a TopRewardError naming the service if it does not
    appear or does not answer within ``timeout`` s. Keep ``client`` for the next call: the node's answer to a
    client made a moment before the call can be lost (the reply leaves before the node has matched that client's
    reply reader, on a loaded machine)."""
    if not client.wait_for_service(timeout_sec=timeout):
        raise TopRewardError(f"service {client.srv_name} is not available (is the reward node running?)")
    response = answer(client, request, timeout)
    if response is None:
        raise TopRewardError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
    return response


def answer(client, request, timeout: float):
    """Send ``request`` on ``client`` (whose node another thread spins) and wait for the response; None (and the
    request withdrawn) if none came within ``timeout`` s."""
    answered = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: answered.set())
    response = future.result() if answered.wait(timeout) else None
    if response is None:
        client.remove_pending_request(future)
    return response


class EpisodeStarter:
    """Starts episodes on the reward node ``node_name`` through two clients of ``node`` made once, when this is
    made (see ``ask``: a reset whose answer was lost cannot be asked again)."""

    def __init__(self, node, node_name: str):
        node_name = node_name.rstrip("/")
        self._set_parameters = node.create_client(SetParameters, f"{node_name}/set_parameters")
        self._reset = node.create_client(Trigger, f"{node_name}/reset")

    def __call__(self, task: str | None = None, timeout: float = SERVICE_TIMEOUT) -> int:
        """Set ``task`` (if given) as the node's ``task`` parameter, then start a new episode through its
        ``~/reset``; the new episode's id. Both calls have returned when this does: a frame sent next belongs to
        the new episode."""
        if task:
            value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=task)
            result = ask(self._set_parameters,
                         SetParameters.Request(parameters=[Parameter(name="task", value=value)]), timeout)
            if not result.results[0].successful:
                raise TopRewardError(f"the node refused the task: {result.results[0].reason}")
        response = ask(self._reset, Trigger.Request(), timeout)
        if not response.success:
            raise TopRewardError(f"the node refused the reset: {response.message}")
        before, after = RESET_MESSAGE.split("{}")
        return int(response.message.removeprefix(before).removesuffix(after))
