"""The monitoring room: GET /metrics (Prometheus) and GET /monitoring/drift."""
from __future__ import annotations

import asyncio
import os

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.service import Room


class MonitoringRoutes(Room):
    async def get_metrics(self, request: Request) -> Response:
        await asyncio.to_thread(self.service.refresh_monitor_metrics)
        data, ctype = self.service.metrics.exposition()
        return Response(data, media_type=ctype)

    async def get_drift(self, request: Request) -> JsonResponse:
        """The drift report of the served version's window of recent inputs ("not enough
        data" below the minimum count). With several workers, each keeps its own window:
        the answer is the answering worker's (`worker_pid`)."""
        served = self.service.slot.current
        request.scope["mpg.version"] = served.version
        report = await asyncio.to_thread(served.drift.report)
        predlog = self.service.predlog
        return JsonResponse({**report, "worker_pid": os.getpid(),
                             "prediction_log": predlog.stats() if predlog else None})

    def docs(self) -> dict[str, dict]:
        return {"get_metrics": dict(response_class=PlainTextResponse, responses={200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}}}})}
