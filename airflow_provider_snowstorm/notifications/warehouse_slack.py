"""Warehouse incidents in Slack: one message per incident, posted once and updated in place while it continues.

The hourly scoring DAG finds the same incident every hour until it ends (its id is the warehouse and start hour).
The first time, its message is posted with ``chat.postMessage``; afterwards the same message is edited with
``chat.update`` at the ``ts`` Slack gave it, so the channel gets one message per incident, never one per hour. The
``ts`` of each incident is kept in the Slack channel's delivery ledger (``notifications.slack``) beside the hourly
report, written as soon as Slack accepts a message, so a task retry updates instead of posting twice, and an hour
whose message would not change calls Slack not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_snowstorm.core.hourly_incidents import WarehouseIncident, warehouse_incident_message
from airflow_provider_snowstorm.notifications.slack import SlackChannel, _digest, _Ledger

__all__ = ["WarehouseIncidentSlack"]


class WarehouseIncidentSlack(SlackChannel):
    """Post or update one Slack message per warehouse incident (the Slack channel's hook, retries and errors)."""

    name = "slack-warehouse"

    def deliver_incidents(
        self, incidents: Sequence[WarehouseIncident], report_path: Path | ObjectStoragePath
    ) -> dict[str, Any]:
        """Post new incidents, update changed ones, skip unchanged ones; the ledger sits beside ``report_path``."""
        if not self.slack_conn_id or not incidents:
            return {"posted": [], "updated": [], "unchanged": []}
        try:
            BaseHook.get_connection(self.slack_conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "Slack connection %r is not defined: warehouse incidents were only written to %s",
                self.slack_conn_id,
                report_path,
            )
            return {"posted": [], "updated": [], "unchanged": []}
        ledger = _Ledger(report_path, f"warehouse-incidents/{self.channel}")
        delivered = ledger.load()
        outcome: dict[str, list[str]] = {"posted": [], "updated": [], "unchanged": []}
        for incident in incidents:
            text = warehouse_incident_message(incident)
            blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
            digest = _digest(text, blocks)
            entry = delivered.get(incident.incident_id, {})
            if entry.get("sha256") == digest:
                outcome["unchanged"].append(incident.incident_id)
                continue
            if entry.get("ts"):
                self._call_slack(
                    "chat.update",
                    lambda entry=entry, text=text, blocks=blocks: self.hook.client.chat_update(
                        channel=entry["channel"], ts=entry["ts"], text=text, blocks=blocks
                    ),
                )
                delivered[incident.incident_id] = {**entry, "sha256": digest}
                outcome["updated"].append(incident.incident_id)
            else:
                response = self._call_slack(
                    "chat.postMessage",
                    lambda text=text, blocks=blocks: self.hook.client.chat_postMessage(
                        channel=self.channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
                    ),
                )
                delivered[incident.incident_id] = {
                    "sha256": digest,
                    "ts": response.get("ts"),
                    "channel": response.get("channel"),
                }
                outcome["posted"].append(incident.incident_id)
            ledger.save(delivered)
        self.log.info(
            "Slack %s: %d incident(s) posted, %d updated, %d unchanged",
            self.channel,
            *(len(outcome[key]) for key in ("posted", "updated", "unchanged")),
        )
        return outcome
