"""The web app for agents and administrators: server-rendered pages (Jinja2, htmx, SSE) served by
the node at ``/`` (docs/architecture.md, "The web app")."""
