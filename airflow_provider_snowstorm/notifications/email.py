"""The email channel of the anomaly report, through Airflow's SMTP provider (``SmtpHook``, an ``smtp`` connection).

The subject is the report's headline; the body is the markdown report (as preformatted HTML, so its tables stay
aligned); the chart is attached. A second channel is this small: a ``ReportChannel`` with ``deliver``.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.notifications.base import CHART_FILENAME, RenderedReport, ReportChannel

if TYPE_CHECKING:
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.sdk import Context

__all__ = ["EmailChannel", "email_html"]


def email_html(rendered: RenderedReport) -> str:
    """The report as an HTML email body: the markdown, escaped, in a monospace block."""
    return (
        '<pre style="font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px">'
        f"{html.escape(rendered.markdown)}</pre>"
    )


class EmailChannel(ReportChannel):
    """Email the report through an Airflow ``smtp`` connection.

    :param to: Recipient address, or several (a list, or a comma/semicolon separated string).
    :param smtp_conn_id: The SMTP provider's connection (host, port, login/password; extras ``from_email``,
        ``disable_ssl``, ``disable_tls``, ``timeout``, ``retry_limit``).
    :param from_email: Sender; default the connection's ``from_email`` extra.
    :param send_all_clear: Send a short all-clear email when there are no anomalies (default: send nothing).
    """

    name = "email"

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        send_all_clear: bool = False,
    ) -> None:
        super().__init__(send_all_clear=send_all_clear)
        if not to:
            raise ValueError("EmailChannel needs at least one recipient in `to`")
        self.to = [to] if isinstance(to, str) else list(to)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    @cached_property
    def hook(self) -> SmtpHook:
        """The SMTP provider's hook, built on first use and kept."""
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        return SmtpHook(smtp_conn_id=self.smtp_conn_id)

    def deliver(self, rendered: RenderedReport, context: Context) -> dict[str, Any]:
        if not self.wants(rendered):
            self.log.info("No anomalies: no email sent (send_all_clear=False)")
            return {}
        with tempfile.TemporaryDirectory(prefix="snowstorm-email-") as workdir:
            files = []
            if (
                rendered.chart_png is not None
            ):  # the hook attaches local files; the chart may be on object storage
                chart = Path(workdir, CHART_FILENAME)
                chart.write_bytes(rendered.chart_png)
                files.append(str(chart))
            with self.hook as smtp:
                smtp.send_email_smtp(
                    to=self.to,
                    subject=rendered.headline,
                    html_content=email_html(rendered),
                    from_email=self.from_email,
                    files=files,
                )
        self.log.info("Emailed the report to %s through connection %r", ", ".join(self.to), self.smtp_conn_id)
        return {"to": list(self.to), "attachments": len(files)}
