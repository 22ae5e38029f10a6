"""Rules across settings: combinations that are each valid alone but not together.

``Settings`` calls ``check_combinations`` once its defaults are filled in; each rule raises a
``ValueError`` that pydantic reports as a validation error of the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rhenus.core.net import is_loopback_host, is_loopback_url

if TYPE_CHECKING:
    from rhenus.config import Settings


def check_combinations(settings: Settings) -> None:
    """Raise ``ValueError`` for the first combination of settings that cannot work."""
    if settings.workers > 1 and not settings.redis_url.get_secret_value():
        raise ValueError(
            "several workers (RHENUS_WORKERS) need RHENUS_REDIS_URL: without it a message "
            "handled by one worker would reach syncs waiting in another only at their timeout"
        )
    if (
        settings.assistant_vector_index == "pgvector"
        and not settings.database_url.get_secret_value().startswith("postgresql")
    ):
        raise ValueError("assistant_vector_index pgvector needs a PostgreSQL database_url")
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ValueError("tls_cert_file and tls_key_file go together")
    if settings.smtp_host and not settings.smtp_from:
        raise ValueError("smtp_host needs smtp_from (the sender address of the node's e-mail)")
    if (
        settings.smtp_username
        and settings.smtp_security == "none"
        and not is_loopback_host(settings.smtp_host)
    ):
        raise ValueError(
            "smtp_username with smtp_security=none would send the SMTP password in clear: "
            "use starttls or tls (none is only allowed towards a loopback server)"
        )
    if settings.federation_insecure_http and not is_loopback_url(settings.public_url):
        raise ValueError(
            "federation_insecure_http is only allowed when public_url is a loopback address"
        )
    if settings.dsp_conformance_token.get_secret_value() and not (
        is_loopback_url(settings.public_url) and is_loopback_url(f"http://{settings.host}")
    ):
        raise ValueError(
            "dsp_conformance_token (conformance mode) needs a node that listens on "
            "loopback only: host and public_url must be loopback addresses"
        )
