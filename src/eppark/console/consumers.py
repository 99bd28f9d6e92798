"""The agent desk's WebSocket: calls, the robot's screen and the congestion list, pushed."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from eppark.console import push


class DeskConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One open desk page of one agent."""

    async def connect(self) -> None:
        """Only a logged-in agent: joins their own group."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        self.groups_joined = [push.agent_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave the groups."""
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def desk_message(self, event: dict[str, Any]) -> None:
        """A push from the server side."""
        await self.send_json({"kind": event.get("kind"), "call": event.get("call")})
